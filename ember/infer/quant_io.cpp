// Float or quantized model files for the runner (see quant_io.h).
#include "ember/infer/quant_io.h"

#include <cmath>
#include <cstring>
#include <set>

#include "ember/core/error.h"
#include "ember/io/mapped_file.h"
#include "ember/io/safetensors_format.h"
#include "ember/nn/module_io.h"
#include "ember/nn/rope.h"

namespace ember::infer {
namespace {

const char* kOp = "quantized model";
const char* kScaleSuffix = "_scale";

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Quantized data's dtype in the file and its shape for a weight [rows, cols].
const char* packed_dtype(WeightFormat f) {
  return f == WeightFormat::int8 ? "I8" : f == WeightFormat::f16 ? "F16" : "U8";
}
std::vector<int64_t> packed_shape(WeightFormat f, int64_t rows, int64_t cols) {
  return {rows, f == WeightFormat::int4 ? int4_row_bytes(cols) : cols};
}
// f16 has no scales: each weight is its own value.
bool has_scales(WeightFormat f) { return f != WeightFormat::f16; }
std::vector<int64_t> scale_shape(WeightFormat f, int64_t rows, int64_t cols, int64_t group) {
  if (f == WeightFormat::int8) return {rows};
  return {rows, int4_groups(cols, group)};
}

std::string meta(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

}  // namespace

void save_runner_weights(const RunnerWeights& w, const std::string& path) {
  std::vector<SafetensorsWriteItem> items;
  std::vector<Tensor> keep;  // contiguous host copies stay alive until written
  // A quantized file leaves out a tied float head (it is the table); a float
  // file keeps it, as nn::save_module does, so the model's loader reads it.
  const bool tied_float_head =
      w.format != WeightFormat::f32 && w.config.tied_embeddings && !w.quantized.count(RunnerWeights::kHead);
  for (const auto& [name, t] : w.tensors) {
    if (name.rfind("rope.", 0) == 0) continue;  // recomputed from the config
    if (tied_float_head && name == RunnerWeights::kHead) continue;  // the same table as wte
    const float* p = w.f32(name);
    items.push_back({name, "F32", t.shape(), p, t.nbytes()});
  }
  for (const auto& [name, m] : w.quantized) {
    items.push_back({name, packed_dtype(m.format), packed_shape(m.format, m.rows, m.cols), m.data.data(), m.data.size()});
    if (has_scales(m.format))
      items.push_back({name + kScaleSuffix, "F32", scale_shape(m.format, m.rows, m.cols, m.group), m.scales.data(),
                       m.scales.size() * sizeof(float)});
  }
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (w.format != WeightFormat::f32) {
    metadata["quantization"] = weight_format_name(w.format);
    if (w.format == WeightFormat::int4) metadata["quantization_group_size"] = std::to_string(w.group_size);
    metadata["quantization_head"] = w.head_quantized ? weight_format_name(w.format) : "float32";
  }
  write_safetensors(path, items, metadata);
}

std::shared_ptr<RunnerWeights> load_runner_weights(const std::string& path, const models::GPTConfig& cfg,
                                                   bool prepack) {
  MappedFile file(path);
  const SafetensorsHeader h = parse_safetensors_header(file.data(), file.size(), path);
  const std::string scheme = meta(h.metadata, "quantization");
  if (scheme.empty()) {
    // A float checkpoint: the model's own loader and its strict checks.
    bool packed = false;
    for (const auto& e : h.entries) packed = packed || e.dtype == "I8" || e.dtype == "U8";
    if (packed)
      fail(kOp, path, " holds I8/U8 tensors but no \"quantization\" metadata; it was not written by ember quantize");
    models::GPT model(cfg);
    nn::load_module(model, path);
    model.eval();
    auto w = runner_weights(model);
    if (prepack) w->prepack();
    return w;
  }
  auto w = std::make_shared<RunnerWeights>();
  w->config = cfg;
  w->format = weight_format_from_name(scheme, str_cat(kOp, ": ", path, ": metadata \"quantization\""));
  if (w->format == WeightFormat::int4) {
    const std::string g = meta(h.metadata, "quantization_group_size");
    try {
      w->group_size = std::stoll(g);
    } catch (const std::exception&) {
      fail(kOp, path, ": metadata \"quantization_group_size\" is '", g, "', not a number");
    }
    check_group_size(w->group_size, str_cat(kOp, ": ", path));
  }
  const std::map<std::string, std::vector<int64_t>> expected = gpt_tensor_shapes(cfg);
  std::set<std::string> quantizable;
  for (const std::string& n : block_linear_names(cfg)) quantizable.insert(n);
  quantizable.insert(RunnerWeights::kHead);

  std::map<std::string, const SafetensorsEntry*> entries;
  for (const auto& e : h.entries) entries[e.name] = &e;
  std::set<std::string> used;
  auto bytes_of = [&](const SafetensorsEntry& e) { return file.data() + h.data_start + e.begin; };
  for (const auto& [name, shape] : expected) {
    auto it = entries.find(name);
    if (it == entries.end()) {
      if (name == RunnerWeights::kHead && cfg.tied_embeddings) continue;  // the float table, below
      fail(kOp, path, ": missing tensor ", name);
    }
    const SafetensorsEntry& e = *it->second;
    used.insert(name);
    if (e.dtype == "F32") {
      if (e.shape != shape)
        fail(kOp, path, ": tensor ", name, " has shape ", shape_str(e.shape), ", expected ", shape_str(shape));
      Tensor t = Tensor::empty(shape);
      std::memcpy(t.raw_data(), bytes_of(e), t.nbytes());
      w->tensors[name] = t;
      continue;
    }
    if (!quantizable.count(name) || e.dtype != packed_dtype(w->format))
      fail(kOp, path, ": tensor ", name, " has dtype ", e.dtype, ", expected F32",
           quantizable.count(name) ? str_cat(" or ", packed_dtype(w->format), " (", scheme, ")") : std::string());
    const int64_t rows = shape[0], cols = shape[1];
    if (e.shape != packed_shape(w->format, rows, cols))
      fail(kOp, path, ": ", scheme, " tensor ", name, " has shape ", shape_str(e.shape), ", expected ",
           shape_str(packed_shape(w->format, rows, cols)), " for a [", rows, ", ", cols, "] weight");
    QuantizedMatrix m;
    m.format = w->format;
    m.rows = rows, m.cols = cols, m.group = w->group_size;
    m.data.resize(size_t(e.end - e.begin));
    std::memcpy(m.data.data(), bytes_of(e), m.data.size());
    if (!has_scales(w->format)) {
      // Infinities and NaNs (exponent bits all set) would poison every product.
      const uint16_t* hv = reinterpret_cast<const uint16_t*>(m.data.data());
      for (int64_t i = 0; i < rows * cols; ++i)
        if ((hv[i] & 0x7C00u) == 0x7C00u)
          fail(kOp, path, ": f16 tensor ", name, " holds ", half_to_float(hv[i]), " at [", i / cols, ", ", i % cols,
               "] (weights must be finite)");
      w->quantized[name] = std::move(m);
      continue;
    }
    const std::string sname = name + kScaleSuffix;
    auto sit = entries.find(sname);
    if (sit == entries.end()) fail(kOp, path, ": ", scheme, " tensor ", name, " has no ", sname);
    const SafetensorsEntry& se = *sit->second;
    used.insert(sname);
    const std::vector<int64_t> want = scale_shape(w->format, rows, cols, w->group_size);
    if (se.dtype != "F32" || se.shape != want)
      fail(kOp, path, ": scales ", sname, " are ", se.dtype, " ", shape_str(se.shape), ", expected F32 ",
           shape_str(want), w->format == WeightFormat::int4 ? str_cat(" (group size ", w->group_size, ")") : "");
    m.scales.resize(size_t(se.end - se.begin) / sizeof(float));
    std::memcpy(m.scales.data(), bytes_of(se), m.scales.size() * sizeof(float));
    for (size_t i = 0; i < m.scales.size(); ++i)
      if (!std::isfinite(m.scales[i]) || m.scales[i] < 0)
        fail(kOp, path, ": scales ", sname, " hold ", m.scales[i], " at index ", i, " (must be finite and >= 0)");
    w->quantized[name] = std::move(m);
  }
  for (const auto& e : h.entries)
    if (!used.count(e.name)) fail(kOp, path, ": unexpected tensor ", e.name, " (", e.dtype, " ", shape_str(e.shape), ")");
  w->head_quantized = w->quantized.count(RunnerWeights::kHead) > 0;
  if (cfg.tied_embeddings && !w->head_quantized) w->tensors[RunnerWeights::kHead] = w->tensors.at("transformer.wte.weight");
  if (w->quantized.empty()) fail(kOp, path, ": metadata says ", scheme, " but no tensor is quantized");
  if (cfg.position == models::PositionKind::rope) {
    nn::RotaryEmbedding rope(cfg.head_dim(), cfg.block_size, cfg.rope_theta);
    w->tensors["rope.cos"] = rope.cos;
    w->tensors["rope.sin"] = rope.sin;
  }
  // The float model's count: a tied head is the table, not a parameter of its own.
  for (const auto& [name, shape] : expected) {
    if (name == RunnerWeights::kHead && cfg.tied_embeddings) continue;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    w->parameters += n;
  }
  if (prepack) w->prepack();  // the float Linear weights left (an unquantized head)
  return w;
}

}  // namespace ember::infer
