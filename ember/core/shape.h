// Shapes, strides and the NumPy broadcasting and axis rules shared by all ops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;  // in elements, not bytes

int64_t numel(const Shape& shape);
Strides contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3]"

// NumPy broadcasting of two shapes; `op` names the caller in the error.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Strides that read `shape`/`strides` as if broadcast to `target` (0 on broadcast dims).
Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target);

// Maps a possibly negative axis into [0, ndim); error names `op`.
int normalize_axis(int64_t axis, int64_t ndim, const char* op);
// Normalizes, sorts and de-duplicates a list of axes; an empty list means all axes.
std::vector<int> normalize_axes(const std::vector<int64_t>& axes, int64_t ndim, const char* op);
// The shape after reducing `axes` (kept as size 1 when keepdim).
Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdim);

}  // namespace ember
