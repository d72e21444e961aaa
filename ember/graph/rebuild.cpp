// primitive_of: capture the primitive an op builds (see rebuild.h).
#include "ember/graph/rebuild.h"

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/ops/trace_hook.h"

namespace ember::graph {
namespace {

class Capturer final : public TraceRecorder {
 public:
  std::vector<Tensor> record(const PrimitivePtr& prim, const std::vector<Tensor>&,
                             const std::vector<TensorSpec>& specs) override {
    prims.push_back(prim);
    std::vector<Tensor> outs;
    for (const TensorSpec& s : specs) outs.push_back(placeholder(s));
    return outs;
  }
  void record_into(const PrimitivePtr& prim, const std::vector<Tensor>&, std::vector<Tensor>&) override {
    prims.push_back(prim);
  }
  static Tensor placeholder(const TensorSpec& s) {
    Tensor t = Tensor::unallocated(s.shape, s.dtype, Device::cpu());
    t.impl().storage = Storage::placeholder(size_t(numel(s.shape)) * dtype_size(s.dtype), Device::cpu(), "a rewrite");
    return t;
  }
  std::vector<PrimitivePtr> prims;
};

}  // namespace

PrimitivePtr primitive_of(const TensorSpec& input, const std::function<Tensor(const Tensor&)>& op) {
  return primitive_of(std::vector<TensorSpec>{input}, [&](const std::vector<Tensor>& in) { return op(in[0]); });
}

PrimitivePtr primitive_of(const std::vector<TensorSpec>& inputs,
                          const std::function<Tensor(const std::vector<Tensor>&)>& op) {
  Capturer capturer;
  {
    TraceRecorderGuard guard(&capturer);
    NoGradGuard no_grad;
    std::vector<Tensor> placeholders;
    for (const TensorSpec& s : inputs) placeholders.push_back(Capturer::placeholder(s));
    op(placeholders);
  }
  if (capturer.prims.size() != 1)
    fail("graph", "a rewrite expected its op to apply one primitive, it applied ", capturer.prims.size());
  return capturer.prims[0];
}

std::vector<TensorSpec> output_specs_of(const Primitive& prim, const std::vector<TensorSpec>& inputs) {
  std::vector<Tensor> placeholders;
  for (const TensorSpec& s : inputs) placeholders.push_back(Capturer::placeholder(s));
  return prim.output_specs(placeholders);
}

}  // namespace ember::graph
