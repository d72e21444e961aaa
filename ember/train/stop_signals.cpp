// The stop-request signals (see stop_signals.h).
//
// Why a waiting thread and not only a handler: the float GEMM kernels of
// Debian 12's oneDNN (2.6; jit_avx512_common_gemm_f32 on AVX-512 hosts) point
// the stack pointer into the heap while they run, so a signal handler run on
// such a thread pushes its frame onto the heap and corrupts it (oneDNN issue
// 4845, fixed in 3.11.2). Measured here: SIGINT in the middle of SFT aborted
// the tiny speedrun with "corrupted size vs. prev_size" in 4 of 14 tries on a
// Zen 4 host, 0 of 14 with ember's own GEMM. So for a training stage's
// lifetime no thread that computes takes the signals: the main thread, the
// OpenMP pool and every thread started meanwhile (they inherit the mask)
// block SIGINT and SIGTERM, and one thread that computes nothing waits for
// them (sigtimedwait). The handler stays installed for any thread this misses.
#include "ember/train/stop_signals.h"

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <ctime>
#include <thread>
#include <vector>

#include "ember/core/error.h"
#include "ember/dist/communicator.h"
#include "ember/ops/creation.h"
#include "ember/util/stop_signal_mask.h"

namespace ember::train {
namespace {

std::atomic<int> g_signal{0};
std::atomic<bool> g_stop_waiting{false};
// Not a static std::thread: one still running at exit() would call std::terminate.
std::thread* g_waiter = nullptr;
struct sigaction g_old_int{}, g_old_term{};
sigset_t g_old_mask;

extern "C" void on_stop_signal(int sig) { g_signal.store(sig); }

// Records a stop signal pending on the calling thread, which blocks them: one
// raised by the thread itself (std::raise) is directed at it, and the waiting
// thread cannot take it.
void take_pending() {
  const sigset_t set = stop_signal_set();
  const timespec now{0, 0};
  for (int sig; (sig = sigtimedwait(&set, nullptr, &now)) > 0;) g_signal.store(sig);
}

}  // namespace

StopSignals::StopSignals() {
  if (g_waiter) fail("train", "a stop-signal scope is already active (one training stage at a time per process)");
  g_signal.store(0);
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
  block_stop_signals_in_this_thread(&g_old_mask);
  // The pool's threads exist already (an earlier parallel region made them);
  // they stay blocked afterwards too, which costs nothing: outside a stage the
  // signals' default action ends the process from the main thread. At least
  // two threads: libgomp skips its pool for a team of one, and would later
  // hand the docked, unblocked threads to a larger team; from a team of two
  // up it retires the pool's surplus threads, and threads it makes later are
  // made by this (blocked) thread and inherit its mask.
#pragma omp parallel num_threads(std::max(2, omp_get_max_threads()))
  block_stop_signals_in_this_thread();
  g_stop_waiting.store(false);
  try {
    g_waiter = new std::thread([] {
      const sigset_t wanted = stop_signal_set();
      const timespec tick{0, 50 * 1000 * 1000};
      while (!g_stop_waiting.load()) {
        const int sig = sigtimedwait(&wanted, nullptr, &tick);
        if (sig > 0) g_signal.store(sig);
      }
    });
  } catch (...) {  // no thread to be had: put everything back before the error goes on
    restore();
    throw;
  }
}

void StopSignals::restore() {
  take_pending();  // else unblocking would deliver it to the previous disposition
  pthread_sigmask(SIG_SETMASK, &g_old_mask, nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

StopSignals::~StopSignals() {
  g_stop_waiting.store(true);
  g_waiter->join();
  delete g_waiter;
  g_waiter = nullptr;
  restore();
}

int StopSignals::received() const {
  take_pending();
  return g_signal.load();
}

StopRequest agree_to_stop(dist::Communicator* comm, StopRequest mine) {
  if (!comm || comm->size() == 1) return mine;
  Tensor t = tensor({mine.stop ? 1.0 : 0.0, double(mine.signal)}, {2}, DType::f64);
  comm->all_reduce(t, dist::CommOp::max);
  const std::vector<double> all = t.to_vector<double>();
  return {all[0] > 0, int(all[1])};
}

}  // namespace ember::train
