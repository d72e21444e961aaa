// Human-readable printing of tensors, abbreviated like PyTorch when large:
//   tensor(shape=[2, 3], dtype=float32, device=cpu)
//   [[0.1, 0.2, 0.3],
//    [0.4, 0.5, 0.6]]
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "ember/core/tensor.h"

namespace ember {
namespace {

constexpr int64_t kSummarizeAbove = 1000;  // elements
constexpr int64_t kEdgeItems = 3;          // shown at each end of a summarised dimension

std::string format_value(double v, bool floating) {
  if (!floating) return std::to_string(int64_t(v));
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

void print_dim(std::ostream& os, const std::vector<double>& vals, const Shape& shape, const Strides& strides,
               size_t dim, int64_t offset, bool floating, bool summarize, int indent) {
  if (dim == shape.size()) {
    os << format_value(vals[size_t(offset)], floating);
    return;
  }
  os << "[";
  int64_t n = shape[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      os << "...";
      i = n - kEdgeItems - 1;
      os << (dim + 1 == shape.size() ? ", " : ",\n" + std::string(size_t(indent + 1), ' '));
      continue;
    }
    print_dim(os, vals, shape, strides, dim + 1, offset + i * strides[dim], floating, summarize, indent + 1);
    if (i + 1 < n) os << (dim + 1 == shape.size() ? ", " : ",\n" + std::string(size_t(indent + 1), ' '));
  }
  os << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  if (!has_storage()) return os.str() + " <no data>";
  if (storage()->is_placeholder()) return os.str() + " <traced: " + storage()->origin() + ">";
  os << "\n";
  std::vector<double> vals = to_vector<double>();
  print_dim(os, vals, shape(), contiguous_strides(shape()), 0, 0, is_floating(dtype()), numel() > kSummarizeAbove, 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ember
