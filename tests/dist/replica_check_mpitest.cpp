// The rank drift guard (dist/replica_check.h): replicas that agree pass; a
// deliberately perturbed rank (one weight one float32 step off) makes every
// rank throw the same one-line error naming the rank(s) that drifted, through
// dist::check_replicas_agree and through train::DataParallelRun (which the
// fine-tuning stages call before each checkpoint, as pretrain calls the former).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "dist/dist_test_util.h"
#include "ember/dist/replica_check.h"
#include "ember/ember.h"
#include "ember/nn/nn.h"
#include "ember/train/data_parallel_run.h"

using namespace ember;

namespace {

// Moves element k of a float32 tensor to the next float up.
void nudge(const Tensor& t, int64_t k) {
  float* p = t.data<float>();
  p[k] = std::nextafter(p[k], 1e30f);
}

TEST(ReplicaCheck, ChecksumSeesEveryWordAndTheTensorBoundaries) {
  Tensor a = tensor({1, 2, 3, 4, 5}, {5}), b = tensor({6, 7}, {2});
  const uint64_t h = dist::tensors_checksum({a, b});
  EXPECT_EQ(dist::tensors_checksum({a, b}), h);
  EXPECT_NE(dist::tensors_checksum({b, a}), h);
  EXPECT_NE(dist::tensors_checksum({tensor({1, 2, 3, 4}, {4}), tensor({5, 6, 7}, {3})}), h);
  for (int64_t k : {0, 4}) {  // a whole word and the last, half-filled one
    Tensor c = tensor({1, 2, 3, 4, 5}, {5});
    nudge(c, k);
    EXPECT_NE(dist::tensors_checksum({c, b}), h) << k;
  }
}

TEST(ReplicaCheck, ErrorNamesTheRanksThatDrifted) {
  auto comm = dist::world();
  const int n = comm->size(), r = comm->rank();
  Generator gen(3);
  const Tensor w = randn({4, 5}, DType::f32, Device::cpu(), &gen), v = randn({7}, DType::f32, Device::cpu(), &gen);
  EXPECT_NO_THROW(dist::check_replicas_agree(*comm, {w, v}, "pretrain", "step 3", r));
  if (n == 1) return;
  // The last rank drifts; with 3 ranks also rank 1 (another way): both named,
  // against the majority's rank 0.
  const bool drift = r == n - 1 || (n == 3 && r == 1);
  if (r == n - 1) nudge(v, 6);
  if (n == 3 && r == 1) nudge(w, 0);
  const std::string got = dist_test::error_of(
      [&] { dist::check_replicas_agree(*comm, {w, v}, "pretrain", "step 3", 10 + r); });  // labels: world ranks
  const std::string who = n == 2 ? "rank 11 differ from those on rank 10" : "ranks 11 and 12 differ from those on rank 10";
  EXPECT_NE(got.find("[pretrain] step 3: the data-parallel replicas have drifted apart: the parameters on " + who),
            std::string::npos)
      << got << " (this rank drifted: " << drift << ")";
  EXPECT_NE(got.find("no checkpoint is written"), std::string::npos) << got;
  EXPECT_EQ(got.find('\n'), std::string::npos) << got;
}

TEST(ReplicaCheck, OnTwoOfThreeRanksRankZeroIsTheOneNamed) {
  auto comm = dist::world();
  if (comm->size() != 3) GTEST_SKIP() << "needs 3 ranks";
  Tensor w = tensor({1, 2, 3}, {3});
  if (comm->rank() == 0) nudge(w, 1);
  const std::string got = dist_test::error_of([&] { dist::check_replicas_agree(*comm, {w}, "sft", "step 8", comm->rank()); });
  EXPECT_NE(got.find("the parameters on rank 0 differ from those on ranks 1 and 2"), std::string::npos) << got;
}

TEST(ReplicaCheck, DataParallelRunChecksTheWrappedModule) {
  train::DataParallelRun dp("sft");
  Generator gen(dp.rank() + 1);  // different weights: wrap() broadcasts rank 0's
  nn::Linear model(6, 3, true, &gen);
  dp.wrap(model);
  EXPECT_NO_THROW(dp.check_replicas(4));
  if (!dp.distributed()) return;
  if (dp.rank() == 1) nudge(model.parameters()[0], 5);
  const std::string got = dist_test::error_of([&] { dp.check_replicas(8); });
  EXPECT_NE(got.find("[sft] step 8: the data-parallel replicas have drifted apart: the parameters on rank 1 differ"),
            std::string::npos)
      << got;
}

}  // namespace
