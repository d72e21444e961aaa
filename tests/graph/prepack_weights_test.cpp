// Weight prepacking (ember/graph/passes/prepack_weights.cpp and
// prepacked_linear.h): which linears read packed weights, that the executor's
// results equal eager execution's, that a graph computing gradients is left
// alone, that the weights are frozen when the graph is optimised, and the GPT
// prefill compiled with frozen weights.
#include <gtest/gtest.h>

#include "backend/impl_scope.h"
#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/packed_weights.h"
#include "ember/backend/cpu/sgemm_packed.h"
#include "ember/graph/compile.h"
#include "ember/graph/prepacked_linear.h"
#include "ember/models/gpt.h"
#include "graph/graph_test_util.h"
#include "models/gpt_test_configs.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;

namespace {

#define SKIP_WITHOUT_PACKED_GEMM()                                 \
  if (cpu::frozen_weight_layout() == cpu::WeightLayout::none) \
  GTEST_SKIP() << "no layout to pack weights in (no AVX2 + FMA packed GEMM, no oneDNN blocked kernel)"

int64_t captures_named(const graph::Graph& g, const std::string& suffix) {
  int64_t count = 0;
  for (const graph::Capture& c : g.captures)
    count += c.name.size() >= suffix.size() && c.name.compare(c.name.size() - suffix.size(), suffix.size(), suffix) == 0;
  return count;
}

}  // namespace

TEST(WeightPrepacking, LinearsReadPackedWeightsAndAgreeWithEager) {
  SKIP_WITHOUT_PACKED_GEMM();
  // A bias and none, a 3-D input, edge sizes (n = 37: a partial sliver; k = 800:
  // three k slices), one weight read by two linears (packed once), and a
  // weight that is a transposed view (unit row stride). w1 is scaled so that
  // h is of unit size (the outputs, sums of 37 such terms, about 10) and the
  // tolerance is float32 rounding of two GEMMs summing in different orders.
  Tensor w1 = random({37, 800}, 1) * (1.0 / 28.0), b1 = random({37}, 2), w2 = random({20, 37}, 3);
  Tensor w3_storage = random({37, 20}, 4);
  Tensor w3 = transpose(w3_storage, 0, 1);  // [20, 37] with strides (1, 20)
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor h = linear(in[0], w1, b1);
    return std::vector<Tensor>{linear(h, w2), linear(h, w2) * 2.0 + linear(h, w3)};
  };
  int64_t changed = 0;
  graph::Graph g = check_pass(fn, {random({3, 5, 800}, 5)}, [&](graph::Graph& gr) { changed = graph::prepack_linear_weights(gr); },
                              5e-5);
  EXPECT_EQ(changed, 4);
  EXPECT_EQ(g.node_count("linear"), 0);
  EXPECT_EQ(g.node_count("linear_prepacked"), 4);
  EXPECT_EQ(captures_named(g, ".packed"), 3);  // w1, w2 (once), w3
}

TEST(WeightPrepacking, MatchesTheUnpackedKernelBitForBit) {
  // The packed product is the kernel's own with the packing done ahead: ember's
  // packed GEMM on its panels, oneDNN's matmul primitive on its blocked layout
  // (against the same primitive reading the row-major weight).
  Tensor w = random({70, 96}, 1), b = random({70}, 2), x = random({40, 96}, 3);
  int64_t layouts = 0;
  for (cpu::WeightLayout layout : {cpu::WeightLayout::ember_panels, cpu::WeightLayout::onednn_blocked}) {
    const int64_t floats = cpu::packed_weight_floats(layout, 96, 70);
    if (floats == 0) continue;
    ++layouts;
    SCOPED_TRACE(cpu::weight_layout_name(layout));
    Tensor packed = Tensor::empty({floats});
    cpu::pack_weight(layout, true, 96, 70, w.data<float>(), 96, packed.data<float>());
    Tensor got = Tensor::empty({40, 70});
    std::vector<Tensor> out{got};
    graph::PrepackedLinearPrim::Options options;
    options.layout = layout;
    options.bias = true;
    graph::PrepackedLinearPrim(96, 70, options).eval_cpu({x, packed, b}, out);
    Tensor want = Tensor::empty({40, 70});
    if (layout == cpu::WeightLayout::ember_panels) {
      cpu::sgemm_packed(false, true, 40, 70, 96, 1.0f, x.data<float>(), 96, w.data<float>(), 96, 0.0f,
                        want.data<float>(), 70, 1, b.data<float>());
    } else {
      cpu::testing::ImplScope scope(cpu::SgemmImpl::onednn_matmul);
      cpu::gemm_bias(false, true, 40, 70, 96, x.data<float>(), 96, w.data<float>(), 96, b.data<float>(),
                     want.data<float>(), 70);
    }
    expect_equal(got, want);
  }
  if (layouts == 0) GTEST_SKIP() << "no layout to pack weights in";
}

TEST(WeightPrepacking, LeavesGraphsThatComputeGradientsAlone) {
  SKIP_WITHOUT_PACKED_GEMM();
  Tensor w = random({4, 3}, 1);
  w.requires_grad_(true);
  graph::Graph g = graph::trace(
      [&](const std::vector<Tensor>& in) {
        Tensor loss = sum(linear(in[0], w));
        loss.backward();
        return std::vector<Tensor>{loss};
      },
      {random({2, 3}, 2)});
  ASSERT_FALSE(g.grads.empty());
  EXPECT_EQ(graph::prepack_linear_weights(g), 0);
  EXPECT_EQ(g.node_count("linear_prepacked"), 0);
}

TEST(WeightPrepacking, TheWeightsAreFrozenAtTheirFirstUse) {
  SKIP_WITHOUT_PACKED_GEMM();
  // The documented contract: a compiled function with prepack_weights reads
  // each weight as it was at its first use, for every signature traced after
  // (packed once, shared), also in grad mode with a weight that requires
  // grad (always planned: no replay of the live graph); without it, updates
  // are seen.
  Tensor w = random({6, 5}, 1), x = random({2, 5}, 2), x3 = random({3, 5}, 3);
  w.requires_grad_(true);
  auto fn = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{linear(in[0], w)}; };
  CompileOptions frozen;
  frozen.passes.prepack_weights = true;
  CompiledFunction f_frozen = compile(fn, frozen), f_live = compile(fn);
  Tensor before, before3;
  {
    NoGradGuard ng;
    before = fn({x})[0];
    before3 = fn({x3})[0];
  }
  EXPECT_LE(max_abs_diff(f_frozen({x})[0], before), 1e-6);  // grad mode on
  EXPECT_LE(max_abs_diff(f_live({x})[0].detach(), before), 1e-6);
  {
    NoGradGuard ng;
    w.data<float>()[0] += 1.0f;  // an in-place update after the first call
  }
  Tensor after;
  {
    NoGradGuard ng;
    after = fn({x})[0];
    EXPECT_LE(max_abs_diff(f_frozen({x})[0], before), 1e-6);    // another signature (no grad): still frozen
    EXPECT_LE(max_abs_diff(f_frozen({x3})[0], before3), 1e-6);  // a new shape too
  }
  EXPECT_LE(max_abs_diff(f_frozen({x})[0], before), 1e-6);
  EXPECT_LE(max_abs_diff(f_live({x})[0].detach(), after), 1e-6);
  EXPECT_EQ(f_frozen.stats().replayed_runs, 0);
  EXPECT_EQ(f_frozen.stats().traces, 3);
}

TEST(WeightPrepacking, SignaturesShareOnePackedCopy) {
  SKIP_WITHOUT_PACKED_GEMM();
  Tensor w = random({40, 24}, 1), w2 = random({24, 40}, 2);
  auto fn = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{linear(linear(in[0], w), w2)}; };
  graph::PassOptions passes;
  passes.prepack_weights = true;
  passes.packed_weights = std::make_shared<graph::PackedWeightCache>();
  CompileOptions o;
  o.passes = passes;
  CompiledFunction f = compile(fn, o);
  NoGradGuard ng;
  for (int64_t rows : {1, 7, 64}) {
    Tensor x = random({rows, 24}, uint64_t(rows));
    // Outputs of size about 30 (unit-normal weights): float32 rounding is ~1e-5.
    EXPECT_LE(max_abs_diff(f({x})[0], fn({x})[0]), 1e-4) << rows << " rows";
  }
  EXPECT_EQ(passes.packed_weights->size(), 2u);  // w and w2, once for three signatures
}

TEST(WeightPrepacking, GptPrefillWithFrozenWeights) {
  SKIP_WITHOUT_PACKED_GEMM();
  // `ember bench generate --compile`'s prefill, for both GPT variants: every
  // linear reads packed weights (the tied lm head too, while the embedding
  // lookup reads the table itself), and the logits agree with eager.
  for (const models::GPTConfig& cfg : {models::test_configs::gpt2_style(), models::test_configs::modern()}) {
    Generator gen(1);
    models::GPT model(cfg, &gen);
    model.eval();
    NoGradGuard ng;
    auto prefill = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.last_logits(in[0])}; };
    CompileOptions o;
    o.passes.prepack_weights = true;
    CompiledFunction f = compile(prefill, o);
    Generator ids_gen(3);
    Tensor x = randint(0, cfg.vocab_size, {2, 12}, Device::cpu(), &ids_gen);
    EXPECT_LE(max_abs_diff(f({x})[0], prefill({x})[0]), 1e-5);
    const graph::Graph& g = *f.last_graph();
    EXPECT_EQ(g.node_count("linear"), 0);
    EXPECT_GE(g.node_count("linear_prepacked"), 4 * cfg.n_layer);
    // Both residual adds of every block are taken into the products (the last
    // block's too: its rows are sliced, not gone), and GELU into c_fc's
    // (SwiGLU's activation reads half of c_fc's output: not an epilogue).
    const bool gelu = cfg.mlp == models::MlpKind::gelu;
    if (gelu) {
      EXPECT_EQ(g.node_count("gelu_tanh"), 0);
    }
    int64_t packed = 0, epilogues = 0;
    for (const graph::PassReport& r : *f.last_report()) {
      if (r.pass == "weight_prepacking") packed += r.changed;
      if (r.pass == "linear_epilogue_fusion") epilogues += r.changed;
    }
    EXPECT_GT(packed, 0);
    EXPECT_EQ(epilogues, (gelu ? 3 : 2) * cfg.n_layer);
  }
}
