// Default behaviour shared by all primitives: missing CUDA kernels, missing vjps,
// attribute printing and comparison.
#include "ember/ops/primitive.h"

#include <cstring>
#include <sstream>

namespace ember {

std::string attrs_str(const Attrs& attrs) {
  std::ostringstream os;
  bool first = true;
  for (const auto& [key, value] : attrs) {
    os << (first ? "" : ", ") << key << "=";
    first = false;
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::vector<int64_t>>) os << shape_str(v);
          else os << v;
        },
        value);
  }
  return os.str();
}

void Primitive::eval_cuda(const std::vector<Tensor>&, std::vector<Tensor>&) const {
  fail(name(), "has no CUDA implementation");
}

std::vector<Tensor> Primitive::vjp(const std::vector<Tensor>&, const std::vector<Tensor>&,
                                   const std::vector<Tensor>&, const std::vector<bool>&) const {
  fail(name(), "is not differentiable");
}

bool Primitive::equivalent(const Primitive& other) const {
  return std::strcmp(name(), other.name()) == 0 && attrs() == other.attrs();
}

std::string Primitive::str() const {
  Attrs a = attrs();
  return a.empty() ? std::string(name()) : std::string(name()) + "(" + attrs_str(a) + ")";
}

}  // namespace ember
