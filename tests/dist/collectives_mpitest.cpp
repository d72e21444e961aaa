// Tests of the MPI communicator under mpirun (any rank count >= 2): every
// collective and send/recv against a hand computation, argument errors, the
// cross-rank consistency check, the timeout (a rank that never joins), and an
// all-reduce bandwidth measurement (disabled by default).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/ember.h"
#include "tests/dist/dist_test_util.h"

using namespace ember;
using namespace ember::dist;
using namespace ember::dist_test;

namespace {

std::shared_ptr<Communicator> comm() { return world(); }

TEST(DistCollectives, RunsUnderMpiWithSeveralRanks) {
  EXPECT_EQ(comm()->backend(), "mpi");
  EXPECT_GE(comm()->size(), 2);
}

TEST(DistCollectives, AllReduceSumAvgMaxEveryDtype) {
  auto c = comm();
  int n = c->size(), r = c->rank();
  for (DType dt : {DType::f32, DType::f64, DType::i64, DType::bf16}) {
    for (CommOp op : {CommOp::sum, CommOp::avg, CommOp::max}) {
      if (op == CommOp::avg && dt == DType::i64) continue;
      Tensor t = ranked(dt, 5, r);
      c->all_reduce(t, op);
      std::vector<double> got = t.to_vector<double>();
      for (int64_t i = 0; i < 5; ++i) {
        double sum = 10.0 * n * (n - 1) / 2 + double(n) * double(i);
        double want = op == CommOp::sum ? sum : op == CommOp::avg ? sum / n : 10.0 * (n - 1) + double(i);
        EXPECT_NEAR(got[size_t(i)], want, dt == DType::bf16 ? 0.5 : 1e-9)
            << dtype_name(dt) << " " << comm_op_name(op) << " element " << i;
      }
      EXPECT_EQ(t.dtype(), dt);
    }
  }
}

TEST(DistCollectives, ReduceScatterGivesEachRankItsChunk) {
  auto c = comm();
  int n = c->size(), r = c->rank();
  for (DType dt : {DType::f32, DType::f64, DType::i64, DType::bf16}) {
    Tensor in = ranked(dt, 3 * n, r);  // chunk k of rank q: 10 q + 3 k + m
    Tensor out = zeros({3}, dt);
    c->reduce_scatter(in, out, CommOp::sum);
    std::vector<double> got = out.to_vector<double>();
    for (int m = 0; m < 3; ++m)
      EXPECT_DOUBLE_EQ(got[size_t(m)], 10.0 * n * (n - 1) / 2 + double(n) * (3 * r + m)) << dtype_name(dt);
  }
  Tensor in = ranked(DType::f32, 2 * n, r), out = zeros({2});
  c->reduce_scatter(in, out, CommOp::avg);
  EXPECT_FLOAT_EQ(out.to_vector<float>()[1], float(10.0 * (n - 1) / 2 + 2 * r + 1));
}

TEST(DistCollectives, AllGatherConcatenatesInRankOrder) {
  auto c = comm();
  int n = c->size(), r = c->rank();
  for (DType dt : {DType::f32, DType::f64, DType::i64, DType::bf16}) {
    Tensor in = ranked(dt, 2, r), out = zeros({2 * n}, dt);
    c->all_gather(in, out);
    std::vector<double> got = out.to_vector<double>();
    for (int q = 0; q < n; ++q) {
      EXPECT_EQ(got[size_t(2 * q)], 10.0 * q) << dtype_name(dt);
      EXPECT_EQ(got[size_t(2 * q + 1)], 10.0 * q + 1) << dtype_name(dt);
    }
  }
}

TEST(DistCollectives, BroadcastFromTheLastRank) {
  auto c = comm();
  int n = c->size(), r = c->rank();
  for (DType dt : {DType::f32, DType::i64, DType::bf16}) {
    Tensor t = ranked(dt, 4, r);
    c->broadcast(t, n - 1);
    EXPECT_EQ(t.to_vector<double>(), ranked(dt, 4, n - 1).to_vector<double>()) << dtype_name(dt);
  }
  c->barrier();
}

TEST(DistCollectives, SendRecvAroundARing) {
  auto c = comm();
  int n = c->size(), r = c->rank();
  Tensor out = ranked(DType::f64, 3, r), in = zeros({3}, DType::f64);
  auto s = c->send_async(out, (r + 1) % n, 7);
  auto q = c->recv_async(in, (r + n - 1) % n, 7);
  q->wait();
  s->wait();
  EXPECT_EQ(in.to_vector<double>(), ranked(DType::f64, 3, (r + n - 1) % n).to_vector<double>());
  // A receive buffer larger than the message is an error naming both sizes.
  if (r == 0) c->send(ranked(DType::f32, 3, 0), 1, 8);
  if (r == 1) {
    Tensor big = zeros({4});
    std::string e = error_of([&] { c->recv(big, 0, 8); });
    EXPECT_NE(e.find("[recv] rank 0 sent 3 elements"), std::string::npos) << e;
    EXPECT_NE(e.find("[4] holds 4"), std::string::npos) << e;
  }
  c->barrier();
}

TEST(DistCollectives, ArgumentErrorsNameTheOpAndShapes) {
  auto c = comm();
  int n = c->size();
  std::string e = error_of([&] { c->reduce_scatter(zeros({2 * n + 1}), zeros({2})); });
  EXPECT_EQ(e.rfind("[reduce_scatter] input of shape [", 0), 0u) << e;
  EXPECT_NE(e.find("output of shape [2]"), std::string::npos) << e;
  e = error_of([&] { c->all_gather(zeros({2}), zeros({2 * n}, DType::f64)); });
  EXPECT_EQ(e, "[all_gather] input dtype float32 and output dtype float64 differ");
  e = error_of([&] { c->all_reduce(zeros({2}, DType::i64), CommOp::avg); });
  EXPECT_EQ(e, "[all_reduce] avg needs a floating dtype, got int64");
  e = error_of([&] { c->all_reduce(zeros({2}, DType::u8)); });
  EXPECT_NE(e.find("dtype uint8"), std::string::npos) << e;
  e = error_of([&] { c->broadcast(zeros({2}), n); });
  EXPECT_EQ(e, str_cat("[broadcast] rank ", n, " is out of range for ", n, " ranks"));
  e = error_of([&] { c->all_reduce(transpose(zeros({2, 3}), 0, 1)); });
  EXPECT_NE(e.find("must be contiguous"), std::string::npos) << e;
}

TEST(DistCollectives, ConsistencyCheckNamesTheDisagreeingRanks) {
  CommOptions o = CommOptions::from_env();
  o.check_consistency = true;
  auto c = make_mpi_communicator(o);
  int r = c->rank();
  Tensor t = zeros({r == 0 ? 3 : 4});
  std::string e = error_of([&] { c->all_reduce(t); });
  EXPECT_EQ(e.rfind("[all_reduce] ranks disagree: rank ", 0), 0u) << e;
  EXPECT_NE(e.find(r == 0 ? "has float32 x 3" : "has float32 x 4"), std::string::npos) << e;
  c->barrier();
}

TEST(DistTimeout, ARankThatNeverJoinsMakesTheOthersFail) {
  CommOptions o = CommOptions::from_env();
  o.timeout_s = 0.5;
  o.abort_on_timeout = false;  // throw, so the test can look at the error
  auto c = make_mpi_communicator(o);
  int n = c->size(), r = c->rank();
  Tensor t = full({2}, 1.0);
  auto start = std::chrono::steady_clock::now();
  if (r == 0) {
    // Skip the collective long enough for the others to give up, then join late.
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    c->all_reduce(t);
  } else {
    std::string e = error_of([&] { c->all_reduce(t); });
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(e.rfind(str_cat("[all_reduce] rank ", r, " of ", n, ": timed out after "), 0), 0u) << e;
    EXPECT_NE(e.find("EMBER_DIST_TIMEOUT_S"), std::string::npos) << e;
    EXPECT_LT(waited, 1.9);
  }
  // The next operation first completes the abandoned one (rank 0 joined late).
  c->set_timeout(30);
  c->barrier();
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{float(n), float(n)}));
}

// Run by the dist_abort_on_timeout CTest: rank 0 never calls the all-reduce;
// the others must abort the whole job (MPI_Abort) with the timeout message.
TEST(DistTimeout, DISABLED_AbortsTheJob) {
  CommOptions o = CommOptions::from_env();
  o.timeout_s = 1.0;
  auto c = make_mpi_communicator(o);
  if (c->rank() == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(50));  // killed by the abort long before
    ADD_FAILURE() << "the job was not aborted";
    return;
  }
  Tensor t = zeros({4});
  c->all_reduce(t);
  ADD_FAILURE() << "all_reduce returned although rank 0 never joined";
}

// Bandwidth of a 16 MiB float32 all-reduce (median of 15 after 3 warm-ups):
//   mpirun --allow-run-as-root --oversubscribe -np 2 ember_dist_tests
//     --gtest_also_run_disabled_tests --gtest_filter=DistBench.DISABLED_AllReduce16MB
// (one command line)
TEST(DistBench, DISABLED_AllReduce16MB) {
  auto c = comm();
  const int64_t n = (16 << 20) / 4;
  Tensor t = full({n}, 1.0);
  std::vector<double> secs;
  for (int i = 0; i < 18; ++i) {
    c->barrier();
    auto start = std::chrono::steady_clock::now();
    c->all_reduce(t, CommOp::sum);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= 3) secs.push_back(s);
  }
  std::sort(secs.begin(), secs.end());
  double med = secs[secs.size() / 2];
  double bytes = double(n) * 4, ranks = c->size();
  if (c->rank() == 0)
    std::printf("all_reduce 16 MiB float32, %d ranks: median %.2f ms (min %.2f, max %.2f); algbw %.2f GB/s, "
                "busbw %.2f GB/s\n",
                c->size(), med * 1e3, secs.front() * 1e3, secs.back() * 1e3, bytes / med / 1e9,
                bytes / med / 1e9 * 2 * (ranks - 1) / ranks);
}

}  // namespace
