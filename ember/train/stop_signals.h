// SIGINT and SIGTERM as a request to stop a training run at the next step
// boundary (the trainers then write a checkpoint and return, so the run can
// be resumed), instead of killing the process mid-step.
#pragma once

namespace ember::dist {
class Communicator;
}

namespace ember::train {

// For its lifetime (one at a time per process): the calling thread, the
// OpenMP pool and the threads started meanwhile block SIGINT and SIGTERM, and
// a thread of its own waits for them, so no thread in the middle of a kernel
// runs a handler (stop_signals.cpp says why: oneDNN's AVX-512 GEMM); the
// previous handlers and mask come back after.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal received since construction, or 0.
  int received() const;

 private:
  void restore();  // the previous mask and handlers
};

// Whether a training loop stops after this step, and the signal that asked it
// to (0: none).
struct StopRequest {
  bool stop = false;
  int signal = 0;
};
// Under data parallel, after each step on every rank of `comm` (null or one
// rank: `mine` as it is): the ranks' requests combined (the maximum of each,
// one all-reduce). A signal may reach one rank only (a scheduler or an
// operator on one node) and reaches the ranks at different moments: they stop
// after the same step, all as stopped by that signal (each exits 128 + signal).
StopRequest agree_to_stop(dist::Communicator* comm, StopRequest mine);

}  // namespace ember::train
