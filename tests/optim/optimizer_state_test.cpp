// Optimizer base: parameter groups, zero_grad, make_param_groups, and the
// state_dict round trip (through a safetensors file) that must continue a run
// exactly, plus every load_state_dict error.
#include <gtest/gtest.h>

#include <filesystem>

#include "ember/nn/nn.h"
#include "ember/optim/optim.h"
#include "optim/optim_test_util.h"

using namespace ember;
using namespace ember::optim;
using namespace ember::optim_test;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ember_optim_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error, expected one mentioning: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(OptimState, ParamGroupsHaveTheirOwnOptions) {
  Tensor a = make_param(DType::f64), b = make_param(DType::f64);
  SGD opt(std::vector<ParamGroup>{{{a}, {}}, {{b}, {{"lr", 0.5}}}}, {0.1});
  EXPECT_EQ(opt.param_groups()[0].lr(), 0.1);
  EXPECT_EQ(opt.param_groups()[1].lr(), 0.5);
  EXPECT_EQ(opt.param_groups()[1].get("momentum"), 0.0);  // filled from the defaults
  a.set_grad(ones({2, 3}, DType::f64));
  b.set_grad(ones({2, 3}, DType::f64));
  opt.step();
  EXPECT_NEAR(a.to_vector<double>()[0], 0.5 - 0.1, 1e-15);
  EXPECT_NEAR(b.to_vector<double>()[0], 0.5 - 0.5, 1e-15);
  opt.set_lr(0.25);
  EXPECT_EQ(opt.param_groups()[1].lr(), 0.25);
  expect_error([&] { opt.param_groups()[0].get("nope"); }, "[optimizer] parameter group has no option 'nope'");
  expect_error([&] { opt.add_param_group({{a}, {}}); }, "appears more than once");
}

TEST(OptimState, ZeroGrad) {
  Tensor p = make_param();
  AdamW opt({p});
  set_test_grad(p, 0);
  opt.zero_grad(false);
  ASSERT_TRUE(p.grad().defined());
  EXPECT_EQ(p.grad().to_vector<float>(), std::vector<float>(6, 0.0f));
  opt.zero_grad();
  EXPECT_FALSE(p.grad().defined());
}

TEST(OptimState, MakeParamGroupsDecaysOnlyMatrices) {
  nn::Sequential model{std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::LayerNorm>(8),
                       std::make_shared<nn::Linear>(8, 2, false)};
  auto groups = make_param_groups(model, 0.1);
  ASSERT_EQ(groups.size(), 2u);
  ASSERT_EQ(groups[0].params.size(), 2u);  // 0.weight, 2.weight
  ASSERT_EQ(groups[1].params.size(), 3u);  // 0.bias, 1.weight, 1.bias
  EXPECT_TRUE(groups[0].params[0].same(model.get_tensor("0.weight")));
  EXPECT_TRUE(groups[0].params[1].same(model.get_tensor("2.weight")));
  EXPECT_TRUE(groups[1].params[1].same(model.get_tensor("1.weight")));
  AdamW opt(groups, {1e-3});
  EXPECT_EQ(opt.param_groups()[0].get("weight_decay"), 0.1);
  EXPECT_EQ(opt.param_groups()[1].get("weight_decay"), 0.0);
  EXPECT_EQ(opt.num_params(), 5u);
}

TEST(OptimState, StateDictRoundTripContinuesExactly) {
  const std::string path = temp_path("adamw.safetensors");
  for (DType dt : {DType::f32, DType::bf16}) {
    // Uninterrupted: 6 steps.
    Tensor ref = make_param(dt);
    Tensor ref_b = make_param(dt, {1, 2, 3, 4, 5, 6});
    AdamW ref_opt(std::vector<ParamGroup>{{{ref}, {}}, {{ref_b}, {{"weight_decay", 0.0}}}},
                  {0.01, 0.9, 0.95, 1e-8, 0.1});
    for (int t = 0; t < 6; ++t) {
      set_test_grad(ref, t);
      set_test_grad(ref_b, t);
      ref_opt.step();
    }
    // Interrupted after 3 steps: save parameters and optimizer, rebuild, load, continue.
    Tensor p = make_param(dt);
    Tensor p_b = make_param(dt, {1, 2, 3, 4, 5, 6});
    {
      AdamW opt(std::vector<ParamGroup>{{{p}, {}}, {{p_b}, {{"weight_decay", 0.0}}}}, {0.01, 0.9, 0.95, 1e-8, 0.1});
      for (int t = 0; t < 3; ++t) {
        set_test_grad(p, t);
        set_test_grad(p_b, t);
        opt.step();
      }
      save_safetensors(path, opt.state_dict());
    }
    // A fresh optimizer with different hyper-parameters: loading restores them.
    AdamW resumed(std::vector<ParamGroup>{{{p}, {}}, {{p_b}, {}}}, {0.5});
    resumed.load_state_dict(load_safetensors(path, LoadMode::mmap).tensors);
    EXPECT_EQ(resumed.param_groups()[0].lr(), 0.01);
    EXPECT_EQ(resumed.param_groups()[1].get("weight_decay"), 0.0);
    EXPECT_EQ(resumed.state(0).step, 3);
    for (int t = 3; t < 6; ++t) {
      set_test_grad(p, t);
      set_test_grad(p_b, t);
      resumed.step();
    }
    EXPECT_EQ(p.to_vector<double>(), ref.to_vector<double>()) << dtype_name(dt);
    EXPECT_EQ(p_b.to_vector<double>(), ref_b.to_vector<double>()) << dtype_name(dt);
  }
  std::filesystem::remove(path);
}

TEST(OptimState, SgdMomentumStateRoundTrip) {
  Tensor ref = make_param(DType::f64), p = make_param(DType::f64);
  SGD ref_opt({ref}, {0.1, 0.9, 0.1, false, 0.01});
  SGD opt({p}, {0.1, 0.9, 0.1, false, 0.01});
  for (int t = 0; t < 2; ++t) {
    set_test_grad(ref, t);
    ref_opt.step();
    set_test_grad(p, t);
    opt.step();
  }
  TensorMap sd = opt.state_dict();
  EXPECT_TRUE(sd.count("state.0.momentum_buffer"));
  EXPECT_TRUE(sd.count("param_groups.0.nesterov"));
  SGD resumed({p}, {0.1, 0.9, 0.1, false, 0.01});
  resumed.load_state_dict(sd);
  for (int t = 2; t < 5; ++t) {
    set_test_grad(ref, t);
    ref_opt.step();
    set_test_grad(p, t);
    resumed.step();
  }
  EXPECT_EQ(p.to_vector<double>(), ref.to_vector<double>());
}

TEST(OptimState, StateDictNamesAreStable) {
  Tensor a = make_param(), b = make_param();
  AdamW opt(std::vector<ParamGroup>{{{a}, {}}, {{b}, {}}});
  set_test_grad(b, 0);
  opt.step();
  TensorMap sd = opt.state_dict();
  std::vector<std::string> keys;
  for (auto& [k, v] : sd) keys.push_back(k);
  std::vector<std::string> want = {"param_groups.0.beta1", "param_groups.0.beta2", "param_groups.0.eps",
                                   "param_groups.0.lr", "param_groups.0.params", "param_groups.0.weight_decay",
                                   "param_groups.1.beta1", "param_groups.1.beta2", "param_groups.1.eps",
                                   "param_groups.1.lr", "param_groups.1.params", "param_groups.1.weight_decay",
                                   "state.1.exp_avg", "state.1.exp_avg_sq", "state.1.step"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(sd.at("param_groups.1.params").to_vector<int64_t>(), std::vector<int64_t>{1});
  EXPECT_EQ(sd.at("state.1.step").item<int64_t>(), 1);
}

TEST(OptimState, LoadStateDictReportsEveryProblem) {
  Tensor p = make_param();
  AdamW opt({p});
  set_test_grad(p, 0);
  opt.step();
  TensorMap good = opt.state_dict();

  TensorMap bad = good;
  bad["state.0.exp_avg"] = zeros({3, 2});
  bad.erase("state.0.exp_avg_sq");
  bad["foo"] = zeros({1});
  AdamW other({make_param()});
  expect_error([&] { other.load_state_dict(bad); },
               "[AdamW.load_state_dict] shape mismatch for state.0.exp_avg: checkpoint [3, 2] vs parameter [2, 3]; "
               "missing state: state.0.exp_avg_sq; unexpected keys: foo");
  // Nothing was loaded.
  EXPECT_EQ(other.state(0).step, 0);

  AdamW two_groups(std::vector<ParamGroup>{{{make_param()}, {}}, {{make_param()}, {}}});
  expect_error([&] { two_groups.load_state_dict(good); }, "parameter group 1 is missing from the checkpoint");
  AdamW two_params({make_param(), make_param()});
  expect_error([&] { two_params.load_state_dict(good); },
               "parameter group 0 holds 1 parameters in the checkpoint but 2 in the optimizer");
  TensorMap bad_lr = good;
  bad_lr["param_groups.0.lr"] = scalar(-1.0, DType::f64);
  expect_error([&] { AdamW({make_param()}).load_state_dict(bad_lr); }, "invalid learning rate -1");
  TensorMap sgd_state = SGD({make_param()}, {0.1, 0.9}).state_dict();
  expect_error([&] { AdamW({make_param()}).load_state_dict(sgd_state); }, "unknown option 'momentum'");
}

TEST(OptimState, SchedulerStoresInitialLrWithTheOptimizer) {
  Tensor p = make_param();
  AdamW opt({p}, {0.1});
  LRScheduler sched(opt, warmup_cosine_schedule(2, 10, 0.1));
  EXPECT_DOUBLE_EQ(opt.param_groups()[0].lr(), 0.05);  // step 0 of a 2-step warm-up
  sched.step();
  EXPECT_DOUBLE_EQ(opt.param_groups()[0].lr(), 0.1);
  for (int i = 0; i < 4; ++i) sched.step();
  TensorMap sd = opt.state_dict();
  EXPECT_EQ(sd.at("param_groups.0.initial_lr").item<double>(), 0.1);

  AdamW resumed({make_param()}, {0.1});
  resumed.load_state_dict(sd);
  LRScheduler sched2(resumed, warmup_cosine_schedule(2, 10, 0.1), sched.current_step());
  EXPECT_DOUBLE_EQ(resumed.param_groups()[0].lr(), opt.param_groups()[0].lr());
  sched.step();
  sched2.step();
  EXPECT_DOUBLE_EQ(resumed.param_groups()[0].lr(), opt.param_groups()[0].lr());
}
