// ember::compile on the GPU: the planned executor, its arena on the device,
// runs every primitive's CUDA kernel (elementwise fusion is left out there:
// fused nodes have a CPU kernel only). A compiled forward, and a compiled loss
// with its backward followed by eager clipping and AdamW, agree with the same
// code run eagerly on the GPU; AdamW inside the graph is refused clearly (its
// step counters live on the host).
#include "cuda/cuda_test_util.h"

#include <memory>

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

// The test GPT with seeded weights, on the GPU.
std::unique_ptr<models::GPT> gpt_on_gpu(uint64_t seed) {
  Generator gen(seed);
  auto model = std::make_unique<models::GPT>(small_config(), &gen);
  model->to(Device::cuda(0));
  return model;
}

Tensor ids_on(Device device, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  return to_device(randint(0, vocab, {2, 16}, Device::cpu(), &g), device);
}

TEST(CudaCompile, ForwardMatchesEagerWithoutFusion) {
  EMBER_REQUIRE_GPU();
  const models::GPTConfig cfg = small_config();
  auto owned = gpt_on_gpu(3);
  models::GPT& model = *owned;
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

TEST(CudaCompile, ForwardAndBackwardMatchEagerWithTheOptimizerOutside) {
  EMBER_REQUIRE_GPU();
  // Loss and backward compiled (the gradients land in the parameters' .grad),
  // clipping and AdamW eager after it, as `ember pretrain --compile` would on
  // a GPU; four steps against the same code run eagerly.
  const models::GPTConfig cfg = small_config();
  struct Result {
    std::vector<double> losses;
    std::vector<Tensor> params;
  };
  auto train = [&](bool compiled) {
    auto owned = gpt_on_gpu(7);
    models::GPT& model = *owned;
    optim::AdamWOptions adam;
    adam.lr = 3e-3;
    adam.weight_decay = 0.1;
    optim::AdamW opt(optim::make_param_groups(model, adam.weight_decay), adam);
    CompiledFunction loss_and_grads = compile([&](const std::vector<Tensor>& in) {
      Tensor loss = model.loss(in[0], in[1]);
      loss.backward();
      return std::vector<Tensor>{loss};
    });
    Result r;
    for (uint64_t s = 0; s < 4; ++s) {
      Tensor x = ids_on(Device::cuda(0), cfg.vocab_size, 10 + s), y = ids_on(Device::cuda(0), cfg.vocab_size, 20 + s);
      opt.zero_grad();
      Tensor loss;
      if (compiled) {
        loss = loss_and_grads({x, y})[0];
      } else {
        loss = model.loss(x, y);
        loss.backward();
      }
      optim::clip_grad_norm_(model.parameters(), 0.5);
      opt.step();
      r.losses.push_back(loss.item<double>());
    }
    if (compiled) {
      EXPECT_EQ(loss_and_grads.stats().traces, 1);
      EXPECT_EQ(loss_and_grads.stats().planned_runs, 4);
      EXPECT_EQ(loss_and_grads.last_graph()->node_count("fused_elementwise"), 0);
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

TEST(CudaCompile, TheOptimizerInsideTheGraphIsAClearError) {
  EMBER_REQUIRE_GPU();
  // AdamW's graph form reads its step counters on the host: on a GPU the
  // whole-step compile is refused with a message that says what to do.
  const models::GPTConfig cfg = small_config();
  auto owned = gpt_on_gpu(7);
  models::GPT& model = *owned;
  optim::AdamW opt(optim::make_param_groups(model, 0.1), {});
  CompiledFunction step = compile([&](const std::vector<Tensor>& in) {
    Tensor loss = model.loss(in[0], in[1]);
    loss.backward();
    opt.step();
    opt.zero_grad();
    return std::vector<Tensor>{loss};
  });
  Tensor x = ids_on(Device::cuda(0), cfg.vocab_size, 1), y = ids_on(Device::cuda(0), cfg.vocab_size, 2);
  try {
    step({x, y});
    ADD_FAILURE() << "the compiled step with AdamW inside ran on the GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("call step() after the compiled function"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ember
