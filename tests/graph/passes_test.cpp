// Each graph pass on a small graph: the graph before and after (node counts or
// the dump), and the executor's results equal eager execution's.
#include <gtest/gtest.h>

#include "ember/graph/compile.h"
#include "ember/graph/fused_elementwise.h"
#include "graph/graph_test_util.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;


TEST(GraphPasses, DeadCodeElimination) {
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor unused = exp(in[0]) * 3.0;
    (void)unused;
    return std::vector<Tensor>{neg(in[0])};
  };
  graph::Graph before = graph::trace(fn, {random({5}, 1)});
  EXPECT_EQ(before.nodes.size(), 3u);
  graph::Graph after = check_pass(fn, {random({5}, 1)}, [](graph::Graph& g) { EXPECT_EQ(graph::eliminate_dead_code(g), 2); });
  EXPECT_EQ(after.dump(), "graph(%0: float32[5]) {\n  %1 = neg(%0) : float32[5]\n  return (%1)\n}\n");
}

TEST(GraphPasses, CommonSubexpressionElimination) {
  auto fn = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{exp(in[0]) + exp(in[0]), sum(in[0], {1}) * sum(in[0], {1})};
  };
  graph::Graph g = check_pass(fn, {random({2, 3}, 2)}, [](graph::Graph& g) {
    EXPECT_EQ(graph::eliminate_common_subexpressions(g), 2);
  });
  EXPECT_EQ(g.node_count("exp"), 1);
  EXPECT_EQ(g.node_count("sum"), 1);
  // Different attributes are different computations.
  graph::Graph h = graph::trace(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(in[0], {0}), sum(in[0], {1})}; },
      {random({3, 3}, 3)});
  EXPECT_EQ(graph::eliminate_common_subexpressions(h), 0);
}

TEST(GraphPasses, ConstantFolding) {
  auto fn = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] + full({4}, 2.0) * 3.0}; };
  graph::Graph g = check_pass(fn, {random({4}, 4)}, [](graph::Graph& g) {
    EXPECT_EQ(graph::fold_constants(g), 1);  // full(2) * 3 (full made a constant directly)
  });
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_STREQ(g.nodes[0].prim->name(), "add");
  const graph::Capture* c = g.capture_of(g.nodes[0].inputs[1]);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->constant);
  expect_equal(c->tensor, full({4}, 6.0));
  // A parameter (the caller holds it) is never folded.
  Tensor w = full({4}, 2.0);
  graph::Graph p = graph::trace([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] + w * 3.0}; },
                                {random({4}, 5)});
  EXPECT_EQ(graph::fold_constants(p), 0);
}

TEST(GraphPasses, AlgebraicSimplification) {
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor a = (x * 1.0 + 0.0) / 1.0 - 0.0;
    Tensor b = permute(permute(x, {1, 0}), {1, 0});
    Tensor c = reshape(reshape(x, {6}), {3, 2});
    Tensor d = neg(neg(x));
    Tensor e = permute(permute(reshape(x, {1, 2, 3}), {0, 2, 1}), {2, 1, 0});
    return std::vector<Tensor>{a, b, c, d, e};
  };
  graph::Graph g = check_pass(fn, {random({2, 3}, 6)}, [](graph::Graph& g) { EXPECT_GT(graph::simplify_algebra(g), 0); });
  EXPECT_EQ(g.outputs[0], g.inputs[0]);
  EXPECT_EQ(g.outputs[1], g.inputs[0]);
  EXPECT_EQ(g.outputs[3], g.inputs[0]);
  EXPECT_EQ(g.node_count("mul") + g.node_count("add") + g.node_count("neg"), 0);
  EXPECT_EQ(g.node_count("permute"), 1);  // two permutes composed into one
  EXPECT_EQ(g.node_count("reshape"), 2);  // c's reshape reads x directly; e's reshape
}

TEST(GraphPasses, ElementwiseFusion) {
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor t = in[0] * in[1] + 1.0;
    return std::vector<Tensor>{sigmoid(t) * in[0], sum(t)};
  };
  std::vector<Tensor> ins = {random({3, 700}, 7), random({3, 700}, 8)};
  graph::Graph g = check_pass(fn, ins, [](graph::Graph& g) { EXPECT_EQ(graph::fuse_elementwise(g), 1); }, 1e-6);
  ASSERT_EQ(g.node_count("fused_elementwise"), 1);
  EXPECT_EQ(g.node_count("mul") + g.node_count("add") + g.node_count("sigmoid"), 0);
  // t leaves the loop too, for the sum.
  for (const graph::Node& n : g.nodes)
    if (std::string(n.prim->name()) == "fused_elementwise") {
      EXPECT_EQ(n.outputs.size(), 2u);
      EXPECT_EQ(n.prim->str(),
                "fused_elementwise(outputs=[4, 6], program=r3=mul(r0,r1); r4=add(r3,r2); r5=sigmoid(r4); "
                "r6=mul(r5,r0), shape=[3, 700])");
    }
}

TEST(GraphPasses, FusionKeepsReadersBetweenMembersCorrect) {
  // a feeds a matmul that runs between a and b: fusing a with b would run the
  // matmul before its input exists, so the pass must leave them apart.
  Tensor w = random({4, 4}, 9);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor a = in[0] * 2.0;
    Tensor m = matmul(a, w);
    Tensor b = exp(a);
    return std::vector<Tensor>{b, m};
  };
  graph::Graph g = check_pass(fn, {random({4, 4}, 10)}, [](graph::Graph& g) { EXPECT_EQ(graph::fuse_elementwise(g), 0); });
  EXPECT_EQ(g.node_count("fused_elementwise"), 0);
}

TEST(GraphPasses, FusedKernelHandlesScalarsBroadcastAndStrides) {
  // A transposed (non-contiguous) input and a one-element input.
  Tensor x = random({64, 33}, 11);
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor xt = permute(in[0], {1, 0});
    return std::vector<Tensor>{tanh(xt * in[1] - xt)};
  };
  graph::Graph g = check_pass(fn, {x, full({1}, 0.5)}, [](graph::Graph& g) { EXPECT_EQ(graph::fuse_elementwise(g), 1); },
                              1e-6);
}

TEST(GraphPasses, AGroupReadsAnEarlierGroupsResult) {
  // exp cannot join {mul, tanh}: the matmul reads a2 before exp runs. So
  // {exp, add} is a second program reading the first one's output, a value
  // the pass itself made (read out of bounds before session 23's fix;
  // AddressSanitizer saw it).
  Tensor w = random({6, 6}, 16);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor a2 = tanh(in[0] * 2.0);
    Tensor m = matmul(a2, w);
    Tensor d = exp(a2) + 1.0;
    return std::vector<Tensor>{d, m};
  };
  graph::Graph g = check_pass(fn, {random({6, 6}, 17)}, [](graph::Graph& g) { EXPECT_EQ(graph::fuse_elementwise(g), 2); },
                              1e-6);
  EXPECT_EQ(g.node_count("fused_elementwise"), 2);
}

TEST(GraphPasses, ALongChainIsFusedInBoundedPrograms) {
  // 70 ops in one chain: programs of at most kMaxFusedOps ops (the CUDA
  // kernel's bound), the chain continuing in the next one.
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor t = in[0];
    for (int i = 0; i < 35; ++i) t = tanh(t * in[1]);
    return std::vector<Tensor>{t};
  };
  int64_t fused = 0;
  graph::Graph g = check_pass(fn, {random({5, 40}, 14), random({5, 40}, 15)},
                              [&](graph::Graph& g) { fused = graph::fuse_elementwise(g); }, 1e-6);
  EXPECT_EQ(fused, 3);  // 32 + 32 + 6 ops
  EXPECT_EQ(g.nodes.size(), 3u);
  for (const graph::Node& n : g.nodes) {
    const auto* f = dynamic_cast<const graph::FusedElementwisePrim*>(n.prim.get());
    ASSERT_NE(f, nullptr);
    EXPECT_LE(int64_t(f->program().size()), graph::kMaxFusedOps);
  }
}

TEST(GraphPasses, PipelineReportsEveryPass) {
  auto fn = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{exp(in[0] * 1.0) * 2.0 + 1.0}; };
  graph::Graph g = graph::trace(fn, {random({8}, 12)});
  std::vector<graph::PassReport> r = graph::optimize(g, {});
  ASSERT_EQ(r.size(), 8u);
  EXPECT_EQ(r[0].pass, "algebraic_simplification");
  EXPECT_EQ(r[0].changed, 1);
  EXPECT_EQ(r[1].pass, "slice_sinking");
  EXPECT_EQ(r[1].changed, 0);
  EXPECT_EQ(r[5].pass, "elementwise_fusion");
  EXPECT_EQ(r[5].changed, 1);
  EXPECT_EQ(g.nodes.size(), 1u);
}

TEST(GraphPasses, GradientOfASplitBecomesConcat) {
  // q, k, v = split(x W): their gradients come back as three slice_backwards
  // summed by autograd; the rewrite makes them one concat.
  Tensor w = random({4, 12}, 13);
  w.requires_grad_();
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor y = matmul(in[0], w);
    Tensor loss = sum(exp(slice(y, 1, 0, 4)) * slice(y, 1, 4, 8) + square(slice(y, 1, 8, 12)));
    loss.backward();
    return std::vector<Tensor>{loss};
  };
  std::vector<Tensor> ins = {random({3, 4}, 14)};
  graph::Graph g = graph::trace(fn, ins);
  EXPECT_EQ(g.node_count("slice_backward"), 3);
  EXPECT_EQ(graph::simplify_algebra(g), 1);
  EXPECT_EQ(g.node_count("slice_backward"), 0);
  EXPECT_EQ(g.node_count("concat"), 1);
  graph::Executor exec(std::move(g));
  w.set_grad(Tensor());
  exec.run(ins);
  Tensor compiled = w.grad();
  w.set_grad(Tensor());
  fn(ins);
  expect_equal(compiled, w.grad());
}

TEST(GraphPasses, RematerializationRecomputesLateReads) {
  // gelu(h) is read at once and again after a long stretch of other work, while
  // h itself stays alive until the end: the late read gets a fresh gelu.
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor h = in[0] * 2.0;
    Tensor a = gelu(h, true);
    Tensor x = a + 1.0;
    for (int k = 0; k < 20; ++k) x = sin(x);
    Tensor m = sum(matmul(reshape(x, {16, 16}), reshape(x, {16, 16})));  // the peak: a is dead here
    return std::vector<Tensor>{x * a + h + m};
  };
  std::vector<Tensor> ins = {random({256}, 15)};
  graph::Graph g = check_pass(fn, ins, [](graph::Graph& g) { EXPECT_EQ(graph::rematerialize(g, 16), 1); }, 1e-6);
  EXPECT_EQ(g.node_count("gelu_tanh"), 2);
  graph::Graph before = graph::trace(fn, ins);
  EXPECT_LT(graph::plan_memory(g).arena_bytes, graph::plan_memory(before).arena_bytes);
}

TEST(GraphPasses, RematerializationRecomputesANormReadLateThroughAView) {
  // A layer norm (three outputs: y, mean, rstd) whose output is read at once
  // and again, reshaped, after a long stretch: the view is re-pointed at a
  // recomputed norm. Its input x stays alive (read at the end).
  Tensor w = random({16}, 16), b = random({16}, 17);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor x = in[0] * 2.0;
    Tensor y = layer_norm(x, w, b, 1e-5);
    Tensor z = y + 1.0;
    for (int k = 0; k < 20; ++k) z = sin(z);
    Tensor late = sum(reshape(y, {16, 16}) * reshape(z, {16, 16}));
    Tensor end = sum(x);
    return std::vector<Tensor>{late + end};
  };
  std::vector<Tensor> ins = {random({16, 16}, 18)};
  graph::Graph g = check_pass(fn, ins, [](graph::Graph& g) { EXPECT_EQ(graph::rematerialize(g, 16), 1); }, 1e-6);
  EXPECT_EQ(g.node_count("layer_norm"), 2);
}

