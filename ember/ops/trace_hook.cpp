// The thread-local trace recorder slot (see trace_hook.h).
#include "ember/ops/trace_hook.h"

namespace ember {
namespace {
thread_local TraceRecorder* current_recorder = nullptr;
}

TraceRecorder* active_trace_recorder() { return current_recorder; }

TraceRecorderGuard::TraceRecorderGuard(TraceRecorder* recorder) : previous_(current_recorder) {
  current_recorder = recorder;
}

TraceRecorderGuard::~TraceRecorderGuard() { current_recorder = previous_; }

}  // namespace ember
