// SIGINT and SIGTERM as a request to stop a training run at the next step
// boundary (the trainers then write a checkpoint and return, so the run can
// be resumed), instead of killing the process mid-step.
#pragma once

namespace ember::train {

// Installs the handlers for its lifetime (restoring the previous ones after);
// one at a time per process.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal received since construction, or 0.
  int received() const;
};

}  // namespace ember::train
