// PrepackedLinearPrim: y = epilogue(x Wᵀ + bias) with W packed once, in the
// layout of the kernel that multiplies by it (cpu/packed_weights.h: oneDNN's
// blocked layout on AVX-512 CPUs, ember's GEMM panels on AVX2 ones), so no
// product repacks or rereads the weight in row-major order.
//
// Made by the weight-prepacking pass (passes/prepack_weights.cpp) for graphs
// compiled with frozen weights (inference), never by user code; the
// linear-epilogue pass (passes/fuse_linear_epilogue.cpp) then folds an
// activation reading its output (GELU) and a residual add into it. Packing
// the weights on every call was about 14% of a 256-token prefill of the
// `small` GPT (docs/PERFORMANCE.md); PyTorch's inductor prepacks frozen oneDNN
// weights the same way.
//
// Inputs: x [..., k] float32, the packed weight (a 1-D float32 constant of
// cpu::packed_weight_floats(layout, k, n) values), the bias [n] when `bias`,
// and the residual (x's leading shape by n) when `residual`. CPU only, no vjp
// (it runs after autodiff, in graphs that compute no gradients).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include "ember/backend/cpu/packed_weights.h"
#include "ember/ops/primitive.h"

namespace ember::graph {

class PrepackedLinearPrim final : public Primitive {
 public:
  struct Options {
    cpu::WeightLayout layout = cpu::WeightLayout::none;
    bool bias = false;
    std::optional<UnaryOp> activation;  // applied to x Wᵀ + bias
    bool residual = false;              // a last input added after the activation
  };
  // Both sizes at least 1 (an empty weight is never packed), a layout other than none.
  PrepackedLinearPrim(int64_t in_features, int64_t out_features, Options options);
  const char* name() const override { return "linear_prepacked"; }
  bool differentiable() const override { return false; }
  Attrs attrs() const override;
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& inputs) const override;
  void eval_cpu(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const override;

  int64_t in_features() const { return k_; }
  int64_t out_features() const { return n_; }
  const Options& options() const { return options_; }

 private:
  int64_t k_, n_;
  Options options_;
};

// A weight in packed form and the layout it is packed in.
struct PackedWeight {
  Tensor data;  // undefined: not packed
  cpu::WeightLayout layout = cpu::WeightLayout::none;
};

// A 2-D float32 CPU weight W [n, k] (any strides with one of them 1) packed in
// cpu::frozen_weight_layout(), for PrepackedLinearPrim; undefined data when that
// layout is none (EMBER_GEMM=sgemm, or no kernel for it), W is empty, or its
// strides do not allow it.
PackedWeight prepack_linear_weight(const Tensor& weight);

// Packed weights shared by the graphs of one compiled function (one per input
// signature), so that a weight is packed once, with the values it had then,
// however many shapes are traced. Keyed by the weight's view (data address,
// shape, strides); an entry keeps its source alive, so an address is never
// reused for another tensor while cached. Thread-safe.
class PackedWeightCache {
 public:
  // The packed form of `weight`, made at the first request; undefined data when
  // it cannot be packed (prepack_linear_weight).
  PackedWeight get(const Tensor& weight);
  size_t size() const;

 private:
  using Key = std::tuple<const void*, Shape, Strides>;
  mutable std::mutex mutex_;
  std::map<Key, std::pair<Tensor, PackedWeight>> entries_;  // key -> (source, packed)
};

}  // namespace ember::graph
