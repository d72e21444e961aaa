// The ember half of the GPT-2 conformance test (driven by gpt2_hf.py):
//   run    --model DIR --inputs FILE --out FILE
//          imports the Hugging Face GPT-2 folder DIR, computes logits and the mean
//          cross-entropy of inputs' "ids"/"targets" (ignore_index -1), backpropagates,
//          and writes "logits", "loss" and "grad.<HF name>" (in HF's Conv1D layout).
//   export --like DIR --seed N --inputs FILE --out DIR2
//          builds a GPT with DIR's config.json from seed N (every parameter
//          perturbed so biases and norm gains are not trivial), exports it to DIR2
//          (model.safetensors + config.json) and writes DIR2/ember_logits.safetensors.
// Python compares everything; this tool only computes.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "ember/ember.h"
#include "ember/models/gpt2_hf.h"
#include "ember/nn/copy.h"

using namespace ember;
using namespace ember::models;
namespace fs = std::filesystem;

namespace {

std::map<std::string, std::string> parse_flags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0) fail("gpt2_hf_tool", "expected --flag VALUE, got '", key, "'");
    flags[key.substr(2)] = argv[i + 1];
  }
  return flags;
}

const std::string& need(const std::map<std::string, std::string>& flags, const std::string& key) {
  auto it = flags.find(key);
  if (it == flags.end()) fail("gpt2_hf_tool", "missing --", key);
  return it->second;
}

int run(const std::map<std::string, std::string>& flags) {
  auto model = load_gpt2_hf(need(flags, "model"));  // eval mode
  TensorMap in = load_safetensors(need(flags, "inputs")).tensors;
  Tensor ids = in.at("ids"), targets = in.at("targets");
  Tensor logits = model->forward(ids);
  Tensor loss = cross_entropy(logits, targets, /*ignore_index=*/-1);
  loss.backward();
  TensorMap grads;
  for (const auto& [name, p] : model->named_parameters()) grads.emplace(name, p.grad());
  TensorMap out;
  for (const auto& [name, g] : to_hf_layout(*model, grads)) out.emplace("grad." + name, g);
  out.emplace("logits", logits.detach());
  out.emplace("loss", loss.detach());
  // The model's own loss() must be the same computation.
  out.emplace("model_loss", model->loss(ids, targets, -1).detach());
  save_safetensors(need(flags, "out"), out);
  std::cout << "ember: loss " << loss.item<double>() << ", " << grads.size() << " parameter gradients\n";
  return 0;
}

int export_model(const std::map<std::string, std::string>& flags) {
  std::string like = (fs::path(need(flags, "like")) / "config.json").string();
  std::ifstream f(like);
  if (!f) fail("gpt2_hf_tool", like, ": cannot open");
  std::stringstream buf;
  buf << f.rdbuf();
  GPTConfig cfg = gpt2_config_from_hf(nlohmann::json::parse(buf.str()), like);
  Generator gen(std::stoull(need(flags, "seed")));
  GPT model(cfg, &gen);
  model.eval();
  {
    NoGradGuard no_grad;
    for (const auto& [name, p] : model.named_parameters())
      nn::copy_(p, p + normal(p.shape(), 0.0, 0.02, p.dtype(), Device::cpu(), &gen));
  }
  std::string out = need(flags, "out");
  save_gpt2_hf(model, out);
  TensorMap in = load_safetensors(need(flags, "inputs")).tensors;
  NoGradGuard no_grad;
  save_safetensors((fs::path(out) / "ember_logits.safetensors").string(), {{"logits", model.forward(in.at("ids"))}});
  std::cout << "ember: exported " << model.num_parameters() << " parameters to " << out << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string cmd = argc > 1 ? argv[1] : "";
    auto flags = parse_flags(argc, argv);
    if (cmd == "run") return run(flags);
    if (cmd == "export") return export_model(flags);
    std::cerr << "usage: gpt2_hf_tool run --model DIR --inputs FILE --out FILE\n"
                 "       gpt2_hf_tool export --like DIR --seed N --inputs FILE --out DIR\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
