// A GPT trained on the GPU follows the CPU's trajectory: the same weights and
// batches give the same losses and, after AdamW steps with gradient clipping,
// the same parameters (GPT-2 style and the llama-style variants: RMSNorm, RoPE,
// SwiGLU, grouped-query attention, untied head).
#include "cuda/cuda_test_util.h"

#include "ember/models/gpt.h"
#include "ember/optim/optim.h"

namespace ember {
namespace {

struct Trajectory {
  std::vector<double> losses;
  nn::NamedTensors params;
};

Trajectory train_steps(const models::GPTConfig& cfg, Device device, int steps) {
  Generator gen(42);
  models::GPT model(cfg, &gen);
  model.to(device);
  optim::AdamWOptions adam;
  adam.lr = 3e-3;
  adam.weight_decay = 0.1;
  optim::AdamW opt(optim::make_param_groups(model, adam.weight_decay), adam);
  Generator data(7);
  Trajectory t;
  for (int s = 0; s < steps; ++s) {
    Tensor x = to_device(randint(0, cfg.vocab_size, {3, cfg.block_size}, Device::cpu(), &data), device);
    Tensor y = to_device(randint(0, cfg.vocab_size, {3, cfg.block_size}, Device::cpu(), &data), device);
    opt.zero_grad();
    Tensor loss = model.loss(x, y);
    loss.backward();
    optim::clip_grad_norm_(model.parameters(), 0.5);
    opt.step();
    t.losses.push_back(loss.item<double>());
  }
  t.params = model.named_parameters();
  return t;
}

void expect_same_trajectory(const models::GPTConfig& cfg, const char* what) {
  const int steps = 4;
  Trajectory cpu = train_steps(cfg, Device::cpu(), steps);
  Trajectory gpu = train_steps(cfg, Device::cuda(0), steps);
  for (int s = 0; s < steps; ++s) EXPECT_NEAR(gpu.losses[s], cpu.losses[s], 2e-4) << what << " step " << s;
  ASSERT_EQ(cpu.params.size(), gpu.params.size());
  for (size_t i = 0; i < cpu.params.size(); ++i) {
    EXPECT_EQ(gpu.params[i].second.device(), Device::cuda(0));
    testing::expect_close(gpu.params[i].second, cpu.params[i].second, {2e-3, 2e-4},
                          std::string(what) + " " + cpu.params[i].first);
  }
}

TEST(CudaGpt, Gpt2StyleTrainingMatchesCpu) {
  EMBER_REQUIRE_GPU();
  models::GPTConfig cfg;
  cfg.n_layer = 2, cfg.n_head = 4, cfg.n_kv_head = 4, cfg.n_embd = 64, cfg.vocab_size = 97, cfg.block_size = 19;
  expect_same_trajectory(cfg, "gpt2-style");
}

TEST(CudaGpt, LlamaStyleTrainingMatchesCpu) {
  EMBER_REQUIRE_GPU();
  models::GPTConfig cfg;
  cfg.n_layer = 2, cfg.n_head = 4, cfg.n_kv_head = 2, cfg.n_embd = 64, cfg.vocab_size = 97, cfg.block_size = 19;
  cfg.norm = models::NormKind::rmsnorm;
  cfg.position = models::PositionKind::rope;
  cfg.mlp = models::MlpKind::swiglu;
  cfg.bias = false;
  cfg.tied_embeddings = false;
  expect_same_trajectory(cfg, "llama-style");
}

TEST(CudaGpt, LogitsOfA124MModelMatchCpu) {
  EMBER_REQUIRE_GPU();
  // The real GPT-2 layout (vocab 50257, 12 layers): forward only, 1 x 64 tokens.
  models::GPTConfig cfg = models::GPTConfig::preset("gpt2");
  Generator gen(3);
  models::GPT model(cfg, &gen);
  Generator data(5);
  Tensor x = randint(0, cfg.vocab_size, {1, 64}, Device::cpu(), &data);
  Tensor want;
  {
    NoGradGuard g;
    want = model.forward(x);
    model.to(Device::cuda(0));
    Tensor got = model.forward(to_device(x, Device::cuda(0)));
    testing::expect_close(got, want, {1e-3, 1e-3}, "gpt2 logits");
  }
}

}  // namespace
}  // namespace ember
