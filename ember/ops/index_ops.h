// Joining, splitting, indexing, sorting and scanning ops.
#pragma once

#include <vector>

#include "ember/core/tensor.h"

namespace ember {

Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis);
// Splits into pieces of the given sizes along axis (sizes must add up to the dimension).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis);
// Rows of x along axis picked by a 1-D integer index (torch.index_select).
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index);
// out[i][j] = x[i][index[i][j]] along axis (torch.gather); backward is a scatter-add.
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);
// Returns a copy of x with src added at index along axis (torch.scatter_add).
Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src);
// Lookup of rows of weight [V, D] by integer ids of any shape -> [..., D]; the
// gradient is a scatter-add into the rows used.
Tensor embedding(const Tensor& weight, const Tensor& ids);
Tensor one_hot(const Tensor& ids, int64_t num_classes, DType dtype = DType::f32);
// Lower / upper triangle of the last two dims (k shifts the diagonal, as torch.tril).
Tensor tril(const Tensor& x, int64_t k = 0);
Tensor triu(const Tensor& x, int64_t k = 0);
struct ValuesIndices {
  Tensor values;
  Tensor indices;  // int64
};
ValuesIndices topk(const Tensor& x, int64_t k, int64_t axis = -1, bool largest = true);
ValuesIndices sort(const Tensor& x, int64_t axis = -1, bool descending = false);  // stable
Tensor argsort(const Tensor& x, int64_t axis = -1, bool descending = false);
Tensor cumsum(const Tensor& x, int64_t axis);

}  // namespace ember
