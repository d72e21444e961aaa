// `ember sample`: continues a prompt with a pretrained checkpoint, streaming
// the text as it is generated.
#include <iostream>
#include <optional>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/infer/generate.h"
#include "ember/models/gpt.h"
#include "ember/nn/module_io.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/train/checkpoint.h"

namespace ember::cli {
namespace {

struct SampleOptions {
  std::string checkpoint, prompt;
  int64_t max_tokens = 128, num_samples = 1;
  infer::SamplingParams sampling{0.8, 40, 0.95};
  uint64_t seed = 1337;
};

void run_sample(const SampleOptions& o) {
  const std::string dir = train::resolve_checkpoint(o.checkpoint);
  const nlohmann::json trainer = train::read_trainer_json(dir);
  if (!trainer.contains("config")) fail("sample", dir, "/trainer.json has no \"config\" (not a GPT checkpoint?)");
  models::GPTConfig cfg = models::GPTConfig::from_json(trainer.at("config"));
  models::GPT model(cfg);
  nn::load_module(model, dir + "/model.safetensors");
  const Tokenizer tok = Tokenizer::load(dir + "/tokenizer");
  const int64_t eot = tok.special_tokens().count("<|endoftext|>") ? int64_t(tok.special_id("<|endoftext|>")) : -1;
  std::vector<int64_t> prompt;
  for (TokenId id : tok.encode(o.prompt, AllowedSpecial::All())) prompt.push_back(int64_t(id));
  if (prompt.empty()) {
    if (eot < 0) fail("sample", "an empty --prompt needs an <|endoftext|> token in the tokenizer to start from");
    prompt.push_back(eot);
  }
  infer::GenerateOptions g;
  g.max_new_tokens = o.max_tokens;
  g.sampling = o.sampling;
  if (eot >= 0) g.stop_tokens = {eot};
  Generator gen(o.seed);
  for (int64_t i = 0; i < o.num_samples; ++i) {
    if (o.num_samples > 1) std::cout << "--- sample " << i + 1 << " ---\n";
    std::cout << o.prompt << std::flush;
    infer::generate(model, prompt, g, gen, [&](int64_t id) {
      if (!tok.is_special(TokenId(id))) std::cout << tok.token_bytes(TokenId(id)) << std::flush;
      return true;
    });
    std::cout << "\n";
  }
}

}  // namespace

void register_sample(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  auto* cmd = app.add_subcommand("sample", "Continue a prompt with a pretrained checkpoint");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint folder, or a run folder (its latest checkpoint)")->required();
  cmd->add_option("--prompt", o->prompt, "Text to continue (empty: start a new document)")->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temperature", o->sampling.temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass (1: off)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same text)")->capture_default_str();
  cmd->add_option("--num-samples", o->num_samples, "Independent continuations")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->callback([o] { run_sample(*o); });
}

}  // namespace ember::cli
