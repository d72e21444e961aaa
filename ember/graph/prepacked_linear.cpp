// The prepacked linear's kernel and the packing of a weight (see prepacked_linear.h).
#include "ember/graph/prepacked_linear.h"

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/index_kernels.h"
#include "ember/backend/cpu/sgemm_packed.h"
#include "ember/core/error.h"

namespace ember::graph {

PrepackedLinearPrim::PrepackedLinearPrim(int64_t in_features, int64_t out_features)
    : k_(in_features), n_(out_features) {
  if (k_ < 1 || n_ < 1) fail("linear_prepacked", "needs a weight of at least 1 x 1, got [", n_, ", ", k_, "]");
}

std::vector<TensorSpec> PrepackedLinearPrim::output_specs(const std::vector<Tensor>& in) const {
  if (in.size() < 2 || in.size() > 3) fail("linear_prepacked", "expects 2 or 3 inputs, got ", in.size());
  const Tensor& x = in[0];
  if (x.dtype() != DType::f32 || in[1].dtype() != DType::f32)
    fail("linear_prepacked", "expects float32 tensors, got ", dtype_name(x.dtype()));
  if (x.ndim() < 1 || x.shape(-1) != k_)
    fail("linear_prepacked", "input of shape ", shape_str(x.shape()), " does not match in_features ", k_);
  if (in[1].ndim() != 1 || in[1].numel() != cpu::packed_b_floats(k_, n_))
    fail("linear_prepacked", "packed weight of shape ", shape_str(in[1].shape()), " is not the packed form of a [",
         n_, ", ", k_, "] weight");
  if (in.size() == 3 && (in[2].dtype() != DType::f32 || in[2].shape() != Shape{n_}))
    fail("linear_prepacked", "bias of shape ", shape_str(in[2].shape()), " does not match out_features ", n_);
  Shape out(x.shape().begin(), x.shape().end() - 1);
  out.push_back(n_);
  return {{out, DType::f32}};
}

void PrepackedLinearPrim::eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const {
  const Tensor x = cpu::as_contiguous(in[0]);
  const Tensor packed = cpu::as_contiguous(in[1]);
  const Tensor bias = in.size() == 3 ? cpu::as_contiguous(in[2]) : Tensor();
  cpu::gemm_prepacked(x.numel() / k_, n_, k_, x.data<float>(), k_, packed.data<float>(),
                      bias.defined() ? bias.data<float>() : nullptr, out[0].data<float>(), n_);
}

Tensor prepack_linear_weight(const Tensor& w) {
  if (!cpu::sgemm_packed_available() || cpu::sgemm_impl() == cpu::SgemmImpl::onednn || !w.defined() ||
      w.ndim() != 2 || w.dtype() != DType::f32 || !w.device().is_cpu() || !w.has_storage() || w.numel() == 0)
    return Tensor();
  const int64_t n = w.shape(0), k = w.shape(1);
  // op(B) = Wᵀ is k x n: W with unit column stride is B stored transposed
  // (rows strides[0] apart); with unit row stride it is B itself.
  bool trans_b;
  int64_t ldb;
  if (w.strides()[1] == 1) trans_b = true, ldb = w.strides()[0];
  else if (w.strides()[0] == 1) trans_b = false, ldb = w.strides()[1];
  else return Tensor();
  Tensor packed = Tensor::empty({cpu::packed_b_floats(k, n)}, DType::f32);
  cpu::pack_b_whole(trans_b, k, n, w.data<float>(), ldb, packed.data<float>());
  return packed;
}

Tensor PackedWeightCache::get(const Tensor& weight) {
  if (!weight.defined() || !weight.has_storage()) return Tensor();
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
