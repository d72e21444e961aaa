// The seam between eager execution and the graph compiler's tracer.
//
// apply() (ember/ops/dispatch.cpp) asks whether a recorder is active on this
// thread: if so, the primitive is recorded instead of run and its outputs are
// placeholder tensors (shape and dtype, no data). The recorder itself lives in
// ember/graph (above this layer); ops only see this interface. Code that makes
// tensors without a primitive and whose result would change from call to call
// (random numbers) asks tracing_active() and refuses, so a trace never bakes in
// a value that should differ between runs.
#pragma once

#include <vector>

#include "ember/ops/primitive.h"

namespace ember {

class TraceRecorder {
 public:
  virtual ~TraceRecorder() = default;
  // Records prim applied to inputs (placeholders or real tensors) and returns
  // placeholder outputs with the given specs.
  virtual std::vector<Tensor> record(const PrimitivePtr& prim, const std::vector<Tensor>& inputs,
                                     const std::vector<TensorSpec>& specs) = 0;
  // Records an in-place update of existing tensors (apply_into).
  virtual void record_into(const PrimitivePtr& prim, const std::vector<Tensor>& inputs,
                           std::vector<Tensor>& outputs) = 0;
};

// The recorder active on this thread, or null (eager execution).
TraceRecorder* active_trace_recorder();
inline bool tracing_active() { return active_trace_recorder() != nullptr; }

// Installs `recorder` on this thread for the guard's lifetime (nests).
class TraceRecorderGuard {
 public:
  explicit TraceRecorderGuard(TraceRecorder* recorder);
  ~TraceRecorderGuard();
  TraceRecorderGuard(const TraceRecorderGuard&) = delete;
  TraceRecorderGuard& operator=(const TraceRecorderGuard&) = delete;

 private:
  TraceRecorder* previous_;
};

// Suspends tracing on this thread for the guard's lifetime: ops run eagerly
// (constant folding evaluates nodes this way).
class TraceSuspendGuard : public TraceRecorderGuard {
 public:
  TraceSuspendGuard() : TraceRecorderGuard(nullptr) {}
};

}  // namespace ember
