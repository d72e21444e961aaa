// ValueModel: the GPT trunk with a scalar head (reward model, PPO critic).
#include <gtest/gtest.h>

#include <filesystem>

#include "ember/models/value_model.h"
#include "ember/nn/copy.h"
#include "ember/nn/module_io.h"
#include "ember/ops/ops.h"
#include "test_util.h"

namespace ember::models {
namespace {

GPTConfig small_cfg() {
  GPTConfig c = GPTConfig::preset("tiny");
  c.n_layer = 2, c.n_head = 2, c.n_kv_head = 2, c.n_embd = 32, c.block_size = 16, c.vocab_size = 50;
  return c;
}

TEST(ValueModel, NamesAreTheTrunksPlusScore) {
  Generator gen(1);
  ValueModel vm(small_cfg(), &gen);
  const auto names = vm.state_dict();
  EXPECT_TRUE(names.count("transformer.wte.weight"));
  EXPECT_TRUE(names.count("transformer.h.1.mlp.c_proj.weight"));
  EXPECT_TRUE(names.count("score.weight"));
  EXPECT_TRUE(names.count("score.bias"));
  EXPECT_FALSE(names.count("lm_head.weight"));
  EXPECT_EQ(vm.get_tensor("score.weight").shape(), (Shape{1, 32}));
}

TEST(ValueModel, FreshHeadScoresZeroAndGradientsReachTheTrunk) {
  Generator gen(2);
  ValueModel vm(small_cfg(), &gen);
  Tensor idx = tensor_i64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor v = vm.values(idx);
  EXPECT_EQ(v.shape(), (Shape{2, 3}));
  for (float x : v.to_vector<float>()) EXPECT_EQ(x, 0.0f);
  nn::copy_(vm.score->weight, full({1, 32}, 0.1));
  Tensor s = vm.score_at(idx, tensor_i64({2, 0}, {2}));
  sum(s).backward();
  EXPECT_GT(sum(abs(vm.transformer->wte->weight.grad())).item<double>(), 0.0);
  EXPECT_GT(std::abs(vm.score->bias.grad().item<double>()), 0.0);
}

TEST(ValueModel, ScoreAtReadsEachRowsLastToken) {
  Generator gen(3);
  ValueModel vm(small_cfg(), &gen);
  nn::copy_(vm.score->weight, randn({1, 32}, DType::f32, Device::cpu(), &gen));
  Tensor idx = tensor_i64({7, 8, 9, 10, 11, 12, 13, 14}, {2, 4});
  const std::vector<float> all = vm.values(idx).to_vector<float>();
  const std::vector<float> s = vm.score_at(idx, tensor_i64({1, 3}, {2})).to_vector<float>();
  EXPECT_FLOAT_EQ(s[0], all[1]);
  EXPECT_FLOAT_EQ(s[1], all[7]);
  EXPECT_ERROR(vm.score_at(idx, tensor_i64({1, 4}, {2})), "[ValueModel] score_at: last-token indices must be in [0, 4), got [1, 4]");
}

TEST(ValueModel, LoadTrunkTakesAGptCheckpointsWeights) {
  const std::string path = ::testing::TempDir() + "/ember_value_model_" + std::to_string(::getpid()) + ".safetensors";
  Generator g1(4), g2(5);
  GPT gpt(small_cfg(), &g1);
  nn::save_module(gpt, path);
  ValueModel vm(small_cfg(), &g2);
  vm.load_trunk(path);
  nn::copy_(vm.score->weight, full({1, 32}, 1.0));
  Tensor idx = tensor_i64({3, 1, 4, 1, 5}, {1, 5});
  // With weight all ones and bias zero, the value is the sum of the hidden state.
  const std::vector<float> want = sum(gpt.hidden_states(idx), {-1}).to_vector<float>();
  const std::vector<float> got = vm.values(idx).to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << i;

  GPTConfig other = small_cfg();
  other.n_embd = 64;
  ValueModel wrong(other, &g2);
  EXPECT_ERROR(wrong.load_trunk(path), "[ValueModel] " + path + ": tensor \"transformer.h.0.attn.c_attn.bias\" has shape [96]");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ember::models
