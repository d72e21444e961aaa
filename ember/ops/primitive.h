// The primitive contract (see DESIGN.md): every computation in ember is a
// Primitive that knows
//   - its output shapes and dtypes from its inputs'   (output_specs)
//   - how to compute on each device                    (eval_cpu / eval_cuda)
//   - its vector-Jacobian product, written in ember ops (vjp)
//   - its attributes, comparable and serialisable      (attrs)
// and nothing else in the code base needs to know them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "ember/core/tensor.h"

namespace ember {

struct TensorSpec {
  Shape shape;
  DType dtype;
  bool operator==(const TensorSpec&) const = default;
};

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>>;
// Ordered so that printing and hashing are stable.
using Attrs = std::map<std::string, AttrValue>;
std::string attrs_str(const Attrs& attrs);  // "axis=1, keepdim=0"

class Primitive {
 public:
  virtual ~Primitive() = default;
  virtual const char* name() const = 0;

  // Shapes and dtypes of the outputs; validates the inputs (errors name the op).
  virtual std::vector<TensorSpec> output_specs(const std::vector<Tensor>& inputs) const = 0;

  // Computes on the CPU. For ordinary primitives the outputs arrive allocated and
  // contiguous; a view primitive (is_view) receives unallocated outputs and points
  // them into its input's storage (or allocates, when a view is impossible).
  virtual void eval_cpu(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const = 0;
  virtual void eval_cuda(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const;
  virtual bool is_view() const { return false; }

  // Cotangents of the inputs, written in ember ops so that they are themselves
  // differentiable. `cotangents[k]` is undefined when output k received no
  // gradient; `needs[i]` says whether input i wants one. Broadcasting need not
  // be undone here: the engine sums each gradient down to its input's shape.
  virtual std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                                  const std::vector<Tensor>& cotangents, const std::vector<bool>& needs) const;
  virtual bool differentiable() const { return true; }

  virtual Attrs attrs() const { return {}; }
  bool equivalent(const Primitive& other) const;
  std::string str() const;  // "sum(axes=[1], keepdim=0)"
};

using PrimitivePtr = std::shared_ptr<const Primitive>;

}  // namespace ember
