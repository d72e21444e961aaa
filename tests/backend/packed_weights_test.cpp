// Frozen weights (ember/backend/cpu/packed_weights.h): in every layout this
// machine has, a weight packed once and multiplied with each epilogue
// (activation, residual, both) and beta against a triple loop in double; the
// blocked layout read as packed (no reorder per call) on many threads; the
// layout chosen under each EMBER_GEMM setting; the errors for epilogues a
// product cannot take.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "backend/filled_values.h"
#include "backend/impl_scope.h"
#include "ember/backend/cpu/onednn_matmul.h"
#include "ember/backend/cpu/packed_weights.h"
#include "ember/backend/cpu/sgemm_packed.h"
#include "ember/core/tensor.h"
#include "test_util.h"

namespace ember::cpu {
namespace {

using ember::cpu::testing::filled;
using ember::cpu::testing::ImplScope;

std::vector<WeightLayout> available_layouts() {
  std::vector<WeightLayout> out;
  for (WeightLayout l : {WeightLayout::ember_panels, WeightLayout::onednn_blocked})
    if (packed_weight_floats(l, 64, 64) > 0) out.push_back(l);
  return out;
}

double activate(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case UnaryOp::gelu_tanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case UnaryOp::relu: return x > 0 ? x : 0.0;
    case UnaryOp::silu: return x / (1.0 + std::exp(-x));
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    default: ADD_FAILURE() << "no reference for " << unary_op_name(op); return 0.0;
  }
}

struct Case {
  int64_t m, n, k;
  std::optional<UnaryOp> activation;
  bool residual;
  float beta;
  int64_t pad = 0;  // C's rows are n + pad floats apart
};

// Packs W [n, k] (values in [-1, 1], scaled by 1/sqrt(k) so that outputs are of
// unit size), runs the product with A [m, k], a bias, the case's epilogue and
// beta over C (rows n + pad apart), and checks every element within float32
// rounding of the double reference and the padding untouched. (With padded
// rows oneDNN 2.6 has no brgemm kernel: its gemm:jit reads another weight
// layout, so the blocked weights are reordered per call, the fallback path.)
void check_case(WeightLayout layout, const Case& cs) {
  SCOPED_TRACE(::testing::Message() << weight_layout_name(layout) << " m=" << cs.m << " n=" << cs.n << " k=" << cs.k
                                    << " act=" << (cs.activation ? unary_op_name(*cs.activation) : "none")
                                    << " residual=" << cs.residual << " beta=" << cs.beta << " pad=" << cs.pad);
  const int64_t m = cs.m, n = cs.n, k = cs.k, ldc = n + cs.pad;
  std::vector<float> a = filled(size_t(m * k), 1), w = filled(size_t(n * k), 2), bias = filled(size_t(n), 3);
  std::vector<float> residual = filled(size_t(m * ldc), 4), c = filled(size_t(m * ldc), 5);
  for (float& x : w) x /= std::sqrt(float(k)) / 2.0f;
  const std::vector<float> c0 = c;
  Tensor packed = Tensor::empty({packed_weight_floats(layout, k, n)});
  pack_weight(layout, true, k, n, w.data(), k, packed.data<float>());
  GemmEpilogue ep;
  ep.activation = cs.activation;
  if (cs.residual) ep.residual = residual.data();
  gemm_packed_weights(layout, m, n, k, a.data(), k, packed.data<float>(), bias.data(), c.data(), ldc, cs.beta, ep);
  double worst = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double y = bias[size_t(j)];
      for (int64_t p = 0; p < k; ++p) y += double(a[size_t(i * k + p)]) * w[size_t(j * k + p)];
      if (cs.activation) y = activate(*cs.activation, y);
      if (cs.residual) y += residual[size_t(i * ldc + j)];
      y += double(cs.beta) * c0[size_t(i * ldc + j)];
      worst = std::max(worst, std::fabs(y - c[size_t(i * ldc + j)]));
    }
    for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[size_t(i * ldc + j)], c0[size_t(i * ldc + j)]) << "padding";
  }
  EXPECT_LE(worst, 2e-5);
}

TEST(PackedWeights, EveryLayoutAndEpilogueAgreesWithDouble) {
  const std::vector<WeightLayout> layouts = available_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no layout to pack weights in on this machine";
  // Rows: one (the last position of a sliced prefill) to four (all take the
  // blocked layout's stream of few rows, every row count of its kernel), a
  // few, a tile and a tail; columns with a partial sliver or 64-column strip;
  // depths of a partial k tile, one k slice and several.
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 37, 24},  {2, 65, 17},  {3, 130, 384}, {4, 200, 33},
                                                      {7, 64, 800}, {64, 37, 96}, {100, 130, 384}};
  for (WeightLayout layout : layouts) {
#if defined(__AVX512F__)
    // The stream of few rows reads the layout it expects, so the cases with
    // four rows or fewer exercise it rather than the primitive.
    if (layout == WeightLayout::onednn_blocked) {
      for (const auto& s : shapes) EXPECT_TRUE(onednn::blocked_geometry(s[2], s[1]).valid) << s[2] << " x " << s[1];
    }
#endif
    for (const auto& s : shapes) {
      for (int64_t pad : {0, 3}) {
        check_case(layout, {s[0], s[1], s[2], std::nullopt, false, 0.0f, pad});
        check_case(layout, {s[0], s[1], s[2], std::nullopt, false, 1.0f, pad});  // the runner's accumulate
        check_case(layout, {s[0], s[1], s[2], std::nullopt, true, 0.0f, pad});
        check_case(layout, {s[0], s[1], s[2], std::nullopt, true, 0.5f, pad});
        check_case(layout, {s[0], s[1], s[2], UnaryOp::gelu_tanh, false, 0.0f, pad});
        check_case(layout, {s[0], s[1], s[2], UnaryOp::gelu_tanh, true, 0.0f, pad});
      }
    }
    for (UnaryOp op : {UnaryOp::gelu, UnaryOp::relu, UnaryOp::silu, UnaryOp::tanh, UnaryOp::sigmoid}) {
      ASSERT_TRUE(epilogue_activation_supported(layout, op)) << unary_op_name(op);
      check_case(layout, {64, 37, 96, op, true, 0.0f});
    }
  }
}

TEST(PackedWeights, TheLayoutFollowsTheGemmChoice) {
  const bool panels = sgemm_packed_available();
  const bool blocked = packed_weight_floats(WeightLayout::onednn_blocked, 64, 64) > 0;
  {
    ImplScope scope(SgemmImpl::onednn);  // EMBER_GEMM=sgemm: weights stay as they are
    EXPECT_EQ(frozen_weight_layout(), WeightLayout::none);
  }
  {
    ImplScope scope(SgemmImpl::ember);
    EXPECT_EQ(frozen_weight_layout(), panels ? WeightLayout::ember_panels : WeightLayout::none);
  }
  {
    ImplScope scope(SgemmImpl::onednn_matmul);
    EXPECT_EQ(frozen_weight_layout(), blocked ? WeightLayout::onednn_blocked : WeightLayout::none);
  }
  ImplScope scope(SgemmImpl::automatic);
#if defined(__AVX512F__)
  EXPECT_EQ(frozen_weight_layout(),
            blocked ? WeightLayout::onednn_blocked : panels ? WeightLayout::ember_panels : WeightLayout::none);
#else
  EXPECT_EQ(frozen_weight_layout(), panels ? WeightLayout::ember_panels : WeightLayout::none);
#endif
}

TEST(PackedWeights, ManyThreadsReadTheBlockedLayoutAsPacked) {
  // On 8 or more threads oneDNN picks narrower weight blocks than the packed
  // layout for products of a few rows (a review's probe): the primitive must
  // still read the weights as packed (made for fewer threads), without a
  // reorder per call, and give the right sums (9 and 40 rows; one row takes
  // the stream of few rows, the key check below still makes its primitive).
  // Oversubscribed on a small machine, which is fine here.
  if (packed_weight_floats(WeightLayout::onednn_blocked, 64, 64) == 0) GTEST_SKIP() << "no oneDNN blocked kernel";
  const int before = omp_get_max_threads();
  omp_set_num_threads(16);
  for (const auto& [k, n] : {std::pair<int64_t, int64_t>{1536, 384}, {384, 1152}, {768, 768}})
    for (int64_t m : {1, 9, 40}) {
      check_case(WeightLayout::onednn_blocked, {m, n, k, std::nullopt, true, 0.0f});
      onednn::MatmulKey key;
      key.m = m, key.n = n, key.k = k, key.lda = k, key.ldc = n;
      key.bias = key.residual = key.blocked_weights = true;
      EXPECT_FALSE(onednn::reorders_weights_per_call(key)) << m << " x " << n << " x " << k;
    }
  omp_set_num_threads(before);
}

TEST(PackedWeights, Errors) {
  std::vector<float> w = filled(64 * 64, 1), a = filled(64 * 64, 2), c(64 * 64);
  EXPECT_EQ(packed_weight_floats(WeightLayout::none, 64, 64), 0);
  EXPECT_ERROR(pack_weight(WeightLayout::none, true, 64, 64, w.data(), 64, c.data()),
               "[pack_weight] a 64 x 64 weight cannot be packed in layout none");
  const std::vector<WeightLayout> layouts = available_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no layout to pack weights in on this machine";
  const WeightLayout layout = layouts.front();
  Tensor packed = Tensor::empty({packed_weight_floats(layout, 64, 64)});
  pack_weight(layout, true, 64, 64, w.data(), 64, packed.data<float>());
  GemmEpilogue act;
  act.activation = UnaryOp::relu;
  EXPECT_ERROR(gemm_packed_weights(layout, 64, 64, 64, a.data(), 64, packed.data<float>(), nullptr, c.data(), 64,
                                   1.0f, act),
               "[linear_prepacked] an activation epilogue needs beta 0");
  GemmEpilogue aliased;
  aliased.residual = c.data() + 64 * 63;  // its first row is C's last
  EXPECT_ERROR(gemm_packed_weights(layout, 64, 64, 64, a.data(), 64, packed.data<float>(), nullptr, c.data(), 64,
                                   0.0f, aliased),
               "[linear_prepacked] the residual may not overlap the output");
  EXPECT_ERROR(gemm_packed_weights(WeightLayout::none, 64, 64, 64, a.data(), 64, packed.data<float>(), nullptr,
                                   c.data(), 64),
               "[linear_prepacked] weights packed in layout none cannot be multiplied");
  if (packed_weight_floats(WeightLayout::onednn_blocked, 64, 64) > 0) {
    GemmEpilogue exp_act;
    exp_act.activation = UnaryOp::exp;  // not one of the primitive's fused activations
    EXPECT_ERROR(gemm_packed_weights(WeightLayout::onednn_blocked, 64, 64, 64, a.data(), 64, packed.data<float>(),
                                     nullptr, c.data(), 64, 0.0f, exp_act),
                 "[linear_prepacked] activation exp cannot be fused in layout onednn_blocked");
  }
}

}  // namespace
}  // namespace ember::cpu
