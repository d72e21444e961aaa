// train::StopSignals: a SIGINT or SIGTERM sent to the process during a stage is
// recorded (not run as a handler on a computing thread, see stop_signals.cpp),
// and the previous handler and signal mask come back afterwards.
#include <gtest/gtest.h>
#include <omp.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>

#include "ember/core/error.h"
#include "ember/train/stop_signals.h"

using namespace ember;

namespace {

volatile std::sig_atomic_t g_previous_handler_ran = 0;
extern "C" void previous_handler(int) { g_previous_handler_ran = 1; }

bool blocked_here(int sig) {
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, nullptr, &now);
  return sigismember(&now, sig) == 1;
}

// Waits (up to 5 s) for the stage to see a signal.
int wait_for(const train::StopSignals& stops) {
  for (int i = 0; i < 500 && stops.received() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return stops.received();
}

}  // namespace

TEST(StopSignals, ASignalDuringComputeIsRecordedNotRunOnAComputingThread) {
  struct sigaction mine{}, before{};
  mine.sa_handler = previous_handler;
  sigemptyset(&mine.sa_mask);
  ASSERT_EQ(sigaction(SIGTERM, &mine, &before), 0);
  ASSERT_FALSE(blocked_here(SIGTERM));
  // The OpenMP pool exists before the stage, as it does in a trainer, and
  // takes signals (an earlier stage in this process leaves its threads
  // blocking them: unblock them, as a fresh pool would be).
  const int threads = std::max(2, omp_get_max_threads());
#pragma omp parallel num_threads(threads)
  {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
  }
  {
    train::StopSignals stops;
    EXPECT_EQ(stops.received(), 0);
    EXPECT_TRUE(blocked_here(SIGTERM));  // the computing thread does not take it
    int unblocked = 0;
#pragma omp parallel num_threads(threads) reduction(+ : unblocked)
    { unblocked += blocked_here(SIGTERM) ? 0 : 1; }
    EXPECT_EQ(unblocked, 0) << "of " << threads << " OpenMP threads";
    // One scope at a time.
    EXPECT_THROW(train::StopSignals second, Error);
    // Process-directed, while the OpenMP pool computes.
    double sum = 0;
#pragma omp parallel for reduction(+ : sum)
    for (int i = 0; i < 4000000; ++i) {
      if (i == 1000) kill(getpid(), SIGTERM);
      sum += 1.0 / (1.0 + i);
    }
    EXPECT_GT(sum, 0.0);
    EXPECT_EQ(wait_for(stops), SIGTERM);
    EXPECT_EQ(g_previous_handler_ran, 0);
  }
  // Afterwards: the thread's mask and the previous handler are back.
  EXPECT_FALSE(blocked_here(SIGTERM));
  struct sigaction now{};
  ASSERT_EQ(sigaction(SIGTERM, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, previous_handler);
  kill(getpid(), SIGTERM);
  for (int i = 0; i < 500 && !g_previous_handler_ran; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(g_previous_handler_ran, 1);
  sigaction(SIGTERM, &before, nullptr);
}

TEST(StopSignals, EachStageStartsWithoutASignal) {
  {
    train::StopSignals first;
    kill(getpid(), SIGINT);
    EXPECT_EQ(wait_for(first), SIGINT);
  }
  train::StopSignals second;
  EXPECT_EQ(second.received(), 0);
}

TEST(StopSignals, ASignalTheThreadRaisesItselfIsSeenToo) {
  // std::raise directs the signal at the calling thread, which blocks it: the
  // stage takes it from the thread's pending set (and never lets it reach the
  // previous disposition, here the default one, which would end the process).
  train::StopSignals stops;
  std::raise(SIGINT);
  EXPECT_EQ(stops.received(), SIGINT);
}
