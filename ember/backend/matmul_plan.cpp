// The matrix-product planning shared by the CPU and CUDA kernels (see matmul_plan.h).
#include "ember/backend/matmul_plan.h"

#include <algorithm>

namespace ember::matmul_plan {
namespace {

// Folding: b is the same matrix for every batch, and a's batch and row
// dimensions collapse into one dimension of rows with a single stride.
bool fold_rows(const Shape& batch, const Strides& sa, const Strides& sb, const Tensor& a, int64_t m, int64_t k,
               int64_t& ld) {
  for (size_t d = 0; d < batch.size(); ++d)
    if (batch[d] > 1 && sb[d] != 0) return false;
  size_t n = a.shape().size();
  if (k > 1 && a.strides()[n - 1] != 1) return false;
  std::vector<std::pair<int64_t, int64_t>> dims;  // (size, stride), outermost first
  for (size_t d = 0; d < batch.size(); ++d)
    if (batch[d] > 1) dims.emplace_back(batch[d], sa[d]);
  if (m > 1) dims.emplace_back(m, a.strides()[n - 2]);
  for (size_t d = 0; d + 1 < dims.size(); ++d)
    if (dims[d].second != dims[d + 1].second * dims[d + 1].first) return false;
  ld = dims.empty() ? std::max<int64_t>(1, k) : dims.back().second;
  return ld >= std::max<int64_t>(1, k);
}

}  // namespace

std::optional<MatLayout> gemm_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= std::max<int64_t>(1, cols)))
    return MatLayout{false, rows <= 1 ? std::max<int64_t>(1, cols) : rs};
  if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= std::max<int64_t>(1, rows)))
    return MatLayout{true, cols <= 1 ? std::max<int64_t>(1, rows) : cs};
  return std::nullopt;
}

std::optional<MatLayout> layout_of(const Tensor& x) {
  size_t n = x.shape().size();
  return gemm_layout(x.shape()[n - 2], x.shape()[n - 1], x.strides()[n - 2], x.strides()[n - 1]);
}

BatchPlan make_plan(const Tensor& a, const Tensor& b, const Tensor& out) {
  BatchPlan p;
  size_t na = a.shape().size(), nb = b.shape().size();
  p.m = a.shape()[na - 2];
  p.k = a.shape()[na - 1];
  p.n = b.shape()[nb - 1];
  p.la = *layout_of(a);
  p.lb = *layout_of(b);
  p.batch = Shape(out.shape().begin(), out.shape().end() - 2);
  const Shape& batch = p.batch;
  p.batches = numel(batch);
  Strides sa = broadcast_strides(Shape(a.shape().begin(), a.shape().end() - 2),
                                 Strides(a.strides().begin(), a.strides().end() - 2), batch);
  Strides sb = broadcast_strides(Shape(b.shape().begin(), b.shape().end() - 2),
                                 Strides(b.strides().begin(), b.strides().end() - 2), batch);
  int64_t ld = 0;
  if (p.batches > 1 && fold_rows(batch, sa, sb, a, p.m, p.k, ld)) {
    p.folded = true;
    p.la = MatLayout{false, ld};
    p.m *= p.batches;
    p.batches = 1;
    p.batch = {};
    p.off_a = {0};
    p.off_b = {0};
    return p;
  }
  p.off_a.resize(size_t(p.batches));
  p.off_b.resize(size_t(p.batches));
  for (int64_t i = 0; i < p.batches; ++i) {
    int64_t r = i, oa = 0, ob = 0;
    for (size_t d = batch.size(); d-- > 0;) {
      int64_t idx = r % batch[d];
      r /= batch[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
    p.off_a[size_t(i)] = oa;
    p.off_b[size_t(i)] = ob;
  }
  return p;
}

}  // namespace ember::matmul_plan
