// ember::compile on the GPU: the planned executor, its arena on the device,
// runs every primitive's CUDA kernel, fused elementwise programs included. A
// fused program (a one-element and a strided input, two outputs) agrees
// with the CPU's; a compiled forward, and a compiled loss with its backward
// followed by eager clipping and AdamW, agree with the same code run eagerly
// on the GPU, and so does the whole step with clipping and AdamW inside the
// graph (its step counters on the device).
#include "cuda/cuda_test_util.h"

#include <functional>
#include <memory>
#include <optional>

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

TEST(CudaCompile, FusedElementwiseMatchesTheCpu) {
  EMBER_REQUIRE_GPU();
  // Two programs: tanh of a transposed input times a one-element input (the
  // transposed input copied to a contiguous temporary), then, after the row
  // broadcast is subtracted outside any program, a chain whose intermediate
  // leaves beside its result.
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor xt = permute(in[0], {1, 0});
    Tensor t = gelu(tanh(xt) * in[1] - in[2], true);
    return std::vector<Tensor>{t, sigmoid(exp(-abs(t)) + sqrt(square(t) + 1.0)) / (t * t + 2.0)};
  };
  Generator g(9);
  const std::vector<Tensor> cpu_in{randn({70, 33}, DType::f32, Device::cpu(), &g), full({1}, 0.75),
                                   randn({70}, DType::f32, Device::cpu(), &g)};
  std::vector<Tensor> gpu_in;
  for (const Tensor& t : cpu_in) gpu_in.push_back(to_device(t, Device::cuda(0)));
  NoGradGuard ng;
  CompiledFunction on_gpu = compile(fn), on_cpu = compile(fn);
  const std::vector<Tensor> got = on_gpu(gpu_in), want = on_cpu(cpu_in);
  EXPECT_EQ(on_gpu.last_graph()->node_count("fused_elementwise"), 2);
  EXPECT_EQ(on_gpu.stats().planned_runs, 1);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    testing::expect_close(got[i], want[i], {1e-5, 1e-5}, "fused output " + std::to_string(i));
}

TEST(CudaCompile, ForwardMatchesEager) {
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
}

// Four training steps of the test GPT on the GPU: the losses, the final
// parameters and the optimizer's step count.
struct TrainRun {
  std::vector<double> losses;
  std::vector<Tensor> params;
  int64_t steps = 0;
};

// A training step of `model` with `opt` on batch s (its ids seeded by s).
using StepFn = std::function<Tensor(models::GPT& model, optim::AdamW& opt, uint64_t s)>;

TrainRun train_four_steps(const StepFn& step) {
  auto owned = gpt_on_gpu(7);
  models::GPT& model = *owned;
  optim::AdamWOptions adam;
  adam.lr = 3e-3;
  adam.weight_decay = 0.1;
  optim::AdamW opt(optim::make_param_groups(model, adam.weight_decay), adam);
  TrainRun r;
  for (uint64_t s = 0; s < 4; ++s) r.losses.push_back(step(model, opt, s).item<double>());
  r.params = model.parameters();
  r.steps = opt.state(0).step;
  return r;
}

std::vector<Tensor> batch(uint64_t s) {
  const int64_t vocab = small_config().vocab_size;
  return {ids_on(Device::cuda(0), vocab, 10 + s), ids_on(Device::cuda(0), vocab, 20 + s)};
}

void expect_same_training(const TrainRun& compiled, const TrainRun& eager) {
  EXPECT_EQ(compiled.steps, 4);
  EXPECT_EQ(eager.steps, 4);
  ASSERT_EQ(compiled.losses.size(), eager.losses.size());
  for (size_t s = 0; s < eager.losses.size(); ++s)
    EXPECT_NEAR(compiled.losses[s], eager.losses[s], 1e-5) << "step " << s;
  ASSERT_EQ(compiled.params.size(), eager.params.size());
  for (size_t i = 0; i < eager.params.size(); ++i) {
    EXPECT_EQ(compiled.params[i].device(), Device::cuda(0));
    testing::expect_close(compiled.params[i], to_device(eager.params[i], Device::cpu()), {1e-4, 1e-5},
                          "parameter " + std::to_string(i));
  }
}

TEST(CudaCompile, ForwardAndBackwardMatchEagerWithTheOptimizerOutside) {
  EMBER_REQUIRE_GPU();
  // Loss and backward compiled (the gradients land in the parameters' .grad),
  // clipping and AdamW eager after it, as `ember pretrain --compile` would on
  // a GPU; four steps against the same code run eagerly.
  auto step_with = [](bool compiled) {
    auto loss_and_grads = std::make_shared<std::optional<CompiledFunction>>();  // made at step 0
    return [compiled, loss_and_grads](models::GPT& model, optim::AdamW& opt, uint64_t s) {
      const std::vector<Tensor> xy = batch(s);
      opt.zero_grad();
      Tensor loss;
      if (compiled) {
        if (s == 0)
          loss_and_grads->emplace(compile([&model](const std::vector<Tensor>& in) {
            Tensor l = model.loss(in[0], in[1]);
            l.backward();
            return std::vector<Tensor>{l};
          }));
        loss = (**loss_and_grads)(xy)[0];
      } else {
        loss = model.loss(xy[0], xy[1]);
        loss.backward();
      }
      optim::clip_grad_norm_(model.parameters(), 0.5);
      opt.step();
      if (compiled && s == 3) {
        EXPECT_EQ((*loss_and_grads)->stats().traces, 1);
        EXPECT_EQ((*loss_and_grads)->stats().planned_runs, 4);
      }
      return loss;
    };
  };
  expect_same_training(train_four_steps(step_with(true)), train_four_steps(step_with(false)));
}

TEST(CudaCompile, TheWholeStepWithAdamWMatchesEager) {
  EMBER_REQUIRE_GPU();
  // Loss, backward, clipping and AdamW in one graph on the GPU: the step
  // counters (lr, step) live on the device, the update kernel reads them
  // there, and a learning rate set between runs is seen. Four steps of a
  // decaying schedule against the same code run eagerly.
  auto step_with = [](bool compiled) {
    auto whole_step = std::make_shared<std::optional<CompiledFunction>>();  // made at step 0
    return [compiled, whole_step](models::GPT& model, optim::AdamW& opt, uint64_t s) {
      auto step_fn = [&model, &opt](const std::vector<Tensor>& in) {
        Tensor loss = model.loss(in[0], in[1]);
        loss.backward();
        optim::clip_grad_norm_traceable_(model.parameters(), 0.5);  // the norm stays a tensor
        opt.step();
        opt.zero_grad();
        return std::vector<Tensor>{loss};
      };
      opt.set_lr(3e-3 / double(s + 1));
      if (!compiled) return step_fn(batch(s))[0];
      if (s == 0) whole_step->emplace(compile(step_fn));
      Tensor loss = (**whole_step)(batch(s))[0];
      if (s == 3) {
        EXPECT_EQ((*whole_step)->stats().traces, 1);
        EXPECT_EQ((*whole_step)->stats().planned_runs, 4);  // every step ran the graph
        EXPECT_EQ((*whole_step)->last_graph()->node_count("adamw_update"), int64_t(model.parameters().size()));
        EXPECT_EQ(opt.param_groups()[0].counters.device(), Device::cuda(0));
      }
      return loss;
    };
  };
  expect_same_training(train_four_steps(step_with(true)), train_four_steps(step_with(false)));
}

}  // namespace
}  // namespace ember
