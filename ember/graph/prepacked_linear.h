// PrepackedLinearPrim: y = x Wᵀ (+ bias) with W already in the packed panels
// of ember's GEMM (cpu::pack_b_whole), so no product packs the weight again.
//
// Made by the weight-prepacking pass (passes/prepack_weights.cpp) for graphs
// compiled with frozen weights (inference), never by user code. Packing the
// weights on every call was about 14% of a 256-token prefill of the `small`
// GPT (docs/PERFORMANCE.md); PyTorch's inductor prepacks frozen oneDNN
// weights the same way.
//
// Inputs: x [..., k] float32, the packed weight (a 1-D float32 constant of
// cpu::packed_b_floats(k, n) values) and optionally a bias [n]. CPU only, no
// vjp (it runs after autodiff, in graphs that compute no gradients).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "ember/ops/primitive.h"

namespace ember::graph {

class PrepackedLinearPrim final : public Primitive {
 public:
  // Both sizes at least 1 (an empty weight is never packed).
  PrepackedLinearPrim(int64_t in_features, int64_t out_features);
  const char* name() const override { return "linear_prepacked"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override { return {{"in_features", k_}, {"out_features", n_}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& inputs) const override;
  void eval_cpu(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const override;

 private:
  int64_t k_, n_;
};

// The packed panels of a 2-D float32 CPU weight W [n, k] (any strides with one
// of them 1), for PrepackedLinearPrim; an undefined tensor when this build has
// no packed GEMM, EMBER_GEMM=onednn asks for oneDNN only, W is empty, or its
// layout does not allow it.
Tensor prepack_linear_weight(const Tensor& weight);

// Packed weights shared by the graphs of one compiled function (one per input
// signature), so that a weight is packed once, with the values it had then,
// however many shapes are traced. Keyed by the weight's view (data address,
// shape, strides); an entry keeps its source alive, so an address is never
// reused for another tensor while cached. Thread-safe.
class PackedWeightCache {
 public:
  // The packed form of `weight`, made at the first request; undefined when it
  // cannot be packed (prepack_linear_weight).
  Tensor get(const Tensor& weight);
  size_t size() const;

 private:
  using Key = std::tuple<const void*, Shape, Strides>;
  mutable std::mutex mutex_;
  std::map<Key, std::pair<Tensor, Tensor>> entries_;  // key -> (source, packed)
};

}  // namespace ember::graph
