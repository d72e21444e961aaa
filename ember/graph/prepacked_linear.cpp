// The prepacked linear's kernel and the packing of a weight (see prepacked_linear.h).
#include "ember/graph/prepacked_linear.h"

#include "ember/backend/cpu/index_kernels.h"
#include "ember/core/error.h"

namespace ember::graph {

PrepackedLinearPrim::PrepackedLinearPrim(int64_t in_features, int64_t out_features, Options options)
    : k_(in_features), n_(out_features), options_(options) {
  if (k_ < 1 || n_ < 1) fail("linear_prepacked", "needs a weight of at least 1 x 1, got [", n_, ", ", k_, "]");
  if (options_.layout == cpu::WeightLayout::none) fail("linear_prepacked", "needs a packed weight layout");
  if (options_.activation && !cpu::epilogue_activation_supported(options_.layout, *options_.activation))
    fail("linear_prepacked", "activation ", unary_op_name(*options_.activation), " cannot be fused in layout ",
         cpu::weight_layout_name(options_.layout));
}

Attrs PrepackedLinearPrim::attrs() const {
  Attrs a{{"in_features", k_},
          {"out_features", n_},
          {"layout", std::string(cpu::weight_layout_name(options_.layout))},
          {"bias", int64_t(options_.bias)},
          {"residual", int64_t(options_.residual)}};
  if (options_.activation) a.emplace("activation", std::string(unary_op_name(*options_.activation)));
  return a;
}

std::vector<TensorSpec> PrepackedLinearPrim::output_specs(const std::vector<Tensor>& in) const {
  const size_t expected = 2 + size_t(options_.bias) + size_t(options_.residual);
  if (in.size() != expected) fail("linear_prepacked", "expects ", expected, " inputs, got ", in.size());
  const Tensor& x = in[0];
  for (const Tensor& t : in)
    if (t.dtype() != DType::f32) fail("linear_prepacked", "expects float32 tensors, got ", dtype_name(t.dtype()));
  if (x.ndim() < 1 || x.shape(-1) != k_)
    fail("linear_prepacked", "input of shape ", shape_str(x.shape()), " does not match in_features ", k_);
  if (in[1].ndim() != 1 || in[1].numel() != cpu::packed_weight_floats(options_.layout, k_, n_))
    fail("linear_prepacked", "packed weight of shape ", shape_str(in[1].shape()), " is not the ",
         cpu::weight_layout_name(options_.layout), " form of a [", n_, ", ", k_, "] weight");
  if (options_.bias && in[2].shape() != Shape{n_})
    fail("linear_prepacked", "bias of shape ", shape_str(in[2].shape()), " does not match out_features ", n_);
  Shape out(x.shape().begin(), x.shape().end() - 1);
  out.push_back(n_);
  if (options_.residual && in.back().shape() != out)
    fail("linear_prepacked", "residual of shape ", shape_str(in.back().shape()), " does not match the output's ",
         shape_str(out));
  return {{out, DType::f32}};
}

void PrepackedLinearPrim::eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const {
  const Tensor x = cpu::as_contiguous(in[0]);
  const Tensor packed = cpu::as_contiguous(in[1]);
  const Tensor bias = options_.bias ? cpu::as_contiguous(in[2]) : Tensor();
  const Tensor residual = options_.residual ? cpu::as_contiguous(in.back()) : Tensor();
  cpu::GemmEpilogue epilogue;
  epilogue.activation = options_.activation;
  if (residual.defined()) epilogue.residual = residual.data<float>();
  cpu::gemm_packed_weights(options_.layout, x.numel() / k_, n_, k_, x.data<float>(), k_, packed.data<float>(),
                           bias.defined() ? bias.data<float>() : nullptr, out[0].data<float>(), n_, 0.0f, epilogue);
}

PackedWeight prepack_linear_weight(const Tensor& w) {
  const cpu::WeightLayout layout = cpu::frozen_weight_layout();
  if (layout == cpu::WeightLayout::none || !w.defined() || w.ndim() != 2 || w.dtype() != DType::f32 ||
      !w.device().is_cpu() || !w.has_storage() || w.numel() == 0)
    return {};
  const int64_t n = w.shape(0), k = w.shape(1);
  // op(B) = Wᵀ is k x n: W with unit column stride is B stored transposed
  // (rows strides[0] apart); with unit row stride it is B itself.
  bool trans_b;
  int64_t ldb;
  if (w.strides()[1] == 1) trans_b = true, ldb = w.strides()[0];
  else if (w.strides()[0] == 1) trans_b = false, ldb = w.strides()[1];
  else return {};
  const int64_t floats = cpu::packed_weight_floats(layout, k, n);
  if (floats == 0) return {};
  Tensor packed = Tensor::empty({floats}, DType::f32);
  cpu::pack_weight(layout, trans_b, k, n, w.data<float>(), ldb, packed.data<float>());
  return {packed, layout};
}

PackedWeight PackedWeightCache::get(const Tensor& weight) {
  if (!weight.defined() || !weight.has_storage()) return {};
  Key key{weight.raw_data(), weight.shape(), weight.strides()};
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) it = entries_.emplace(key, std::make_pair(weight, prepack_linear_weight(weight))).first;
  return it->second.second;
}

size_t PackedWeightCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace ember::graph
