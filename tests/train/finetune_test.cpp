// The fine-tuning stages' shared stops (train/finetune.h): checkpoints every
// checkpoint_every steps and at the last step; SIGTERM and stop_after stop the
// loop at a step boundary with a checkpoint. (Resuming itself is tested per
// stage: tests/chat/sft_test.cpp, reward_test.cpp, dpo_test.cpp.)
#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

#include "ember/train/finetune.h"

namespace ember::train {
namespace {

TEST(FinetuneStops, CheckpointWhenDueAndStopOnStopAfterOrSignal) {
  std::vector<int64_t> saved;
  auto save = [&](int64_t step) {
    saved.push_back(step);
    return "ckpt-" + std::to_string(step);
  };
  std::string checkpoint;
  {
    const FinetuneStops stops(10, 4, 0);
    for (int64_t step = 1; step <= 10; ++step) EXPECT_FALSE(stops.end_step(step, save, &checkpoint, true)) << step;
    EXPECT_EQ(saved, (std::vector<int64_t>{4, 8, 10}));
    EXPECT_EQ(checkpoint, "ckpt-10");
  }
  saved.clear();
  {
    const FinetuneStops stops(10, 0, 3);
    EXPECT_FALSE(stops.end_step(1, save, &checkpoint, true));
    EXPECT_FALSE(stops.end_step(2, save, &checkpoint, true));
    EXPECT_TRUE(stops.end_step(3, save, &checkpoint, true));
    EXPECT_EQ(stops.signal(), 0);
    EXPECT_EQ(saved, (std::vector<int64_t>{3}));
  }
  saved.clear();
  {
    const FinetuneStops stops(10, 0, 0);
    EXPECT_FALSE(stops.end_step(1, save, &checkpoint, true));
    std::raise(SIGTERM);  // handled while `stops` lives: a request to stop, not the end of the process
    EXPECT_TRUE(stops.end_step(2, save, &checkpoint, true));
    EXPECT_EQ(stops.signal(), SIGTERM);
    EXPECT_EQ(saved, (std::vector<int64_t>{2}));
    EXPECT_EQ(checkpoint, "ckpt-2");
  }
}

}  // namespace
}  // namespace ember::train
