// Tracing and the IR (ember/graph/tracer, ir): what a trace records, captures
// by reference, constants, the text dump and hash, verification, and the
// errors for code that cannot be traced.
#include <gtest/gtest.h>

#include "ember/graph/compile.h"
#include "ember/graph/saved_graph.h"
#include "ember/nn/copy.h"
#include "ember/optim/optim.h"
#include "graph/graph_test_util.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;

TEST(GraphTrace, RecordsPrimitivesAndCapturesByReference) {
  Tensor w = random({3, 4}, 1);
  graph::Graph g = graph::trace(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{exp(matmul(in[0], w)) * 2.0}; },
      {random({2, 3}, 2)}, [&](const Tensor& t) { return t.same(w) ? "w" : ""; });
  ASSERT_EQ(g.inputs.size(), 1u);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.node_count("matmul"), 1);
  EXPECT_EQ(g.node_count("exp"), 1);
  EXPECT_EQ(g.node_count("mul"), 1);
  ASSERT_EQ(g.captures.size(), 2u);
  EXPECT_EQ(g.captures[0].name, "w");
  EXPECT_FALSE(g.captures[0].constant);  // the caller still holds w
  EXPECT_TRUE(g.captures[1].constant);   // the scalar 2.0 exists only in the graph
  EXPECT_EQ(g.dump(),
            "graph(%0: float32[2, 3]) {\n"
            "  %1 = capture \"w\" : float32[3, 4]\n"
            "  %4 = constant \"c1\" [2] : float32[]\n"
            "  %2 = matmul(%0, %1) : float32[2, 4]\n"
            "  %3 = exp(%2) : float32[2, 4]\n"
            "  %5 = mul(%3, %4) : float32[2, 4]\n"
            "  return (%5)\n"
            "}\n");
  g.verify();
}

TEST(GraphTrace, HashIsStableAndSeesConstants) {
  auto make = [](double c) {
    return graph::trace([c](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] * c}; },
                        {random({4}, 3)});
  };
  EXPECT_EQ(make(2.0).hash(), make(2.0).hash());
  EXPECT_NE(make(2.0).hash(), make(3.0).hash());
}

TEST(GraphTrace, ReadingValuesNamesTheOp) {
  EXPECT_ERROR(graph::trace(
                   [](const std::vector<Tensor>& in) {
                     Tensor s = sum(in[0]);
                     if (s.item<double>() > 0) return std::vector<Tensor>{in[0]};
                     return std::vector<Tensor>{neg(in[0])};
                   },
                   {random({4}, 4)}),
               "[compile] the traced function reads the values of the output of sum");
}

TEST(GraphTrace, RandomNumbersAreRefused) {
  EXPECT_ERROR(graph::trace([](const std::vector<Tensor>& in) { return std::vector<Tensor>{dropout(in[0], 0.5)}; },
                            {random({4}, 5)}),
               "[bernoulli]");
}

// An in-place update (apply_into) is recorded as a functional node plus a
// mutation of the captured tensor; later reads in the trace see the update.
TEST(GraphTrace, InPlaceUpdatesBecomeMutations) {
  Tensor c = tensor({1, 2, 3, 4}, {4});
  auto fn = [&](const std::vector<Tensor>& in) {
    nn::copy_(c, c + in[0]);
    return std::vector<Tensor>{c * 2.0};
  };
  graph::Graph g = graph::trace(fn, {random({4}, 6)}, [&](const Tensor& t) { return t.same(c) ? "c" : ""; });
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));  // tracing changed nothing
  ASSERT_EQ(g.mutations.size(), 1u);
  EXPECT_EQ(g.capture_of(g.mutations[0].capture)->name, "c");
  EXPECT_FALSE(g.capture_of(g.mutations[0].capture)->constant);
  EXPECT_EQ(g.node_count("copy_"), 1);
  EXPECT_NE(g.dump().find(" mutates (%"), std::string::npos);
  // The multiply reads the updated value, not the capture.
  const graph::Node& mul_node = g.nodes.back();
  EXPECT_EQ(mul_node.inputs[0], g.mutations[0].value);

  // A training graph is not a deployment graph.
  EXPECT_ERROR(graph::save_graph(g, ::testing::TempDir() + "/mutating.emb", {}),
               "[save] a graph that updates tensors in place (an optimizer step) cannot be saved for deployment");

  graph::Executor exec(std::move(g));
  Tensor x = tensor({10, 10, 10, 10}, {4});
  EXPECT_EQ(exec.run({x})[0].to_vector<float>(), (std::vector<float>{22, 24, 26, 28}));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{11, 12, 13, 14}));
  EXPECT_EQ(exec.run({x})[0].to_vector<float>(), (std::vector<float>{42, 44, 46, 48}));  // each run updates again
  EXPECT_EQ(exec.plan().mutations_in_place, 1);
}

TEST(GraphTrace, InPlaceUpdatesThroughViewsOrOfViewedTensorsAreRefused) {
  Tensor c = zeros({2, 4});
  EXPECT_ERROR(graph::trace(
                   [&](const std::vector<Tensor>& in) {
                     nn::copy_(select(c, 0, 1), in[0]);
                     return std::vector<Tensor>{in[0]};
                   },
                   {random({4}, 7)}),
               "[compile] copy_ updates a view");
  // A view taken before the update would show the old contents in the graph.
  EXPECT_ERROR(graph::trace(
                   [&](const std::vector<Tensor>& in) {
                     Tensor row = select(c, 0, 1);
                     nn::copy_(c, zeros({2, 4}));
                     return std::vector<Tensor>{row + in[0]};
                   },
                   {random({4}, 7)}),
               "[compile] add reads a view of a tensor that was updated in place");
  EXPECT_EQ(c.to_vector<float>(), std::vector<float>(8, 0.0f));
}

TEST(GraphTrace, VerifyRejectsUseBeforeDefinition) {
  graph::Graph g = graph::trace([](const std::vector<Tensor>& in) { return std::vector<Tensor>{exp(neg(in[0]))}; },
                                {random({4}, 8)});
  std::swap(g.nodes[0], g.nodes[1]);
  EXPECT_ERROR(g.verify(), "[graph] node 0 (exp) reads %1 before it is defined");
}

TEST(GraphTrace, BackwardInsideTheTraceBecomesGradBindings) {
  Tensor w = random({3}, 9);
  w.requires_grad_();
  Tensor before = full({3}, 5.0);
  w.set_grad(before);
  graph::Graph g = graph::trace(
      [&](const std::vector<Tensor>& in) {
        Tensor loss = sum(in[0] * w * w);
        loss.backward();
        return std::vector<Tensor>{loss};
      },
      {random({3}, 10)});
  ASSERT_EQ(g.grads.size(), 1u);
  EXPECT_TRUE(g.grads[0].leaf.same(w));
  EXPECT_TRUE(w.grad().same(before));  // the trace left .grad as it was
}

TEST(Compile, FallsBackToEagerOnlyWhenAllowed) {
  auto fn = [](const std::vector<Tensor>& in) {
    if (sum(in[0]).item<double>() > 0) return std::vector<Tensor>{in[0] * 2.0};
    return std::vector<Tensor>{in[0]};
  };
  Tensor x = full({3}, 1.0);
  EXPECT_ERROR(compile(fn)({x}), "[compile] the traced function reads the values");
  CompileOptions o;
  o.fullgraph = false;
  CompiledFunction f = compile(fn, o);
  expect_equal(f({x})[0], full({3}, 2.0));
  EXPECT_EQ(f.stats().eager_runs, 1);
  EXPECT_EQ(f.last_graph(), nullptr);
}
