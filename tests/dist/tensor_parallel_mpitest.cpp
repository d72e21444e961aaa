// Tensor parallelism under mpirun (also -np 1): the differentiable collectives
// against hand computations; column/row-parallel Linear against a full Linear;
// a tensor-parallel GPT (GPT-2 style, and RMSNorm + RoPE + SwiGLU + GQA)
// against the same model in one process: logits, loss, every gathered
// parameter gradient, and the parameters after AdamW steps; checkpoints
// gathered back to the full layout (on every rank, and on one rank only); the
// gradient norm over split and replicated parameters and AdamW's state
// gathered to (and sliced from) the one-process layout
// (dist/tensor_parallel_train.h); errors for sizes that do not split.
//
// Tolerances (float32): the only arithmetic difference from one process is the
// row-parallel layers summing partial products across ranks instead of inside
// one GEMM, a few ulps per element. Measured with 2 and 3 ranks: logits within
// 1.8e-7, loss within 4.8e-7 (1 ulp at ~4.2), gradients within 9e-8 (largest
// gradients 0.13-0.47); bounds 1e-6 / 2e-6 / 1e-6. After 3 AdamW steps (lr
// 1e-2, eps 1e-6, see adamw_options) parameters within 2.8e-5: Adam normalises
// each element by its own gradient's size, so for elements whose gradient is
// ~1e-6 those ulps become a visible fraction of a step; bound 1e-4 (1% of lr).
// With one rank everything is bit-identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "ember/dist/tensor_parallel.h"
#include "ember/dist/tensor_parallel_train.h"
#include "ember/ember.h"
#include "ember/models/gpt.h"
#include "models/gpt_test_configs.h"
#include "ember/models/gpt_tensor_parallel.h"
#include "ember/optim/optim.h"
#include "tests/test_util.h"

using namespace ember;
using namespace ember::dist;
using models::GPT;
using models::GPTConfig;

namespace {

constexpr double kLogitTol = 1e-6, kLossTol = 2e-6, kGradTol = 1e-6, kParamTol = 1e-4;
constexpr int kSteps = 3;

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(shape_str(a.shape()), shape_str(b.shape()));
  if (a.shape() != b.shape()) return INFINITY;
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double d = 0;
  for (size_t k = 0; k < x.size(); ++k) d = std::max(d, std::abs(x[k] - y[k]));
  return d;
}

// Largest difference over same-named tensors; every name of `want` must be in `got`.
double max_abs_diff(const nn::NamedTensors& got, const nn::NamedTensors& want, std::string* worst = nullptr) {
  EXPECT_EQ(got.size(), want.size());
  std::map<std::string, Tensor> by_name(got.begin(), got.end());
  double d = 0;
  for (const auto& [name, w] : want) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      ADD_FAILURE() << "missing " << name;
      continue;
    }
    double dn = max_abs_diff(it->second, w);
    if (dn > d && worst) *worst = name;
    d = std::max(d, dn);
  }
  return d;
}

nn::NamedTensors gradients(const nn::Module& m) {
  nn::NamedTensors out;
  for (const auto& [name, p] : m.named_parameters()) out.emplace_back(name, p.grad());
  return out;
}

// Sizes scale with the rank count so that heads and hidden widths split for
// 1, 2 or 3 ranks.
GPTConfig gpt2_style(int n) {
  GPTConfig c;
  c.n_layer = 2;
  c.n_head = c.n_kv_head = 2 * n;
  c.n_embd = 16 * n;  // head_dim 8; MLP hidden 4 * n_embd
  c.vocab_size = 64;
  c.block_size = 16;
  return c;  // LayerNorm, learned positions, GELU, biases, tied embeddings
}

GPTConfig modern(int n) {
  GPTConfig c = models::test_configs::with_modern_features(gpt2_style(n));
  c.n_kv_head = n;    // two query heads per key/value head
  c.n_embd = 24 * n;  // head_dim 12; SwiGLU hidden 64 / 128 / 192 for 1 / 2 / 3 ranks
  return c;
}

// A fixed batch for step s (the same on every rank: tensor parallelism splits
// the model, not the data).
std::pair<Tensor, Tensor> batch(int s, int64_t vocab) {
  const int64_t B = 2, T = 12;
  std::vector<int64_t> idx, tgt;
  for (int64_t i = 0; i < B * T; ++i) {
    idx.push_back((i * 37 + 11 + s * 5) % vocab);
    tgt.push_back((i * 23 + 3 + s * 7) % vocab);
  }
  return {tensor_i64(idx, {B, T}), tensor_i64(tgt, {B, T})};
}

optim::AdamWOptions adamw_options() {
  optim::AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.1;
  // Adam divides by sqrt(v) + eps, so a gradient that is rounding noise (the
  // key bias's is exactly zero in exact arithmetic: softmax ignores a shift
  // shared by every key) becomes a step of up to lr, differently on each side.
  // eps 1e-6 keeps noise below ~1e-9 from being amplified past it; gradients of
  // real size are normalised as with the default.
  o.eps = 1e-6;
  return o;
}

void check_matches_one_process(const GPTConfig& cfg, const char* label) {
  auto comm = world();
  const int n = comm->size();
  Generator g1(42), g2(42);
  GPT ref(cfg, &g1), tp(cfg, &g2);
  models::make_tensor_parallel(tp, comm);
  ASSERT_TRUE(models::is_tensor_parallel(tp));

  // Each rank holds 1/n of the split layers.
  auto& attn = *static_cast<models::Block&>(*(*tp.transformer->h)[0]).attn;
  EXPECT_EQ(attn.c_attn->weight.shape(0), (cfg.n_head + 2 * cfg.n_kv_head) / n * cfg.head_dim());
  EXPECT_EQ(attn.c_proj->weight.shape(1), cfg.n_embd / n);
  if (n > 1) {
    EXPECT_LT(tp.num_parameters(), ref.num_parameters());
  }

  // Sharding then gathering is exact, and the gathered state loads into a plain GPT.
  TensorMap full_state = gather_full_state_dict(tp);
  TensorMap ref_state = ref.state_dict();
  ASSERT_EQ(full_state.size(), ref_state.size());
  for (const auto& [name, t] : ref_state) EXPECT_EQ(max_abs_diff(full_state.at(name), t), 0.0) << name;
  // Gathered to one rank only, as a checkpoint is: the same there, nothing on the others.
  const int root = n - 1;
  const TensorMap at_root = gather_full_state_dict(tp, root);
  if (comm->rank() == root) {
    ASSERT_EQ(at_root.size(), ref_state.size());
    for (const auto& [name, t] : ref_state) EXPECT_EQ(max_abs_diff(at_root.at(name), t), 0.0) << name;
  } else {
    EXPECT_TRUE(at_root.empty());
  }
  Generator g3(7);
  GPT reloaded(cfg, &g3);
  reloaded.load_state_dict(full_state);

  auto [idx, tgt] = batch(0, cfg.vocab_size);
  double d_logits;
  {
    NoGradGuard no_grad;
    Tensor want = ref.forward(idx);
    d_logits = max_abs_diff(tp.forward(idx), want);
    EXPECT_EQ(max_abs_diff(reloaded.forward(idx), want), 0.0);
  }
  Tensor loss_ref = ref.loss(idx, tgt), loss_tp = tp.loss(idx, tgt);
  double d_loss = std::abs(loss_ref.item<double>() - loss_tp.item<double>());
  loss_ref.backward();
  loss_tp.backward();
  auto grads_ref = gradients(ref);
  auto grads_tp = gather_full_parameters(tp, /*gradients=*/true);
  double d_grad = max_abs_diff(grads_tp, grads_ref);
  double grad_scale = 0;
  for (const auto& ng : grads_ref) grad_scale = std::max(grad_scale, max(abs(ng.second)).item<double>());
  EXPECT_LT(d_logits, kLogitTol);
  EXPECT_LT(d_loss, kLossTol);
  EXPECT_LT(d_grad, kGradTol);
  EXPECT_GT(grad_scale, 1e-3);  // the comparison is not between near-zero gradients
  // The global norm counts split parameters once over the ranks and replicated ones once.
  const double norm_ref = optim::grad_norm(ref.parameters()), norm_tp = dist::clip_grad_norm_(tp, 0.0);
  EXPECT_LT(std::abs(norm_tp - norm_ref), 1e-6 * norm_ref) << norm_tp << " vs " << norm_ref;
  // Replicated parameters (embeddings, norms, lm_head, row-parallel biases) get
  // bit-identical gradients on every rank, so they never drift apart.
  std::map<std::string, Tensor> ref_params(grads_ref.begin(), grads_ref.end());
  for (const auto& [name, p] : tp.named_parameters()) {
    if (n == 1 || p.shape() != ref_params.at(name).shape()) continue;
    Tensor mine = clone(p.grad()), rank0 = clone(p.grad());
    comm->broadcast(rank0, 0);
    EXPECT_EQ(max_abs_diff(mine, rank0), 0.0) << name;
  }

  // AdamW on each rank's shards follows the one-process trajectory.
  optim::AdamW opt_ref(ref.parameters(), adamw_options()), opt_tp(tp.parameters(), adamw_options());
  for (int s = 0; s < kSteps; ++s) {
    if (s > 0) {
      auto [x, y] = batch(s, cfg.vocab_size);
      opt_ref.zero_grad();
      opt_tp.zero_grad();
      ref.loss(x, y).backward();
      tp.loss(x, y).backward();
    }
    opt_ref.step();
    opt_tp.step();
  }
  std::string worst;
  double d_param = max_abs_diff(gather_full_parameters(tp), ref.named_parameters(), &worst);
  EXPECT_LT(d_param, kParamTol);
  // AdamW's moments in the one-process layout (what a checkpoint holds), and back.
  TensorMap full_opt = dist::gather_full_optimizer_state(tp, opt_tp), ref_opt = opt_ref.state_dict();
  ASSERT_EQ(full_opt.size(), ref_opt.size());
  for (const auto& [key, t] : ref_opt) {
    ASSERT_TRUE(full_opt.count(key)) << key;
    ASSERT_EQ(shape_str(full_opt.at(key).shape()), shape_str(t.shape())) << key;
  }
  const TensorMap opt_at_root = dist::gather_full_optimizer_state(tp, opt_tp, root);
  if (comm->rank() == root) {
    ASSERT_EQ(opt_at_root.size(), full_opt.size());
    for (const auto& [key, t] : full_opt) EXPECT_EQ(max_abs_diff(opt_at_root.at(key), t), 0.0) << key;
  } else {
    EXPECT_TRUE(opt_at_root.empty());
  }
  const TensorMap mine = opt_tp.state_dict(), sliced = dist::slice_optimizer_state(tp, opt_tp, full_opt);
  ASSERT_EQ(sliced.size(), mine.size());
  for (const auto& [key, t] : mine) EXPECT_EQ(max_abs_diff(sliced.at(key), t), 0.0) << key;
  if (comm->rank() == 0)
    std::printf("tensor parallel %s on %d ranks vs one process: max |diff| logits %.3g, loss %.3g, gradients %.3g "
                "(largest gradient %.3g), parameters after %d AdamW steps %.3g (%s)\n",
                label, n, d_logits, d_loss, d_grad, grad_scale, kSteps, d_param, worst.c_str());
}

TEST(TensorParallel, CollectivesAgainstHandComputation) {
  auto comm = world();
  const int n = comm->size(), r = comm->rank();
  const double tri = n * (n + 1) / 2.0;  // sum over ranks of (rank + 1)
  // tp_copy: identity forward; backward sums every rank's cotangent.
  Tensor x = full({2, 3}, 5.0);
  x.requires_grad_(true);
  Tensor y = tp_copy(x, comm);
  EXPECT_EQ(y.to_vector<float>(), std::vector<float>(6, 5.0f));
  sum(y * double(r + 1)).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(6, float(tri)));
  // tp_reduce: sums forward; backward passes this rank's cotangent through.
  Tensor a = full({3}, double(r + 1));
  a.requires_grad_(true);
  Tensor b = tp_reduce(a, comm);
  EXPECT_EQ(b.to_vector<float>(), std::vector<float>(3, float(tri)));
  sum(b * double(r + 2)).backward();
  EXPECT_EQ(a.grad().to_vector<float>(), std::vector<float>(3, float(r + 2)));
  // tp_gather: rank q's [2, 2] lands in columns [2q, 2q + 2); backward takes this rank's columns.
  Tensor c = full({2, 2}, double(r));
  c.requires_grad_(true);
  Tensor gathered = tp_gather(c, comm);
  ASSERT_EQ(gathered.shape(), (Shape{2, 2 * n}));
  auto gv = gathered.to_vector<float>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 2 * n; ++j) EXPECT_EQ(gv[size_t(i * 2 * n + j)], float(j / 2));
  Tensor weights = reshape(arange(0.0, double(4 * n), 1.0), {2, 2 * n});
  sum(gathered * weights).backward();
  auto cg = c.grad().to_vector<float>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(cg[size_t(i * 2 + j)], float(i * 2 * n + 2 * r + j));
}

TEST(TensorParallel, ColumnThenRowParallelEqualsTheFullLayers) {
  auto comm = world();
  const int n = comm->size();
  Generator gen(5);
  nn::Linear fc(6, 4 * n, true, &gen), proj(4 * n, 6, true, &gen);
  auto col = std::make_shared<ColumnParallelLinear>(fc, comm);
  auto gathered = std::make_shared<ColumnParallelLinear>(fc, comm, std::vector<int64_t>{}, /*gather_output=*/true);
  auto row = std::make_shared<RowParallelLinear>(proj, comm);
  EXPECT_EQ(col->weight.shape(), (Shape{4, 6}));
  EXPECT_EQ(row->weight.shape(), (Shape{6, 4}));
  Tensor x = randn({3, 6}, DType::f32, Device::cpu(), &gen);
  NoGradGuard no_grad;
  Tensor hidden = fc.forward(x);
  EXPECT_LT(max_abs_diff(gathered->forward(x), hidden), 1e-6);
  EXPECT_LT(max_abs_diff(row->forward(tanh(col->forward(x))), proj.forward(tanh(hidden))), 1e-6);
  EXPECT_EQ(max_abs_diff(col->gather_full(col->weight), fc.weight), 0.0);
  EXPECT_EQ(max_abs_diff(row->gather_full(row->weight), proj.weight), 0.0);
  EXPECT_EQ(max_abs_diff(row->gather_full(row->bias), proj.bias), 0.0);
}

// The seam make_tensor_parallel uses (nn::Module::replace_module): the swapped
// layer keeps its name and place, so checkpoints and optimizers see the same order.
TEST(TensorParallel, ReplaceModuleKeepsNamesAndOrder) {
  auto comm = world();
  Generator gen(3);
  nn::Module seq;
  auto first = seq.register_module("fc", std::make_shared<nn::Linear>(4, 2 * comm->size(), true, &gen));
  seq.register_module("out", std::make_shared<nn::Linear>(2, 3, true, &gen));
  std::vector<std::string> before;
  for (const auto& np : seq.named_parameters()) before.push_back(np.first);
  seq.replace_module("fc", std::make_shared<ColumnParallelLinear>(*first, comm));
  std::vector<std::string> after;
  for (const auto& np : seq.named_parameters()) after.push_back(np.first);
  EXPECT_EQ(after, before);
  EXPECT_EQ(seq.named_children()[0].second->type_name(), "ColumnParallelLinear");
  EXPECT_ERROR(seq.replace_module("nope", first), "[replace_module] no child module named 'nope'; children are: fc, out");
}

TEST(TensorParallelGPT, Gpt2StyleMatchesOneProcess) {
  check_matches_one_process(gpt2_style(world()->size()), "gpt2-style");
}

TEST(TensorParallelGPT, ModernMatchesOneProcess) {
  check_matches_one_process(modern(world()->size()), "rmsnorm+rope+swiglu+gqa");
}

TEST(TensorParallelGPT, SizesThatDoNotSplitAreErrorsOnEveryRank) {
  auto comm = world();
  const int n = comm->size();
  if (n == 1) GTEST_SKIP() << "everything splits across one rank";
  Generator gen(1);
  GPTConfig c = gpt2_style(n);
  c.n_head = c.n_kv_head = n + 1;  // with n_embd a multiple of it, as GPTConfig requires
  c.n_embd = 8 * (n + 1);
  GPT heads(c, &gen);
  EXPECT_ERROR(models::make_tensor_parallel(heads, comm),
               str_cat("[tensor_parallel(GPT)] n_head = ", n + 1, " does not divide by ", n,
                       " ranks (each rank takes whole attention heads)"));
  EXPECT_FALSE(models::is_tensor_parallel(heads));

  GPTConfig k = modern(n);
  k.n_kv_head = 1;
  GPT kv(k, &gen);
  EXPECT_ERROR(models::make_tensor_parallel(kv, comm),
               str_cat("[tensor_parallel(GPT)] n_kv_head = 1 does not divide by ", n,
                       " ranks (grouped-query attention splits the key/value heads across ranks too)"));

  if (n == 3) {  // SwiGLU widths are multiples of 64, which always split in two
    GPTConfig h = modern(1);
    h.n_head = h.n_kv_head = 3;
    h.n_embd = 36;  // hidden 128
    GPT hidden(h, &gen);
    EXPECT_ERROR(models::make_tensor_parallel(hidden, comm),
                 "[tensor_parallel(GPT)] MLP hidden width 128 does not divide by 3 ranks");
  }

  nn::Linear odd(4, 2 * n + 1, true, &gen);
  EXPECT_ERROR(ColumnParallelLinear(odd, comm),
               str_cat("[ColumnParallelLinear] output block of ", 2 * n + 1,
                       " features does not split evenly across ", n, " ranks"));
  nn::Linear odd_in(2 * n + 1, 4, true, &gen);
  EXPECT_ERROR(RowParallelLinear(odd_in, comm),
               str_cat("[RowParallelLinear] ", 2 * n + 1, " input features do not split evenly across ", n, " ranks"));

  // Ranks that built their full models from different seeds.
  Generator per_rank(100 + uint64_t(comm->rank()));
  GPT differs(gpt2_style(n), &per_rank);
  std::string others;
  for (int q = 1; q < n; ++q) others += (q > 1 ? ", " : "") + std::to_string(q);
  EXPECT_ERROR(models::make_tensor_parallel(differs, comm),
               str_cat("[tensor_parallel(GPT)] rank(s) ", others, " have weights that differ from rank 0's"));
  // Converting twice would split the shards again.
  Generator same(9);
  GPT twice(gpt2_style(n), &same);
  models::make_tensor_parallel(twice, comm);
  EXPECT_ERROR(models::make_tensor_parallel(twice, comm),
               "[tensor_parallel(GPT)] the model is already tensor-parallel");
}

}  // namespace
