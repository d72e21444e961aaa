// ember::compile on the GPT model: compiled forward, loss, gradients and
// training steps agree with eager execution; the signature cache; eval/train
// mode; a compiled forward inside an eager training loop (replay).
#include <gtest/gtest.h>

#include "ember/graph/compile.h"
#include "ember/models/gpt.h"
#include "ember/nn/parameter_namer.h"
#include "ember/optim/optim.h"
#include "graph/graph_test_util.h"
#include "models/gpt_test_configs.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;
using models::GPT;
using models::GPTConfig;

namespace {

using models::test_configs::gpt2_style;
using models::test_configs::modern;

Tensor ids(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  return randint(0, vocab, {B, T}, Device::cpu(), &gen);
}

CompileOptions named(const GPT& model) {
  CompileOptions o;
  o.names = nn::parameter_namer(model);
  o.mode = [&model] { return int64_t(model.is_training()); };
  return o;
}

// Forward, loss and backward as one compiled graph; returns the loss.
CompiledFunction compiled_train_step(GPT& model) {
  return compile(
      [&model](const std::vector<Tensor>& in) {
        Tensor loss = model.loss(in[0], in[1]);
        loss.backward();
        return std::vector<Tensor>{loss};
      },
      named(model));
}

class CompileGPT : public ::testing::TestWithParam<bool> {
 protected:
  GPTConfig config() const { return GetParam() ? modern() : gpt2_style(); }
};

}  // namespace

TEST_P(CompileGPT, ForwardMatchesEager) {
  Generator gen(1);
  GPT model(config(), &gen);
  model.eval();
  NoGradGuard ng;
  CompiledFunction f = compile([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.forward(in[0])}; },
                               named(model));
  Tensor x = ids(2, 16, 50, 2);
  Tensor want = model.forward(x);
  EXPECT_LE(max_abs_diff(f({x})[0], want), 1e-5);
  EXPECT_LE(max_abs_diff(f({x})[0], want), 1e-5);
  EXPECT_EQ(f.stats().traces, 1);
  EXPECT_EQ(f.stats().planned_runs, 2);
  // A new sequence length is a new signature.
  Tensor y = ids(2, 9, 50, 3);
  EXPECT_LE(max_abs_diff(f({y})[0], model.forward(y)), 1e-5);
  EXPECT_EQ(f.stats().traces, 2);
  ASSERT_NE(f.last_graph(), nullptr);
  EXPECT_GT(f.last_plan()->arena_bytes, 0);
}

TEST_P(CompileGPT, LossAndGradientsMatchEager) {
  Generator gen(4);
  GPT model(config(), &gen);
  Tensor x = ids(2, 16, 50, 5), t = ids(2, 16, 50, 6);
  auto params = model.parameters();
  Tensor want_loss = model.loss(x, t);
  want_loss.backward();
  std::vector<Tensor> want;
  for (Tensor& p : params) want.push_back(p.grad()), p.set_grad(Tensor());

  CompiledFunction step = compiled_train_step(model);
  Tensor got_loss = step({x, t})[0];
  EXPECT_LE(std::fabs(got_loss.item<double>() - want_loss.item<double>()), 1e-6);
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined()) << i;
    EXPECT_LE(max_abs_diff(params[i].grad(), want[i]), 1e-5) << "parameter " << i;
  }
  // A second call adds to .grad, as eager backward does.
  step({x, t});
  for (size_t i = 0; i < params.size(); ++i) EXPECT_LE(max_abs_diff(params[i].grad(), want[i] * 2.0), 2e-5);
  EXPECT_EQ(step.stats().planned_runs, 2);
  EXPECT_FALSE(step.last_graph()->grads.empty());
}

TEST_P(CompileGPT, TrainingStepsMatchEager) {
  auto train = [&](bool compiled) {
    Generator gen(7);
    GPT model(config(), &gen);
    optim::AdamW opt(model.parameters(), {});
    CompiledFunction step = compiled_train_step(model);
    std::vector<double> losses;
    for (int s = 0; s < 3; ++s) {
      Tensor x = ids(2, 16, 50, 10 + s), t = ids(2, 16, 50, 20 + s);
      opt.zero_grad();
      Tensor loss;
      if (compiled) {
        loss = step({x, t})[0];
      } else {
        loss = model.loss(x, t);
        loss.backward();
      }
      opt.step();
      losses.push_back(loss.item<double>());
    }
    return std::make_pair(losses, model.parameters());
  };
  auto [eager_losses, eager_params] = train(false);
  auto [compiled_losses, compiled_params] = train(true);
  for (size_t s = 0; s < eager_losses.size(); ++s) EXPECT_NEAR(compiled_losses[s], eager_losses[s], 1e-5);
  for (size_t i = 0; i < eager_params.size(); ++i) EXPECT_LE(max_abs_diff(compiled_params[i], eager_params[i]), 1e-5);
}

// The whole step in one graph: forward, loss, backward and the AdamW update
// (two parameter groups, a learning rate that changes every step), against
// the same steps run eagerly. Step 3 runs eagerly on the compiled model's
// optimizer in both runs, so the graph's step counters must carry over.
TEST_P(CompileGPT, WholeStepWithAdamWIsOneGraph) {
  const std::vector<double> lrs = {1e-2, 8e-3, 6e-3, 4e-3, 2e-3};
  struct Result {
    std::vector<double> losses;
    std::vector<Tensor> params;
    TensorMap state;
    int64_t traces = 0, planned = 0, adamw_nodes = 0, mutations = 0, in_place = 0;
  };
  auto train = [&](bool compiled) {
    Generator gen(7);
    GPT model(config(), &gen);
    optim::AdamW opt(optim::make_param_groups(model, 0.1), {});
    CompiledFunction step = compile(
        [&](const std::vector<Tensor>& in) {
          Tensor loss = model.loss(in[0], in[1]);
          loss.backward();
          opt.step();
          opt.zero_grad();
          return std::vector<Tensor>{loss};
        },
        named(model));
    Result r;
    for (size_t s = 0; s < lrs.size(); ++s) {
      Tensor x = ids(2, 16, 50, 10 + s), t = ids(2, 16, 50, 20 + s);
      opt.set_lr(lrs[s]);
      Tensor loss;
      if (compiled && s != 3) {
        loss = step({x, t})[0];
      } else {
        loss = model.loss(x, t);
        loss.backward();
        opt.step();
        opt.zero_grad();
      }
      r.losses.push_back(loss.item<double>());
    }
    r.params = model.parameters();
    r.state = opt.state_dict();
    if (compiled) {
      r.traces = step.stats().traces;
      r.planned = step.stats().planned_runs;
      r.adamw_nodes = step.last_graph()->node_count("adamw_update");
      r.mutations = int64_t(step.last_graph()->mutations.size());
      r.in_place = step.last_plan()->mutations_in_place;
      EXPECT_TRUE(step.last_graph()->grads.empty());  // zero_grad inside: gradients stay in the graph
      for (const Tensor& p : r.params) EXPECT_FALSE(p.grad().defined());
    }
    return r;
  };
  Result eager = train(false), compiled = train(true);
  for (size_t s = 0; s < lrs.size(); ++s) EXPECT_NEAR(compiled.losses[s], eager.losses[s], 1e-5) << "step " << s;
  for (size_t i = 0; i < eager.params.size(); ++i)
    EXPECT_LE(max_abs_diff(compiled.params[i], eager.params[i]), 1e-5) << "parameter " << i;
  ASSERT_EQ(compiled.state.size(), eager.state.size());
  for (const auto& [name, t] : eager.state) {
    ASSERT_TRUE(compiled.state.count(name)) << name;
    EXPECT_LE(max_abs_diff(compiled.state.at(name), t), 1e-5) << name;
  }
  EXPECT_EQ(compiled.state.at("state.0.step").item<int64_t>(), int64_t(lrs.size()));
  EXPECT_EQ(compiled.traces, 1);
  EXPECT_EQ(compiled.planned, int64_t(lrs.size()) - 1);
  const int64_t n_params = int64_t(eager.params.size());
  EXPECT_EQ(compiled.adamw_nodes, n_params);
  EXPECT_EQ(compiled.mutations, 3 * n_params + 2);  // parameter, exp_avg, exp_avg_sq; a counter per group
  EXPECT_EQ(compiled.in_place, compiled.mutations);  // every update in the tensors' own bytes
}

TEST(CompileGPT, OptimizersWithoutATracedStepAreRefused) {
  Generator gen(3);
  GPT model(gpt2_style(), &gen);
  optim::SGD opt(model.parameters(), {0.1});
  CompiledFunction step = compile(
      [&](const std::vector<Tensor>& in) {
        Tensor loss = model.loss(in[0], in[1]);
        loss.backward();
        opt.step();
        return std::vector<Tensor>{loss};
      },
      named(model));
  EXPECT_ERROR(step({ids(1, 8, 50, 1), ids(1, 8, 50, 2)}), "[SGD]");
  for (const Tensor& p : model.parameters()) EXPECT_FALSE(p.grad().defined());  // the failed trace left no gradient
}

TEST_P(CompileGPT, CompiledForwardInsideEagerTrainingReplays) {
  Generator gen(8);
  GPT model(config(), &gen);
  Tensor x = ids(2, 16, 50, 9), t = ids(2, 16, 50, 10);
  CompiledFunction loss_fn = compile(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.loss(in[0], in[1])}; }, named(model));
  loss_fn({x, t})[0].backward();
  EXPECT_EQ(loss_fn.stats().replayed_runs, 1);
  auto params = model.parameters();
  std::vector<Tensor> got;
  for (Tensor& p : params) got.push_back(p.grad()), p.set_grad(Tensor());
  model.loss(x, t).backward();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_LE(max_abs_diff(got[i], params[i].grad()), 1e-6);
}

TEST(CompileGPT, TrainModeWithDropoutIsRefusedButEvalModeCompiles) {
  GPTConfig c = gpt2_style();
  c.dropout = 0.1;
  Generator gen(11);
  GPT model(c, &gen);
  CompiledFunction f = compile([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.forward(in[0])}; },
                               named(model));
  Tensor x = ids(1, 8, 50, 12);
  NoGradGuard ng;
  EXPECT_ERROR(f({x}), "[bernoulli]");
  model.eval();  // the mode is part of the signature: this traces again
  EXPECT_LE(max_abs_diff(f({x})[0], model.forward(x)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Variants, CompileGPT, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "modern" : "gpt2_style"; });
