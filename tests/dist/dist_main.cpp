// main() of the distributed tests: every rank runs all tests; the exit code is
// non-zero on every rank if any rank failed (so mpirun reports the failure).
#include <gtest/gtest.h>

#include <cstdio>

#include "ember/dist/communicator.h"
#include "ember/ops/creation.h"

namespace {
// On ranks other than 0: print only failed assertions, tagged with the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};
}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto comm = ember::dist::world();  // initialises MPI under mpirun
  if (comm->rank() != 0) {
    // Only rank 0 prints the full report; other ranks print failures only.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(comm->rank()));
  }
  int rc = RUN_ALL_TESTS();
  ember::Tensor failed = ember::tensor_i64({rc != 0 ? 1 : 0}, {1});
  comm->all_reduce(failed, ember::dist::CommOp::max);
  int any = int(failed.item<int64_t>());
  if (any && rc == 0 && comm->rank() == 0) std::fprintf(stderr, "ember_dist_tests: a test failed on another rank\n");
  return any ? 1 : 0;
}
