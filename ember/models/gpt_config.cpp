// GPTConfig: presets, validation, JSON.
#include "ember/models/gpt_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "ember/core/error.h"

namespace ember::models {

namespace {

constexpr const char* kWhere = "GPTConfig";

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::string norm_name(NormKind k) { return k == NormKind::layernorm ? "layernorm" : "rmsnorm"; }
std::string position_name(PositionKind k) { return k == PositionKind::learned ? "learned" : "rope"; }
std::string mlp_name(MlpKind k) { return k == MlpKind::gelu ? "gelu" : "swiglu"; }

NormKind norm_from_name(const std::string& name) {
  if (name == "layernorm") return NormKind::layernorm;
  if (name == "rmsnorm") return NormKind::rmsnorm;
  fail(kWhere, "norm must be layernorm or rmsnorm, got '", name, "'");
}

PositionKind position_from_name(const std::string& name) {
  if (name == "learned") return PositionKind::learned;
  if (name == "rope") return PositionKind::rope;
  fail(kWhere, "position must be learned or rope, got '", name, "'");
}

MlpKind mlp_from_name(const std::string& name) {
  if (name == "gelu") return MlpKind::gelu;
  if (name == "swiglu") return MlpKind::swiglu;
  fail(kWhere, "mlp must be gelu or swiglu, got '", name, "'");
}

std::vector<std::string> GPTConfig::preset_names() { return {"tiny", "small", "gpt2"}; }

GPTConfig GPTConfig::preset(const std::string& name) {
  GPTConfig c;  // the defaults are GPT-2 style: layernorm, learned positions, gelu, biases, tied
  if (name == "tiny") {
    c.n_layer = 4, c.n_head = 4, c.n_kv_head = 4, c.n_embd = 256, c.vocab_size = 8192, c.block_size = 256;
    c.batch_size = 8;
  } else if (name == "small") {
    c.n_layer = 6, c.n_head = 6, c.n_kv_head = 6, c.n_embd = 384, c.vocab_size = 16384, c.block_size = 256;
    c.batch_size = 8;
  } else if (name == "gpt2") {
    // Hugging Face `gpt2` (124M): layer_norm_epsilon 1e-5, n_positions 1024.
    c.n_layer = 12, c.n_head = 12, c.n_kv_head = 12, c.n_embd = 768, c.vocab_size = 50257, c.block_size = 1024;
    c.batch_size = 8;
  } else {
    fail(kWhere, "unknown preset '", name, "' (known: ", join(preset_names()), ")");
  }
  return c;
}

int64_t GPTConfig::mlp_hidden() const {
  if (mlp == MlpKind::gelu) return 4 * n_embd;
  int64_t h = (8 * n_embd + 2) / 3;  // ceil(8/3 * n_embd)
  return (h + 63) / 64 * 64;
}

void GPTConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    EMBER_CHECK(v > 0, kWhere, field, " must be positive, got ", v);
  };
  positive("n_layer", n_layer);
  positive("n_head", n_head);
  positive("n_kv_head", n_kv_head);
  positive("n_embd", n_embd);
  positive("vocab_size", vocab_size);
  positive("block_size", block_size);
  positive("batch_size", batch_size);
  EMBER_CHECK(n_embd % n_head == 0, kWhere, "n_embd ", n_embd, " is not divisible by n_head ", n_head);
  EMBER_CHECK(n_head % n_kv_head == 0, kWhere, "n_kv_head ", n_kv_head, " does not divide n_head ", n_head);
  EMBER_CHECK(position != PositionKind::rope || head_dim() % 2 == 0, kWhere, "position rope needs an even head_dim, got ",
              head_dim(), " (n_embd ", n_embd, " / n_head ", n_head, ")");
  EMBER_CHECK(dropout >= 0.0 && dropout < 1.0, kWhere, "dropout must be in [0, 1), got ", dropout);
  EMBER_CHECK(std::isfinite(rope_theta) && rope_theta > 1.0, kWhere, "rope_theta must be > 1, got ", rope_theta);
  EMBER_CHECK(std::isfinite(norm_eps) && norm_eps > 0.0, kWhere, "norm_eps must be positive, got ", norm_eps);
}

nlohmann::json GPTConfig::to_json() const {
  return nlohmann::json{{"n_layer", n_layer},
                        {"n_head", n_head},
                        {"n_kv_head", n_kv_head},
                        {"n_embd", n_embd},
                        {"vocab_size", vocab_size},
                        {"block_size", block_size},
                        {"norm", norm_name(norm)},
                        {"position", position_name(position)},
                        {"mlp", mlp_name(mlp)},
                        {"bias", bias},
                        {"tied_embeddings", tied_embeddings},
                        {"dropout", dropout},
                        {"rope_theta", rope_theta},
                        {"norm_eps", norm_eps},
                        {"batch_size", batch_size}};
}

GPTConfig GPTConfig::from_json(const nlohmann::json& j) {
  EMBER_CHECK(j.is_object(), kWhere, "expected a JSON object, got ", j.type_name());
  static const std::set<std::string> known = {"n_layer", "n_head",   "n_kv_head", "n_embd",          "vocab_size",
                                              "block_size", "norm",  "position",  "mlp",             "bias",
                                              "tied_embeddings", "dropout", "rope_theta", "norm_eps", "batch_size"};
  for (const auto& item : j.items()) {
    EMBER_CHECK(known.count(item.key()), kWhere, "unknown field '", item.key(), "'");
  }
  auto field = [&](const char* name) -> const nlohmann::json& {
    auto it = j.find(name);
    if (it == j.end()) fail(kWhere, "missing field '", name, "'");
    return *it;
  };
  auto integer = [&](const char* name) {
    const auto& v = field(name);
    EMBER_CHECK(v.is_number_integer(), kWhere, "field '", name, "' must be an integer, got ", v.dump());
    return v.get<int64_t>();
  };
  auto number = [&](const char* name) {
    const auto& v = field(name);
    EMBER_CHECK(v.is_number(), kWhere, "field '", name, "' must be a number, got ", v.dump());
    return v.get<double>();
  };
  auto boolean = [&](const char* name) {
    const auto& v = field(name);
    EMBER_CHECK(v.is_boolean(), kWhere, "field '", name, "' must be true or false, got ", v.dump());
    return v.get<bool>();
  };
  auto string = [&](const char* name) {
    const auto& v = field(name);
    EMBER_CHECK(v.is_string(), kWhere, "field '", name, "' must be a string, got ", v.dump());
    return v.get<std::string>();
  };
  GPTConfig c;
  c.n_layer = integer("n_layer");
  c.n_head = integer("n_head");
  c.n_kv_head = integer("n_kv_head");
  c.n_embd = integer("n_embd");
  c.vocab_size = integer("vocab_size");
  c.block_size = integer("block_size");
  c.norm = norm_from_name(string("norm"));
  c.position = position_from_name(string("position"));
  c.mlp = mlp_from_name(string("mlp"));
  c.bias = boolean("bias");
  c.tied_embeddings = boolean("tied_embeddings");
  c.dropout = number("dropout");
  c.rope_theta = number("rope_theta");
  c.norm_eps = number("norm_eps");
  c.batch_size = integer("batch_size");
  c.validate();
  return c;
}

}  // namespace ember::models
