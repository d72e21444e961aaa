// Movement ops. reshape, permute/transpose, slice, expand, squeeze/unsqueeze
// return views that share storage with their input whenever possible.
#pragma once

#include "ember/core/tensor.h"

namespace ember {

// One dimension may be -1 (inferred). Copies only when the strides make a view impossible.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_axis = 0, int64_t end_axis = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1);
// Elements [start, stop) with step along axis; negative start/stop count from the
// end and are clipped to the dimension, as in Python slicing.
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t axis, int64_t index);  // drops the axis
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor expand(const Tensor& x, const Shape& shape);  // -1 keeps a dimension
Tensor squeeze(const Tensor& x, const std::vector<int64_t>& axes = {});  // {} = all size-1 axes
Tensor unsqueeze(const Tensor& x, int64_t axis);

}  // namespace ember
