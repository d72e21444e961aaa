// train::DataParallelRun under mpirun (the fine-tuning stages' data parallel):
// the ranks' shares tile a global batch in rank order, a loss weighted with
// weighted_loss() gives every rank the gradient of the global batch's mean
// (also when the shares are uneven or a rank's share is empty), the host-side
// reductions, and the one-line errors for a batch that does not divide and for
// ranks started with other options. End to end through the CLI:
// tests/chat/finetune_mpi_test.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "ember/ember.h"
#include "ember/nn/nn.h"
#include "ember/train/data_parallel_run.h"

using namespace ember;

namespace {

TEST(DataParallelRun, SharesTileTheBatchInRankOrder) {
  train::DataParallelRun dp("test");
  for (int64_t n : {0, 1, 5, 6, 7, 12}) {
    int64_t next = 0;
    for (int r = 0; r < dp.size(); ++r) {
      const auto [begin, end] = dp.share_of(r, n);
      EXPECT_EQ(begin, next) << n;
      EXPECT_LE(end - begin, n / dp.size() + 1) << n;
      next = end;
    }
    EXPECT_EQ(next, n);
    EXPECT_EQ(dp.share(n), dp.share_of(dp.rank(), n));
  }
  std::vector<int> items{10, 11, 12, 13, 14, 15};
  const std::vector<int> mine = dp.take_share(items);
  const auto [begin, end] = dp.share(6);
  EXPECT_EQ(mine, std::vector<int>(items.begin() + begin, items.begin() + end));
}

// Rows of a global batch with a weight each (a row's trained tokens): the loss
// is sum_i w_i l_i / sum_i w_i, where l_i is row i's squared error.
struct Batch {
  Tensor x, y, w;
};
Batch global_batch(int64_t n) {
  Generator gen(77 + uint64_t(n));
  Batch b{randn({n, 6}, DType::f32, Device::cpu(), &gen), randn({n, 3}, DType::f32, Device::cpu(), &gen), {}};
  std::vector<double> w;
  for (int64_t i = 0; i < n; ++i) w.push_back(double(1 + (i * 7) % 5));
  b.w = tensor(w, {n});
  return b;
}
Tensor weighted_mean_loss(nn::Linear& m, const Batch& b, int64_t first, int64_t count) {
  Tensor d = sub(m.forward(narrow(b.x, 0, first, count)), narrow(b.y, 0, first, count));
  Tensor w = narrow(b.w, 0, first, count);
  return div(sum(mul(sum(mul(d, d), {1}), w)), sum(w));
}

TEST(DataParallelRun, WeightedLossesGiveTheGlobalMeanGradient) {
  for (int64_t n : {1, 5, 6}) {  // n = 1: the other ranks have no rows and run no backward
    const Batch b = global_batch(n);
    Generator g1(5), g2(5);
    nn::Linear reference(6, 3, true, &g1), model(6, 3, true, &g2);
    Tensor ref_loss = weighted_mean_loss(reference, b, 0, n);
    ref_loss.backward();

    train::DataParallelRun dp("test");
    dp.wrap(model);
    const auto [begin, end] = dp.share(n);
    const double total = sum(b.w).item<double>();
    double loss = 0;
    if (end > begin) {
      const double mine = sum(narrow(b.w, 0, begin, end - begin)).item<double>();
      Tensor l = dp.weighted_loss(weighted_mean_loss(model, b, begin, end - begin), mine, total);
      l.backward();
      loss = l.item<double>();
    }
    dp.sync_gradients();
    EXPECT_NEAR(dp.sum(loss) / dp.size(), ref_loss.item<double>(), 1e-6 * ref_loss.item<double>()) << n;
    const auto want = reference.parameters(), got = model.parameters();
    for (size_t p = 0; p < want.size(); ++p) {
      const auto a = want[p].grad().to_vector<double>(), g = got[p].grad().to_vector<double>();
      for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(g[k], a[k], 1e-6 * (1 + std::abs(a[k]))) << n << " " << p;
    }
  }
}

TEST(DataParallelRun, SumsMaximaAndGathers) {
  train::DataParallelRun dp("test");
  const int n = dp.size(), r = dp.rank();
  std::vector<double> v{double(r), 1.0};
  dp.sum(v);
  EXPECT_EQ(v, (std::vector<double>{double(n * (n - 1) / 2), double(n)}));
  EXPECT_EQ(dp.max(double(r)), double(n - 1));
  EXPECT_EQ(dp.any(r == n - 1), true);
  EXPECT_EQ(dp.any(false), false);
  const std::vector<int64_t> all = dp.all_gather(std::vector<int64_t>{r, 10 * r});
  ASSERT_EQ(all.size(), size_t(2 * n));
  for (int k = 0; k < n; ++k) EXPECT_EQ(all[size_t(2 * k + 1)], 10 * k);
}

TEST(DataParallelRun, OneLineErrorsOnEveryRank) {
  train::DataParallelRun dp("sft");
  EXPECT_NO_THROW(dp.require_divisible(6 * dp.size(), "--batch"));
  EXPECT_NO_THROW(dp.require_same({{"lr", 1e-3}, {"data", "a.jsonl"}}, "options"));
  if (dp.size() == 1) return;
  try {
    dp.require_divisible(dp.size() + 1, "--batch");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string want = "[sft] --batch " + std::to_string(dp.size() + 1) + " does not divide by the " +
                             std::to_string(dp.size()) + " ranks";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
  try {  // every rank sees the mismatch (the fingerprints are gathered), so none is left waiting
    dp.require_same({{"lr", dp.rank() == 1 ? 2e-3 : 1e-3}}, "options");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[sft] rank 1 runs with other options than rank 0"), std::string::npos)
        << e.what();
  }
}

}  // namespace
