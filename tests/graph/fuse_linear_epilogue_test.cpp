// Linear epilogue fusion (ember/graph/passes/fuse_linear_epilogue.cpp): the
// graph before and after (which activations and adds a prepacked linear takes
// in, and which it must not), with the executor's results equal to eager's
// within float32 rounding.
#include <gtest/gtest.h>

#include "ember/backend/cpu/packed_weights.h"
#include "ember/graph/passes.h"
#include "ember/graph/prepacked_linear.h"
#include "graph/graph_test_util.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;

namespace {

#define SKIP_WITHOUT_PACKED_WEIGHTS()                         \
  if (cpu::frozen_weight_layout() == cpu::WeightLayout::none) \
  GTEST_SKIP() << "no layout to pack weights in on this machine"

// Prepacks and fuses; returns how many ops the fusion took in.
int64_t prepack_and_fuse(graph::Graph& g) {
  EXPECT_GT(graph::prepack_linear_weights(g), 0);
  return graph::fuse_linear_epilogues(g);
}

// The options of the i-th linear_prepacked node.
graph::PrepackedLinearPrim::Options options_of(const graph::Graph& g, int64_t i) {
  for (const graph::Node& n : g.nodes)
    if (auto* p = dynamic_cast<const graph::PrepackedLinearPrim*>(n.prim.get()); p && i-- == 0) return p->options();
  ADD_FAILURE() << "no linear_prepacked number " << i;
  return {};
}

}  // namespace

TEST(LinearEpilogueFusion, TakesAnMlpsGeluAndTheResidualAdds) {
  SKIP_WITHOUT_PACKED_WEIGHTS();
  // A pre-norm block's shape: x + proj(gelu(fc(x))), then + out(x) with the
  // residual on the other side of the add.
  Tensor w1 = random({64, 32}, 1) * 0.2, b1 = random({64}, 2), w2 = random({32, 64}, 3) * 0.1, b2 = random({32}, 4);
  Tensor w3 = random({32, 32}, 5) * 0.2;
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor h = x + linear(gelu(linear(x, w1, b1), true), w2, b2);
    return std::vector<Tensor>{linear(h, w3) + h};
  };
  int64_t fused = 0;
  graph::Graph g = check_pass(fn, {random({2, 9, 32}, 6)}, [&](graph::Graph& gr) { fused = prepack_and_fuse(gr); },
                              2e-5);
  EXPECT_EQ(fused, 3);
  EXPECT_EQ(g.node_count("gelu_tanh"), 0);
  EXPECT_EQ(g.node_count("add"), 0);
  EXPECT_EQ(g.node_count("linear_prepacked"), 3);
  EXPECT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(options_of(g, 0).activation, UnaryOp::gelu_tanh);
  EXPECT_FALSE(options_of(g, 0).residual);
  EXPECT_TRUE(options_of(g, 1).residual && options_of(g, 1).bias);
  EXPECT_TRUE(options_of(g, 2).residual && !options_of(g, 2).bias);
  EXPECT_NE(g.dump().find("activation=gelu_tanh"), std::string::npos) << g.dump();
}

TEST(LinearEpilogueFusion, LeavesWhatTheProductCannotTake) {
  SKIP_WITHOUT_PACKED_WEIGHTS();
  Tensor w = random({16, 16}, 1) * 0.25, b = random({16}, 2), v = random({16}, 3);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor read_twice = linear(x, w, b);  // its own output is read again: no epilogue
    Tensor y = relu(read_twice) + read_twice;
    Tensor broadcast = linear(y, w) + v;          // a bias-like operand broadcast over rows
    Tensor returned = linear(broadcast, w, b);    // a graph output, also read by the tanh
    Tensor added_first = tanh(linear(returned, w) + x);  // the add is taken, the tanh after it is not
    return std::vector<Tensor>{returned, added_first};
  };
  int64_t fused = 0;
  graph::Graph g = check_pass(fn, {random({5, 16}, 4)}, [&](graph::Graph& gr) { fused = prepack_and_fuse(gr); },
                              2e-5);
  EXPECT_EQ(fused, 1);
  EXPECT_EQ(g.node_count("relu"), 1);
  EXPECT_EQ(g.node_count("add"), 2);
  EXPECT_EQ(g.node_count("tanh"), 1);
  EXPECT_TRUE(options_of(g, 3).residual);
  EXPECT_FALSE(options_of(g, 3).activation.has_value());
}

TEST(LinearEpilogueFusion, AResidualComputedAfterTheLinearAndOpsTheLayoutCannotTake) {
  SKIP_WITHOUT_PACKED_WEIGHTS();
  // y = linear(x) is computed before the residual r = tanh(x) * 2 it is added
  // to: the fused node takes the add's place, after r. The sum of a linear
  // with itself (one node after CSE) is not a residual. exp is an epilogue on
  // ember's panels but not among oneDNN's post-ops.
  Tensor w = random({16, 16}, 1) * 0.25;
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor y = linear(in[0], w);
    Tensor r = tanh(in[0]) * 2.0;
    Tensor doubled = linear(in[1], w) + linear(in[1], w);
    return std::vector<Tensor>{y + r, doubled, exp(linear(in[1] * 0.5, w))};
  };
  const cpu::WeightLayout layout = cpu::frozen_weight_layout();
  const bool exp_fuses = cpu::epilogue_activation_supported(layout, UnaryOp::exp);
  EXPECT_EQ(exp_fuses, layout == cpu::WeightLayout::ember_panels);
  int64_t fused = 0;
  graph::Graph g = check_pass(
      fn, {random({5, 16}, 4), random({5, 16}, 5)},
      [&](graph::Graph& gr) {
        graph::eliminate_common_subexpressions(gr);
        fused = prepack_and_fuse(gr);
      },
      2e-5);
  EXPECT_EQ(fused, exp_fuses ? 2 : 1);
  EXPECT_EQ(g.node_count("exp"), exp_fuses ? 0 : 1);
  EXPECT_EQ(g.node_count("add"), 1);  // the doubled linear's
  // In node order: the doubled linear, y + r in the add's place, the exp's linear.
  EXPECT_FALSE(options_of(g, 0).residual);
  EXPECT_TRUE(options_of(g, 1).residual);
}

TEST(LinearEpilogueFusion, RunsInThePipelineOnlyWithFrozenWeights) {
  SKIP_WITHOUT_PACKED_WEIGHTS();
  Tensor w = random({24, 24}, 1) * 0.2;
  auto fn = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{gelu(linear(in[0], w)) + in[0]}; };
  const std::vector<Tensor> inputs{random({4, 24}, 2)};
  for (bool frozen : {false, true}) {
    graph::Graph g = graph::trace(fn, inputs);
    graph::PassOptions o;
    o.prepack_weights = frozen;
    int64_t fused = -1;
    for (const graph::PassReport& r : graph::optimize(g, o))
      if (r.pass == "linear_epilogue_fusion") fused = r.changed;
    EXPECT_EQ(fused, frozen ? 2 : -1) << "frozen " << frozen;
    EXPECT_EQ(g.node_count("linear_prepacked"), frozen ? 1 : 0);
    // Without frozen weights the activation and add are one fused elementwise loop.
    EXPECT_EQ(g.nodes.size(), frozen ? 1u : 2u) << g.dump();
    graph::Executor exec(std::move(g));
    EXPECT_LE(max_abs_diff(exec.run(inputs)[0], fn(inputs)[0]), 2e-5);
  }
}

TEST(LinearEpilogueFusion, PrimitiveErrors) {
  graph::PrepackedLinearPrim::Options none;
  EXPECT_ERROR(graph::PrepackedLinearPrim(4, 4, none), "[linear_prepacked] needs a packed weight layout");
  SKIP_WITHOUT_PACKED_WEIGHTS();
  graph::PrepackedLinearPrim::Options o;
  o.layout = cpu::frozen_weight_layout();
  o.residual = true;
  graph::PrepackedLinearPrim prim(8, 4, o);
  Tensor x = random({3, 8}, 1), packed = Tensor::empty({cpu::packed_weight_floats(o.layout, 8, 4)});
  EXPECT_ERROR(prim.output_specs({x, packed}), "[linear_prepacked] expects 3 inputs, got 2");
  EXPECT_ERROR(prim.output_specs({x, packed, random({3, 5}, 2)}),
               "[linear_prepacked] residual of shape [3, 5] does not match the output's [3, 4]");
  EXPECT_ERROR(prim.output_specs({x, Tensor::empty({7}), random({3, 4}, 2)}),
               "[linear_prepacked] packed weight of shape [7] is not the");
}
