// Hugging Face GPT-2 import and export.
#include "ember/models/gpt2_hf.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ember/autograd/grad_mode.h"
#include "ember/io/atomic_file.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/shape_ops.h"

namespace fs = std::filesystem;

namespace ember::models {

namespace {

constexpr const char* kWhere = "gpt2_hf";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// A file name as GPT2LMHeadModel names it ("transformer." + GPT2Model's name).
std::string canonical_name(const std::string& name) {
  for (const char* trunk : {"wte.", "wpe.", "h.", "ln_f."})
    if (starts_with(name, trunk)) return "transformer." + name;
  return name;
}

bool is_mask_buffer(const std::string& name) {
  return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias");
}

std::string list_names(const std::vector<std::string>& names, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += str_cat(", ... (", names.size(), " in all)");
  return out;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EMBER_CHECK(in, kWhere, path, ": cannot open");
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return nlohmann::json::parse(buf.str());
  } catch (const nlohmann::json::exception& e) {
    fail(kWhere, path, ": not valid JSON (", e.what(), ")");
  }
}

// Sizes from the tensors of a file without config.json.
GPTConfig config_from_shapes(const TensorMap& tensors, const std::string& file) {
  auto get = [&](const std::string& name) -> const Tensor& {
    auto it = tensors.find(name);
    if (it == tensors.end()) it = tensors.find(name.substr(std::string("transformer.").size()));
    if (it == tensors.end()) fail(kWhere, file, ": no tensor '", name, "' (and no config.json beside it)");
    if (it->second.ndim() != 2) fail(kWhere, file, ": tensor '", name, "' must be 2-D, got ", shape_str(it->second.shape()));
    return it->second;
  };
  GPTConfig c = GPTConfig::preset("gpt2");
  const Tensor& wte = get("transformer.wte.weight");
  c.vocab_size = wte.shape(0);
  c.n_embd = wte.shape(1);
  c.block_size = get("transformer.wpe.weight").shape(0);
  c.n_layer = 0;
  for (const auto& [name, t] : tensors) {
    std::string n = canonical_name(name);
    if (!starts_with(n, "transformer.h.")) continue;
    c.n_layer = std::max<int64_t>(c.n_layer, std::stoll(n.substr(14, n.find('.', 14) - 14)) + 1);
  }
  c.n_head = c.n_kv_head = std::max<int64_t>(1, c.n_embd / 64);
  c.dropout = 0.0;
  c.tied_embeddings = !tensors.count("lm_head.weight");
  c.validate();
  return c;
}

}  // namespace

bool is_gpt2_conv1d_weight(const std::string& name) {
  return ends_with(name, ".attn.c_attn.weight") || ends_with(name, ".attn.c_proj.weight") ||
         ends_with(name, ".mlp.c_fc.weight") || ends_with(name, ".mlp.c_proj.weight");
}

GPTConfig gpt2_config_from_hf(const nlohmann::json& j, const std::string& where) {
  EMBER_CHECK(j.is_object(), kWhere, where, ": expected a JSON object");
  auto integer = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end()) fail(kWhere, where, ": missing '", key, "'");
    if (!it->is_number_integer()) fail(kWhere, where, ": '", key, "' must be an integer, got ", it->dump());
    return it->get<int64_t>();
  };
  if (j.contains("model_type") && j["model_type"] != "gpt2")
    fail(kWhere, where, ": model_type is ", j["model_type"].dump(), ", not \"gpt2\"");
  std::string act = j.value("activation_function", std::string("gelu_new"));
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    fail(kWhere, where, ": activation_function '", act, "' is not supported (ember's gelu is gelu_new, the tanh form)");
  if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"] != 4 * integer("n_embd"))
    fail(kWhere, where, ": n_inner ", j["n_inner"].dump(), " is not supported (ember uses 4 * n_embd)");
  if (j.value("scale_attn_by_inverse_layer_idx", false))
    fail(kWhere, where, ": scale_attn_by_inverse_layer_idx is not supported");
  if (!j.value("scale_attn_weights", true)) fail(kWhere, where, ": scale_attn_weights=false is not supported");
  GPTConfig c = GPTConfig::preset("gpt2");
  c.n_layer = integer("n_layer");
  c.n_head = c.n_kv_head = integer("n_head");
  c.n_embd = integer("n_embd");
  c.vocab_size = integer("vocab_size");
  c.block_size = integer("n_positions");
  auto eps = j.find("layer_norm_epsilon");
  if (eps != j.end()) {
    if (!eps->is_number()) fail(kWhere, where, ": 'layer_norm_epsilon' must be a number, got ", eps->dump());
    c.norm_eps = eps->get<double>();
  }
  auto tie = j.find("tie_word_embeddings");
  if (tie != j.end()) {
    if (!tie->is_boolean()) fail(kWhere, where, ": 'tie_word_embeddings' must be true or false, got ", tie->dump());
    c.tied_embeddings = tie->get<bool>();
  }
  c.dropout = 0.0;
  try {
    c.validate();
  } catch (const Error& e) {
    fail(kWhere, where, ": ", e.what());
  }
  return c;
}

nlohmann::json gpt2_config_to_hf(const GPTConfig& c) {
  c.validate();
  auto need = [](bool ok, const char* what) {
    if (!ok) fail(kWhere, "cannot export as GPT-2: ", what);
  };
  need(c.norm == NormKind::layernorm, "norm must be layernorm");
  need(c.position == PositionKind::learned, "position must be learned");
  need(c.mlp == MlpKind::gelu, "mlp must be gelu");
  need(c.bias, "bias must be true");
  need(c.n_kv_head == c.n_head, "n_kv_head must equal n_head (GPT-2 has no grouped-query attention)");
  return nlohmann::json{{"architectures", {"GPT2LMHeadModel"}},
                        {"model_type", "gpt2"},
                        {"activation_function", "gelu_new"},
                        {"n_layer", c.n_layer},
                        {"n_head", c.n_head},
                        {"n_embd", c.n_embd},
                        {"n_positions", c.block_size},
                        {"n_ctx", c.block_size},
                        {"n_inner", nullptr},
                        {"vocab_size", c.vocab_size},
                        {"layer_norm_epsilon", c.norm_eps},
                        {"resid_pdrop", c.dropout},
                        {"embd_pdrop", c.dropout},
                        {"attn_pdrop", 0.0},
                        {"initializer_range", 0.02},
                        {"scale_attn_weights", true},
                        {"tie_word_embeddings", c.tied_embeddings},
                        {"bos_token_id", c.vocab_size - 1},
                        {"eos_token_id", c.vocab_size - 1},
                        {"torch_dtype", "float32"}};
}

TensorMap to_hf_layout(const GPT& model, const TensorMap& tensors) {
  TensorMap out;
  for (const auto& [name, t] : tensors) {
    if (name == "lm_head.weight" && model.config().tied_embeddings) continue;
    out.emplace(name, is_gpt2_conv1d_weight(name) ? transpose(t, 0, 1) : t);
  }
  return out;
}

void load_gpt2_hf_weights(GPT& model, const std::string& path) {
  SafetensorsFile file = load_safetensors(path, LoadMode::mmap);
  TensorMap model_state = model.state_dict();
  const bool tied = model.config().tied_embeddings;

  // File names -> ember names (the identity after adding "transformer."), skipping buffers.
  TensorMap by_name;
  std::vector<std::string> unexpected;
  for (const auto& [raw, t] : file.tensors) {
    if (is_mask_buffer(raw)) continue;
    std::string name = canonical_name(raw);
    if (name == "lm_head.weight" && tied) continue;  // HF ties it to wte on load; so do we
    if (!model_state.count(name)) {
      unexpected.push_back(raw);
      continue;
    }
    by_name.emplace(name, t);
  }
  std::vector<std::string> missing, problems;
  TensorMap state;
  NoGradGuard no_grad;
  for (const auto& [name, dst] : model_state) {
    if (name == "lm_head.weight" && tied) continue;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      missing.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    const bool conv1d = is_gpt2_conv1d_weight(name);
    Shape want = dst.shape();
    if (conv1d) std::swap(want[0], want[1]);
    if (src.shape() != want) {
      problems.push_back(str_cat("tensor '", name, "' has shape ", shape_str(src.shape()), ", expected ",
                                 shape_str(want), conv1d ? " (Conv1D layout [in, out])" : ""));
      continue;
    }
    if (!is_floating(src.dtype())) {
      problems.push_back(str_cat("tensor '", name, "' has dtype ", dtype_name(src.dtype()), ", expected a float"));
      continue;
    }
    Tensor v = conv1d ? transpose(src, 0, 1) : src;
    state.emplace(name, contiguous(cast(v, dst.dtype())).detach());
  }
  if (!missing.empty()) problems.insert(problems.begin(), "missing tensors: " + list_names(missing));
  if (!unexpected.empty()) problems.push_back("unexpected tensors: " + list_names(unexpected));
  if (!problems.empty()) {
    std::string msg;
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    fail(kWhere, path, ": ", msg, " (model ", model.config().to_json().dump(), ")");
  }
  if (tied) state.emplace("lm_head.weight", state.at("transformer.wte.weight"));
  model.load_state_dict(state, /*strict=*/true);
}

std::shared_ptr<GPT> load_gpt2_hf(const std::string& path, Generator* gen) {
  std::error_code ec;
  std::string file = path, config_path;
  if (fs::is_directory(path, ec)) {
    file = (fs::path(path) / "model.safetensors").string();
    config_path = (fs::path(path) / "config.json").string();
    EMBER_CHECK(fs::exists(file, ec), kWhere, path, ": no model.safetensors in this folder");
  } else {
    EMBER_CHECK(fs::exists(path, ec), kWhere, path, ": no such file or folder");
    config_path = (fs::path(path).parent_path() / "config.json").string();
  }
  GPTConfig cfg;
  if (fs::exists(config_path, ec)) {
    cfg = gpt2_config_from_hf(read_json(config_path), config_path);
  } else {
    cfg = config_from_shapes(load_safetensors(file, LoadMode::mmap).tensors, file);
  }
  auto model = std::make_shared<GPT>(cfg, gen);
  load_gpt2_hf_weights(*model, file);
  model->eval();
  return model;
}

void save_gpt2_hf(const GPT& model, const std::string& dir) {
  nlohmann::json config = gpt2_config_to_hf(model.config());  // checks the model is GPT-2 shaped first
  std::error_code ec;
  fs::create_directories(dir, ec);
  EMBER_CHECK(!ec, kWhere, dir, ": cannot create the folder (", ec.message(), ")");
  TensorMap tensors = to_hf_layout(model, model.state_dict());
  config["torch_dtype"] = dtype_name(model.transformer->wte->weight.dtype());  // torch's names: float32, bfloat16, ...
  // Weights first, config last: a folder with a config.json is complete.
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
}

}  // namespace ember::models
