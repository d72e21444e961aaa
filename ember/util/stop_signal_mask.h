// SIGINT and SIGTERM, the signals that ask ember to stop, as a set, and
// keeping them off a thread that computes: Debian 12's oneDNN runs its
// AVX-512 GEMM with the stack pointer in the heap, so a handler run on such a
// thread corrupts the heap (train/stop_signals.cpp has the measurements).
// Threads a blocked thread starts (an OpenMP team) inherit the mask.
#pragma once

#include <pthread.h>

#include <csignal>

namespace ember {

inline sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

inline void block_stop_signals_in_this_thread(sigset_t* old_mask = nullptr) {
  const sigset_t set = stop_signal_set();
  pthread_sigmask(SIG_BLOCK, &set, old_mask);
}

}  // namespace ember
