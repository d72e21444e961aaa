// `ember pretrain --device cuda`: a run on the GPU logs the CPU run's losses
// (float32 rounding apart), and its checkpoints are device-neutral: a run
// stopped on the GPU resumes on the CPU and ends where the uninterrupted GPU
// run does.
#include "cuda/cuda_test_util.h"

#include <cmath>

#include "train/pretrain_corpus.h"

namespace ember::train {
namespace {

TEST(CudaPretrain, GpuRunFollowsTheCpuRunAndResumesOnTheCpu) {
  EMBER_REQUIRE_GPU();
  auto options = [](const std::string& run, const std::string& device) {
    PretrainOptions o = corpus().options(run);
    o.steps = 8;
    o.eval_every = 4;
    o.device = device;
    return o;
  };
  pretrain(options("cuda_ref_cpu", "cpu"));
  PretrainResult gpu = pretrain(options("cuda_gpu", "cuda"));
  const std::vector<double> want = train_losses(corpus().root + "/cuda_ref_cpu");
  const std::vector<double> got = train_losses(corpus().root + "/cuda_gpu");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-3 * std::fabs(want[i])) << "step " << i + 1;
  EXPECT_TRUE(std::isfinite(gpu.val_loss));

  PretrainOptions part = options("cuda_switch", "cuda");
  part.stop_after = 4;
  EXPECT_TRUE(pretrain(part).interrupted);  // as if interrupted, with a checkpoint at step 4
  part.stop_after = 0;
  part.resume = true;
  part.device = "cpu";
  pretrain(part);
  const std::vector<double> switched = train_losses(corpus().root + "/cuda_switch");
  ASSERT_EQ(switched.size(), got.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(switched[i], got[i], 1e-3 * std::fabs(got[i])) << "step " << i + 1;
}

}  // namespace
}  // namespace ember::train
