// The pretraining loop end to end on the built-in corpus: the loss falls,
// resuming reproduces an uninterrupted run exactly, a non-finite loss stops
// the run and keeps the last good checkpoint, and checkpoints are atomic.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "ember/core/error.h"
#include "ember/ops/ops.h"
#include "ember/data/builtin_corpus.h"
#include "ember/data/prepare.h"
#include "ember/tokenizer/train.h"
#include "ember/train/checkpoint.h"
#include "ember/train/pretrain.h"
#include "test_util.h"
#include "train/pretrain_corpus.h"

namespace ember::train {
namespace {
namespace fs = std::filesystem;

TEST(Pretrain, TinyPresetLearnsTheBuiltinCorpus) {
  // The `tiny` preset itself (4 layers, n_embd 256; its 8192-entry embedding
  // is larger than this tokenizer needs, which is allowed), on short sequences
  // to keep the suite quick.
  PretrainOptions o = corpus().options("tiny");
  o.config_json.clear();
  o.preset = "tiny";
  o.steps = 300;
  o.eval_every = 100;
  o.lr = 2e-3;
  PretrainResult r = pretrain(o);
  EXPECT_EQ(r.step, 300);
  EXPECT_FALSE(r.interrupted);
  const std::vector<double> losses = train_losses(o.out_dir);
  ASSERT_EQ(losses.size(), 300u);
  // At init the loss is about ln(8192) = 9.01; the built-in corpus is very
  // regular: 300 steps of 512 tokens bring validation to about 1.3 nats
  // (measured: 2.70, 1.66, 1.31 at steps 100, 200, 300).
  EXPECT_NEAR(losses.front(), std::log(8192.0), 0.3);
  EXPECT_LT(r.val_loss, 1.8);
  EXPECT_GT(r.val_bpb, 0.0);
  EXPECT_TRUE(fs::exists(o.out_dir + "/loss.svg"));
  EXPECT_TRUE(has_checkpoint(o.out_dir));
  const std::string ckpt = resolve_checkpoint(o.out_dir);
  EXPECT_EQ(fs::path(ckpt).filename(), "ckpt-00000300");
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json", "tokenizer"})
    EXPECT_TRUE(fs::exists(ckpt + "/" + f)) << f;
  EXPECT_EQ(read_trainer_json(ckpt)["step"], 300);
}

TEST(Pretrain, ResumeReproducesTheUninterruptedRun) {
  PretrainOptions full = corpus().options("uninterrupted");
  full.steps = 12;
  full.eval_every = 5;
  pretrain(full);

  PretrainOptions part = corpus().options("resumed");
  part.steps = 12;
  part.eval_every = 5;
  part.stop_after = 7;
  PretrainResult first = pretrain(part);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.step, 7);
  part.stop_after = 0;
  part.resume = true;
  part.lr = 123.0;  // ignored: a resumed run keeps the checkpoint's hyper-parameters
  PretrainResult second = pretrain(part);
  EXPECT_EQ(second.step, 12);
  // Bit-identical losses, step by step, including those after the resume.
  EXPECT_EQ(train_losses(part.out_dir), train_losses(full.out_dir));
}

// --compile runs each step (two micro-batches, clipping, AdamW) as one graph:
// the same losses as the eager run to float32 rounding, also when it resumes
// from a checkpoint an eager run wrote (the optimizer's state and step count
// carry over into the graph's captures and counters).
TEST(Pretrain, CompiledStepsMatchEagerAcrossAResume) {
  auto accumulating = [](const char* run) {
    PretrainOptions o = corpus().options(run);
    o.steps = 10, o.eval_every = 5, o.grad_accum = 2, o.batch_size = 4;
    return o;
  };
  PretrainOptions eager = accumulating("eager_accum");
  pretrain(eager);

  PretrainOptions mixed = accumulating("compiled_accum");
  mixed.stop_after = 4;  // steps 1-4 eager
  pretrain(mixed);
  mixed.stop_after = 0;
  mixed.resume = true;
  mixed.compile = true;  // steps 5-10 compiled
  PretrainResult r = pretrain(mixed);
  EXPECT_EQ(r.step, 10);
  const std::vector<double> want = train_losses(eager.out_dir), got = train_losses(mixed.out_dir);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << "step " << i + 1;
  EXPECT_EQ(read_trainer_json(resolve_checkpoint(mixed.out_dir))["step"], 10);
}

TEST(Pretrain, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  for (bool compiled : {false, true}) {
    PretrainOptions o = corpus().options(compiled ? "nonfinite_compiled" : "nonfinite");
    o.steps = 20;
    o.checkpoint_every = 1;
    o.warmup_steps = 0;
    o.grad_clip = 0;
    o.lr = 1e30;  // the first update overflows the weights
    o.compile = compiled;
    try {
      pretrain(o);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
      EXPECT_NE(msg.find("ckpt-0000000"), std::string::npos) << msg;
    }
    ASSERT_TRUE(has_checkpoint(o.out_dir));
    const int64_t kept = read_trainer_json(resolve_checkpoint(o.out_dir))["step"];
    EXPECT_GE(kept, 1);
  }
}

TEST(Pretrain, BadInputIsAClearError) {
  PretrainOptions o = corpus().options("bad");
  o.steps = 2;
  o.data_dir = corpus().root + "/no-such-data";
  EXPECT_THROW(pretrain(o), Error);
  o = corpus().options("bad");
  o.resume = true;
  try {
    pretrain(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has no checkpoint"), std::string::npos) << e.what();
  }
  // A tokenizer other than the data's is refused.
  BpeTrainOptions bpe;
  bpe.vocab_size = 300;
  train_bpe({"some other text entirely, some other text"}, bpe).save(corpus().root + "/other_tok");
  o = corpus().options("bad");
  o.tokenizer_dir = corpus().root + "/other_tok";
  EXPECT_THROW(pretrain(o), Error);
  EXPECT_THROW(resolve_checkpoint(corpus().root), Error);
}

TEST(Pretrain, DeviceWithoutAGpuIsAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is visible (tests/cuda/pretrain_cuda_test.cpp trains on it)";
  PretrainOptions o = corpus().options("no_gpu");
  o.steps = 2;
  o.device = "cuda";
  EXPECT_ERROR(pretrain(o), "[pretrain] --device cuda: ");
  o.device = "tpu";
  EXPECT_ERROR(pretrain(o), "[device] cannot parse device 'tpu'");
}

TEST(Checkpoint, KeepsTheNewestAndLatestIsAtomic) {
  const std::string run = corpus().root + "/ckpt_rotation";
  nn::Module m;
  m.register_parameter("w", ones({2, 2}));
  for (int64_t step : {1, 2, 3, 4}) save_checkpoint(run, step, {&m, nullptr, {{"step", step}}, {}}, 2);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(run)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt-00000003", "ckpt-00000004", "latest"}));
  EXPECT_EQ(read_trainer_json(resolve_checkpoint(run))["step"], 4);
  // Saving the same step again replaces it.
  save_checkpoint(run, 4, {&m, nullptr, {{"step", 4}, {"again", true}}, {}}, 2);
  EXPECT_EQ(read_trainer_json(resolve_checkpoint(run))["again"], true);
}

}  // namespace
}  // namespace ember::train
