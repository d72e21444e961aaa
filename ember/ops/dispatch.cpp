// Eager execution of primitives with autograd recording.
#include "ember/ops/dispatch.h"

#include "ember/autograd/grad_mode.h"
#include "ember/autograd/node.h"
#include "ember/core/current_device.h"
#include "ember/ops/profiler.h"
#include "ember/ops/trace_hook.h"

#include <chrono>

namespace ember {

void eval_primitive(const Primitive& prim, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
  Device device = inputs.empty() ? (outputs.empty() ? Device::cpu() : outputs[0].device()) : inputs[0].device();
  if (!device.is_cpu()) make_device_current(device);  // kernels launch on the current GPU
  if (!profiler::enabled()) {
    if (device.is_cpu()) prim.eval_cpu(inputs, outputs);
    else prim.eval_cuda(inputs, outputs);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (device.is_cpu()) prim.eval_cpu(inputs, outputs);
  else prim.eval_cuda(inputs, outputs);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string key = prim.str();
  if (profiler::by_shape() && !outputs.empty()) key += " -> " + shape_str(outputs[0].shape());
  profiler::record(key, seconds);
}

namespace {

void check_inputs(const Primitive& prim, const std::vector<Tensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) fail(prim.name(), "input ", i, " is an undefined tensor");
    if (!inputs[i].has_storage()) fail(prim.name(), "input ", i, " has no data");
    if (inputs[i].device() != inputs[0].device())
      fail(prim.name(), "inputs are on different devices: ", inputs[0].device().str(), " and ",
           inputs[i].device().str());
  }
}

}  // namespace

std::vector<Tensor> apply(PrimitivePtr prim, const std::vector<Tensor>& inputs) {
  check_inputs(*prim, inputs);
  std::vector<TensorSpec> specs = prim->output_specs(inputs);
  std::vector<Tensor> outputs;
  if (TraceRecorder* recorder = active_trace_recorder()) {
    // Compiling: record the primitive; its outputs are placeholders.
    outputs = recorder->record(prim, inputs, specs);
  } else {
    Device device = inputs.empty() ? Device::cpu() : inputs[0].device();
    outputs.reserve(specs.size());
    for (const TensorSpec& s : specs)
      outputs.push_back(prim->is_view() ? Tensor::unallocated(s.shape, s.dtype, device)
                                        : Tensor::empty(s.shape, s.dtype, device));
    eval_primitive(*prim, inputs, outputs);
  }

  bool record = false;
  if (GradMode::enabled() && prim->differentiable())
    for (const Tensor& t : inputs) record = record || t.requires_grad();
  if (record) {
    std::vector<Tensor> saved;
    saved.reserve(outputs.size());
    for (const Tensor& o : outputs) saved.push_back(o.detach());
    auto node = std::make_shared<Node>(prim, inputs, std::move(saved));
    for (size_t k = 0; k < outputs.size(); ++k) {
      if (!is_floating(outputs[k].dtype())) continue;
      TensorImpl& o = outputs[k].impl();
      o.requires_grad = true;
      o.grad_fn = node;
      o.output_index = int(k);
    }
  }
  return outputs;
}

Tensor apply1(PrimitivePtr prim, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out = apply(std::move(prim), inputs);
  if (out.size() != 1) fail("apply1", "primitive produced ", out.size(), " outputs, expected 1");
  return out[0];
}

void apply_into(PrimitivePtr prim, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
  check_inputs(*prim, inputs);
  std::vector<TensorSpec> specs = prim->output_specs(inputs);
  if (specs.size() != outputs.size()) fail(prim->name(), "expected ", specs.size(), " outputs, got ", outputs.size());
  for (size_t k = 0; k < specs.size(); ++k) {
    const Tensor& o = outputs[k];
    if (o.shape() != specs[k].shape || o.dtype() != specs[k].dtype || !o.is_contiguous())
      fail(prim->name(), "output ", k, " must be a contiguous ", dtype_name(specs[k].dtype), " tensor of shape ",
           shape_str(specs[k].shape), ", got ", dtype_name(o.dtype()), " ", shape_str(o.shape()));
    if (GradMode::enabled() && o.requires_grad())
      fail(prim->name(), "in-place update of a tensor that requires grad; wrap it in NoGradGuard");
  }
  if (TraceRecorder* recorder = active_trace_recorder()) {
    recorder->record_into(prim, inputs, outputs);
    return;
  }
  eval_primitive(*prim, inputs, outputs);
}

}  // namespace ember
