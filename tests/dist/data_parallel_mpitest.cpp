// Data parallel and ZeRO-1 under mpirun: N ranks with per-rank batch B take the
// same AdamW steps as one process with batch N x B; ZeRO-1 follows the same
// trajectory with 1/N of the optimizer state; mismatched models are caught at
// construction.
//
// Tolerance: after K = 6 AdamW steps (lr 1e-2) of a float32 MLP, parameters
// agree to 2e-5 absolute. The only differences are float32 summation order
// (a mean over N x B rows versus the average of N means of B rows, MPI's sum
// order), about 1e-7 relative per gradient, which Adam's normalisation can
// amplify to a few ulps of lr per step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "ember/dist/data_parallel.h"
#include "ember/dist/zero.h"
#include "ember/ember.h"
#include "ember/nn/nn.h"
#include "ember/optim/optim.h"

using namespace ember;
using namespace ember::dist;

namespace {

constexpr int64_t kIn = 8, kHidden = 32, kOut = 4, kBatch = 5, kSteps = 6;
constexpr double kTol = 2e-5;

std::shared_ptr<nn::Sequential> make_mlp(uint64_t seed, int64_t hidden = kHidden) {
  Generator gen(seed);
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Linear>(kIn, hidden, true, &gen));
  m->push_back(std::make_shared<nn::ActivationLayer>(nn::Activation::tanh));
  m->push_back(std::make_shared<nn::Linear>(hidden, hidden, true, &gen));
  m->push_back(std::make_shared<nn::ActivationLayer>(nn::Activation::tanh));
  m->push_back(std::make_shared<nn::Linear>(hidden, kOut, true, &gen));
  return m;
}

// The global batch of a step (the same on every rank), rows [first, first + count).
std::pair<Tensor, Tensor> batch(int step, int64_t global, int64_t first, int64_t count) {
  Generator gen(1000 + uint64_t(step));
  Tensor x = randn({global, kIn}, DType::f32, Device::cpu(), &gen);
  Tensor y = randn({global, kOut}, DType::f32, Device::cpu(), &gen);
  return {narrow(x, 0, first, count), narrow(y, 0, first, count)};
}

Tensor mse(nn::Sequential& m, const std::pair<Tensor, Tensor>& xy) {
  Tensor d = sub(m.forward(xy.first), xy.second);
  return mean(mul(d, d));
}

double max_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = a[i].to_vector<double>(), y = b[i].to_vector<double>();
    for (size_t k = 0; k < x.size(); ++k) d = std::max(d, std::abs(x[k] - y[k]));
  }
  return d;
}

optim::AdamWOptions adamw_options() {
  optim::AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.1;
  return o;
}

// One process, batch N x B: the reference every rank computes for itself.
std::vector<Tensor> single_process_reference(int n) {
  auto model = make_mlp(1234);
  optim::AdamW opt(model->parameters(), adamw_options());
  for (int s = 0; s < kSteps; ++s) {
    opt.zero_grad();
    mse(*model, batch(s, n * kBatch, 0, n * kBatch)).backward();
    opt.step();
  }
  return model->parameters();
}

TEST(DataParallel, MatchesOneProcessWithTheWholeBatch) {
  auto comm = world();
  int n = comm->size(), r = comm->rank();
  // Each rank starts from a different init: the broadcast makes rank 0's win.
  auto model = make_mlp(1234 + uint64_t(r));
  DataParallelOptions o;
  o.bucket_bytes = 2048;  // several buckets for this small model
  DataParallel dp(model, comm, o);
  ASSERT_GE(dp.bucket_params().size(), 3u);
  // Reverse parameter order: the first bucket holds the last layer's parameters.
  EXPECT_EQ(dp.bucket_params().front().front(), model->parameters().size() - 1);
  optim::AdamW opt(model->parameters(), adamw_options());
  for (int s = 0; s < kSteps; ++s) {
    opt.zero_grad();
    mse(*model, batch(s, n * kBatch, r * kBatch, kBatch)).backward();
    // Every bucket was started inside backward (overlapped) and the sync is done.
    EXPECT_EQ(dp.last_buckets_overlapped(), int(dp.bucket_params().size()));
    dp.finish_gradient_sync();  // a no-op here
    // The averaging ran from the first bucket's launch (inside backward) to
    // the last gradient, then waited for the rest.
    EXPECT_GE(dp.last_sync_timing().overlap_ms, 0.0);
    EXPECT_GE(dp.last_sync_timing().exposed_ms, 0.0);
    opt.step();
  }
  EXPECT_EQ(dp.gradient_bytes(), model->num_parameters() * int64_t(sizeof(float)));
  double d = max_diff(model->parameters(), single_process_reference(n));
  EXPECT_LT(d, kTol);
  if (r == 0) std::printf("data parallel vs one process: max |diff| = %.3g after %ld steps\n", d, long(kSteps));
}

TEST(DataParallel, UnusedParameterGetsAZeroGradientAndRanksStayInStep) {
  auto comm = world();
  int r = comm->rank();
  auto model = make_mlp(7);
  DataParallel dp(model, comm);
  // Only rank 0 uses the model; the others contribute zero gradients.
  model->zero_grad();
  if (r == 0) mse(*model, batch(0, kBatch, 0, kBatch)).backward();
  dp.finish_gradient_sync();
  for (const Tensor& p : model->parameters()) ASSERT_TRUE(p.grad().defined());
  // The average over ranks is rank 0's gradient / N, identical everywhere.
  Tensor g = clone(model->parameters().back().grad());
  Tensor all = zeros({comm->size() * g.numel()});
  comm->all_gather(g, all);
  auto v = all.to_vector<float>();
  for (int q = 1; q < comm->size(); ++q)
    for (int64_t k = 0; k < g.numel(); ++k) EXPECT_EQ(v[size_t(q * g.numel() + k)], v[size_t(k)]);
}

TEST(DataParallel, MismatchedModelsFailAtConstructionOnEveryRank) {
  auto comm = world();
  int r = comm->rank();
  auto model = make_mlp(1, r == 0 ? kHidden : kHidden + 1);
  try {
    DataParallel dp(model, comm);
    ADD_FAILURE() << "no error for different models";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind("[DataParallel] ranks disagree on parameter 0: rank 0 has float32 with 256 elements, rank 1 has "
                      "float32 with 264 elements",
                      0),
              0u)
        << m;
  }
}

void copy_parameters(nn::Module& from, nn::Module& to) {
  NoGradGuard g;
  auto a = from.parameters(), b = to.parameters();
  for (size_t i = 0; i < a.size(); ++i) nn::copy_(b[i], a[i]);
}

// Step s on both: plain data parallel with AdamW, and ZeRO-1.
void step_both(int s, Communicator& comm, nn::Sequential& dp_model, DataParallel& dp, optim::AdamW& opt,
               nn::Sequential& z_model, ZeroAdamW& zero) {
  auto xy = batch(s, comm.size() * kBatch, comm.rank() * kBatch, kBatch);
  opt.zero_grad();
  mse(dp_model, xy).backward();
  dp.finish_gradient_sync();
  opt.step();
  zero.zero_grad();
  mse(z_model, xy).backward();
  zero.step();
}

TEST(Zero1, SameTrajectoryAsDataParallelWithShardedState) {
  auto comm = world();
  int n = comm->size(), r = comm->rank();
  // Plain data parallel.
  auto dp_model = make_mlp(1234 + uint64_t(r));
  DataParallel dp(dp_model, comm);
  optim::AdamW opt(dp_model->parameters(), adamw_options());
  // ZeRO-1 (no DataParallel: its reduce-scatter replaces the all-reduce).
  auto z_model = make_mlp(4321 + uint64_t(r));  // a different init, replaced by rank 0's
  ZeroAdamW zero(z_model->parameters(), comm, adamw_options());
  // Rank 0's inits differ; start both from the same values.
  copy_parameters(*dp_model, *z_model);
  for (int s = 0; s < kSteps; ++s) step_both(s, *comm, *dp_model, dp, opt, *z_model, zero);
  double d = max_diff(dp_model->parameters(), z_model->parameters());
  EXPECT_LT(d, kTol);
  EXPECT_LT(max_diff(z_model->parameters(), single_process_reference(n)), kTol);
  // Every rank ends with the same parameters.
  Tensor w = clone(z_model->parameters()[0]);
  Tensor w0 = clone(w);
  comm->broadcast(w0, 0);
  EXPECT_EQ(w.to_vector<float>(), w0.to_vector<float>());
  // Optimizer memory: 1/N of unsharded AdamW (plus padding to a multiple of N).
  int64_t total = dp_model->num_parameters();
  EXPECT_EQ(zero.total_elements(), total);
  EXPECT_EQ(zero.unsharded_state_bytes(), 2 * total * 4);
  EXPECT_EQ(zero.state_bytes(), 2 * ((total + n - 1) / n) * 4);
  EXPECT_LT(zero.state_bytes(), zero.unsharded_state_bytes());
  if (r == 0)
    std::printf("ZeRO-1 vs data parallel: max |diff| = %.3g; optimizer state %ld bytes per rank vs %ld unsharded\n", d,
                long(zero.state_bytes()), long(zero.unsharded_state_bytes()));
}

// Parameter groups (weight decay on matrices only) and clipping, as `ember
// pretrain --zero` uses them; the gathered state is optim::AdamW's state_dict,
// and a state_dict loads both ways (plain -> ZeRO, ZeRO -> plain).
TEST(Zero1, GroupsClippingAndStateDictsMatchPlainAdamW) {
  auto comm = world();
  int n = comm->size(), r = comm->rank();
  constexpr double kClip = 0.05;  // small enough to clip every step
  auto dp_model = make_mlp(77);
  DataParallel dp(dp_model, comm);
  optim::AdamW opt(optim::make_param_groups(*dp_model, 0.1), adamw_options());
  auto z_model = make_mlp(77);
  ZeroAdamW zero(optim::make_param_groups(*z_model, 0.1), comm, adamw_options());
  for (int s = 0; s < kSteps; ++s) {
    auto xy = batch(s, n * kBatch, r * kBatch, kBatch);
    opt.zero_grad();
    mse(*dp_model, xy).backward();
    dp.finish_gradient_sync();
    const double want = optim::clip_grad_norm_(dp_model->parameters(), kClip);
    opt.step();
    zero.zero_grad();
    mse(*z_model, xy).backward();
    const double got = zero.sync_gradients(kClip);
    EXPECT_NEAR(got, want, 1e-6 * want) << "step " << s;
    EXPECT_GT(want, kClip);
    zero.step();
  }
  EXPECT_LT(max_diff(dp_model->parameters(), z_model->parameters()), kTol);

  const TensorMap plain = opt.state_dict(), gathered = zero.state_dict();
  if (r == 0) {
    ASSERT_EQ(gathered.size(), plain.size());
    for (const auto& [key, t] : plain) {
      ASSERT_TRUE(gathered.count(key)) << key;
      const Tensor& g = gathered.at(key);
      EXPECT_EQ(g.shape(), t.shape()) << key;
      EXPECT_EQ(g.dtype(), t.dtype()) << key;
      auto a = t.to_vector<double>(), b = g.to_vector<double>();
      for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-5 + 1e-4 * std::abs(a[k])) << key;
    }
    // A plain AdamW takes the gathered state as it is.
    auto copy = make_mlp(77);
    optim::AdamW reloaded(optim::make_param_groups(*copy, 0.1), adamw_options());
    reloaded.load_state_dict(gathered);
    EXPECT_EQ(reloaded.state(0).step, kSteps);
  } else {
    EXPECT_TRUE(gathered.empty());
  }
  // ZeRO from the plain state: the next step equals the plain optimizer's.
  auto z2_model = make_mlp(5);
  copy_parameters(*dp_model, *z2_model);
  ZeroAdamW z2(optim::make_param_groups(*z2_model, 0.1), comm, adamw_options());
  z2.load_state_dict(plain);
  EXPECT_EQ(z2.steps(), kSteps);
  step_both(kSteps, *comm, *dp_model, dp, opt, *z2_model, z2);
  EXPECT_LT(max_diff(dp_model->parameters(), z2_model->parameters()), kTol);

  // A state for other parameters is refused with the key that does not fit.
  auto other = make_mlp(5, kHidden + 1);
  optim::AdamW other_opt(optim::make_param_groups(*other, 0.1), adamw_options());
  for (const Tensor& p : other->parameters()) p.set_grad(zeros_like(p));
  other_opt.step();
  try {
    z2.load_state_dict(other_opt.state_dict());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[ZeroAdamW.load_state_dict] state.0.exp_avg has shape [33, 8] but parameter 0 "
                                          "has [32, 8]", 0), 0u) << e.what();
  }
}

TEST(Zero1, MissingGradientIsAnErrorNamingTheParameter) {
  auto comm = world();
  auto model = make_mlp(3);
  ZeroAdamW zero(model->parameters(), comm);
  try {
    zero.step();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[ZeroAdamW] parameter 0 of shape [32, 8] has no gradient", 0), 0u)
        << e.what();
  }
}

}  // namespace
