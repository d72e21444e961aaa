// The stop-request signal handlers (see stop_signals.h).
#include "ember/train/stop_signals.h"

#include <atomic>
#include <csignal>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/ops/creation.h"

namespace ember::train {
namespace {

std::atomic<int> g_signal{0};
struct sigaction g_old_int{}, g_old_term{};

extern "C" void on_stop_signal(int sig) { g_signal.store(sig); }

}  // namespace

StopSignals::StopSignals() {
  g_signal.store(0);
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

int StopSignals::received() const { return g_signal.load(); }

StopRequest agree_to_stop(dist::Communicator* comm, StopRequest mine) {
  if (!comm || comm->size() == 1) return mine;
  Tensor t = tensor({mine.stop ? 1.0 : 0.0, double(mine.signal)}, {2}, DType::f64);
  comm->all_reduce(t, dist::CommOp::max);
  const std::vector<double> all = t.to_vector<double>();
  return {all[0] > 0, int(all[1])};
}

}  // namespace ember::train
