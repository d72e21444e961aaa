// Memory planning (ember/graph/memory_plan) and the executor's arena: buffer
// reuse across disjoint lifetimes, in-place elementwise updates, outputs that
// the caller keeps, and repeated runs.
#include <gtest/gtest.h>

#include "ember/graph/compile.h"
#include "ember/nn/copy.h"
#include "graph/graph_test_util.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;

TEST(MemoryPlan, DisjointLifetimesShareBytes) {
  Tensor w1 = random({16, 256}, 1), w2 = random({16, 256}, 2);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor r1 = sum(matmul(in[0], w1));
    Tensor r2 = sum(matmul(in[0], w2));
    return std::vector<Tensor>{r1 + r2};
  };
  graph::Graph g = graph::trace(fn, {random({8, 16}, 3)});
  graph::MemoryPlan p = graph::plan_memory(g);
  const int64_t big = 8 * 256 * 4;
  EXPECT_EQ(p.total_bytes, 2 * big + 2 * graph::kPlanAlignment);  // two products, two sums
  EXPECT_LT(p.arena_bytes, 2 * big);                              // the products reuse one buffer
  EXPECT_GE(p.arena_bytes, big);
}

TEST(MemoryPlan, ElementwiseChainsWriteInPlace) {
  auto fn = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(exp(neg(sin(in[0]))))}; };
  graph::Graph g = graph::trace(fn, {random({1000}, 4)});
  graph::MemoryPlan p = graph::plan_memory(g);
  EXPECT_EQ(p.in_place, 2);  // neg over sin's output, exp over neg's
  EXPECT_EQ(p.arena_bytes, 4000 + 32);  // one 4000-byte buffer (aligned to 4032)
  graph::Executor exec(std::move(g));
  Tensor x = random({1000}, 4);
  EXPECT_LE(max_abs_diff(exec.run({x})[0], fn({x})[0]), 1e-3);
}

TEST(MemoryPlan, OutputsAreFreshAndRunsRepeat) {
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor t = exp(in[0]);
    return std::vector<Tensor>{permute(t * 2.0, {1, 0}), sum(t)};
  };
  Tensor a = random({3, 5}, 5), b = random({3, 5}, 6);
  graph::Executor exec(graph::trace(fn, {a}));
  std::vector<Tensor> first = exec.run({a});
  Tensor kept = contiguous(first[0]).detach();
  Tensor kept_copy = clone(kept);
  std::vector<Tensor> second = exec.run({b});
  expect_equal(first[0], kept_copy);  // the second run did not overwrite the first's output
  expect_equal(second[0], fn({b})[0]);
  expect_equal(second[1], fn({b})[1]);
  EXPECT_ERROR(exec.run({random({5, 3}, 7)}), "[compiled function] input 0 must be float32 [3, 5], got float32 [5, 3]");
}

TEST(MemoryPlan, CrossEntropyGradientOverwritesTheLogits) {
  Tensor w = random({8, 32}, 8);
  w.requires_grad_();
  Tensor targets = tensor_i64({1, 5, 7, 31, 0, 2}, {6});
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor loss = cross_entropy(matmul(in[0], w), targets);
    loss.backward();
    return std::vector<Tensor>{loss};
  };
  std::vector<Tensor> ins = {random({6, 8}, 9)};
  graph::Graph g = graph::trace(fn, ins);
  graph::MemoryPlan p = graph::plan_memory(g);
  graph::ValueId dlogits = -1, logits = -1;
  for (const graph::Node& n : g.nodes) {
    if (std::string(n.prim->name()) == "cross_entropy_backward") dlogits = n.outputs[0], logits = n.inputs[0];
  }
  ASSERT_GE(dlogits, 0);
  EXPECT_EQ(p.reuses[size_t(dlogits)], logits);
  EXPECT_EQ(p.offset[size_t(dlogits)], p.offset[size_t(logits)]);
  graph::Executor exec(std::move(g));
  exec.run(ins);
  Tensor compiled = w.grad();
  w.set_grad(Tensor());
  fn(ins);
  EXPECT_LE(max_abs_diff(compiled, w.grad()), 1e-7);
}

TEST(MemoryPlan, GradientsAreLentAndNeverOverwrittenWhileHeld) {
  Tensor w = random({16, 16}, 10);
  w.requires_grad_();
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor loss = sum(exp(matmul(in[0], w)));
    loss.backward();
    return std::vector<Tensor>{loss};
  };
  Tensor a = random({4, 16}, 11), b = random({4, 16}, 12);
  graph::Executor exec(graph::trace(fn, {a}));
  ASSERT_EQ(exec.plan().lent.size(), 1u);
  exec.run({a});
  Tensor held = w.grad();  // the caller keeps the first gradient...
  Tensor held_copy = clone(held);
  w.set_grad(Tensor());
  exec.run({b});           // ...so this run must not write over it
  EXPECT_EQ(exec.fresh_arenas(), 1);
  expect_equal(held, held_copy);
  held = Tensor(), held_copy = Tensor();
  w.set_grad(Tensor());
  exec.run({a});           // nothing held: the arena is reused
  EXPECT_EQ(exec.fresh_arenas(), 1);
  Tensor compiled = clone(w.grad());
  w.set_grad(Tensor());
  fn({a});
  expect_equal(compiled, w.grad());
}

// A mutation is computed in its capture's bytes only when no later node reads
// the old contents; here the schedule is changed so that one does, and the
// executor must compute the update aside and copy it in after the run.
TEST(MemoryPlan, MutationWithALaterReaderOfTheOldValueIsCopiedAfterTheRun) {
  Tensor c = tensor({1, 2, 3}, {3});
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor old = exp(c);
    nn::copy_(c, in[0] + in[0]);
    return std::vector<Tensor>{old};
  };
  graph::Graph g = graph::trace(fn, {random({3}, 5)});
  ASSERT_EQ(g.nodes.size(), 3u);  // exp, add, copy_
  EXPECT_EQ(graph::plan_memory(g).mutations_in_place, 1);
  g.reorder({1, 2, 0});  // add, copy_, then exp reads c
  graph::MemoryPlan p = graph::plan_memory(g);
  EXPECT_EQ(p.mutations_in_place, 0);
  graph::Executor exec(std::move(g));
  Tensor x = tensor({5, 6, 7}, {3});
  Tensor got = exec.run({x})[0];
  EXPECT_LE(max_abs_diff(got, exp(tensor({1, 2, 3}, {3}))), 1e-5);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{10, 12, 14}));
}
