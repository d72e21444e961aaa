// ember::compile on the GPU: the planned executor, its arena on the device,
// runs every primitive's CUDA kernel (elementwise fusion is left out there:
// fused nodes have a CPU kernel only). A compiled forward and a whole compiled
// training step (forward, loss, backward, clipping, AdamW) agree with the same
// code run eagerly on the GPU.
#include "cuda/cuda_test_util.h"

#include "ember/graph/compile.h"
#include "ember/models/gpt.h"
#include "ember/optim/optim.h"

namespace ember {
namespace {

models::GPTConfig small_config() {
  models::GPTConfig cfg;
  cfg.n_layer = 2, cfg.n_head = 4, cfg.n_kv_head = 4, cfg.n_embd = 64, cfg.vocab_size = 97, cfg.block_size = 16;
  return cfg;
}

Tensor ids_on(Device device, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  return to_device(randint(0, vocab, {2, 16}, Device::cpu(), &g), device);
}

TEST(CudaCompile, ForwardMatchesEagerWithoutFusion) {
  EMBER_REQUIRE_GPU();
  const models::GPTConfig cfg = small_config();
  Generator gen(3);
  models::GPT model(cfg, &gen);
  model.to(Device::cuda(0));
  model.eval();
  NoGradGuard ng;
  CompiledFunction f = compile([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.forward(in[0])}; });
  Tensor x = ids_on(Device::cuda(0), cfg.vocab_size, 5);
  Tensor got = f({x})[0];
  EXPECT_EQ(got.device(), Device::cuda(0));
  testing::expect_close(got, to_device(model.forward(x), Device::cpu()), {1e-5, 1e-5}, "compiled forward");
  EXPECT_EQ(f.stats().planned_runs, 1);
  EXPECT_EQ(f.last_graph()->node_count("fused_elementwise"), 0);
}

TEST(CudaCompile, WholeTrainingStepMatchesEager) {
  EMBER_REQUIRE_GPU();
  const models::GPTConfig cfg = small_config();
  struct Result {
    std::vector<double> losses;
    std::vector<Tensor> params;
  };
  auto train = [&](bool compiled) {
    Generator gen(7);
    models::GPT model(cfg, &gen);
    model.to(Device::cuda(0));
    optim::AdamWOptions adam;
    adam.lr = 3e-3;
    adam.weight_decay = 0.1;
    optim::AdamW opt(optim::make_param_groups(model, adam.weight_decay), adam);
    CompiledFunction step = compile([&](const std::vector<Tensor>& in) {
      Tensor loss = model.loss(in[0], in[1]);
      loss.backward();
      optim::clip_grad_norm_traceable_(model.parameters(), 0.5);
      opt.step();
      opt.zero_grad();
      return std::vector<Tensor>{loss};
    });
    Result r;
    for (uint64_t s = 0; s < 4; ++s) {
      Tensor x = ids_on(Device::cuda(0), cfg.vocab_size, 10 + s), y = ids_on(Device::cuda(0), cfg.vocab_size, 20 + s);
      Tensor loss;
      if (compiled) {
        loss = step({x, y})[0];
      } else {
        loss = model.loss(x, y);
        loss.backward();
        optim::clip_grad_norm_traceable_(model.parameters(), 0.5);
        opt.step();
        opt.zero_grad();
      }
      r.losses.push_back(loss.item<double>());
    }
    if (compiled) {
      EXPECT_EQ(step.stats().traces, 1);
      EXPECT_EQ(step.stats().planned_runs, 4);
      EXPECT_EQ(step.last_graph()->node_count("fused_elementwise"), 0);
    }
    r.params = model.parameters();
    return r;
  };
  Result eager = train(false), compiled = train(true);
  for (size_t s = 0; s < eager.losses.size(); ++s)
    EXPECT_NEAR(compiled.losses[s], eager.losses[s], 1e-5) << "step " << s;
  ASSERT_EQ(compiled.params.size(), eager.params.size());
  for (size_t i = 0; i < eager.params.size(); ++i) {
    EXPECT_EQ(compiled.params[i].device(), Device::cuda(0));
    testing::expect_close(compiled.params[i], to_device(eager.params[i], Device::cpu()), {1e-4, 1e-5},
                          "parameter " + std::to_string(i));
  }
}

}  // namespace
}  // namespace ember
