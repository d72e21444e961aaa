// Slice sinking (ember/graph/passes/sink_slices.cpp): which slices move, which
// stay, and that the executor's results equal eager execution's; on the GPT
// model, the last-position prefill runs the last block's MLP on one row.
#include <gtest/gtest.h>

#include "ember/graph/compile.h"
#include "ember/models/gpt.h"
#include "ember/nn/parameter_namer.h"
#include "graph/graph_test_util.h"
#include "models/gpt_test_configs.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;

namespace {

// Traces fn, sinks its slices (`moved`: how many moved), and checks the
// executor against eager execution within `tol`.
graph::Graph sunk(const TensorFn& fn, const std::vector<Tensor>& inputs, int64_t& moved, double tol = 1e-6) {
  return check_pass(fn, inputs, [&](graph::Graph& g) { moved = graph::sink_slices(g); }, tol);
}

// The output shape of the only node named `name`.
Shape shape_of_only(const graph::Graph& g, const char* name) {
  EXPECT_EQ(g.node_count(name), 1) << name;
  for (const graph::Node& n : g.nodes)
    if (std::string(n.prim->name()) == name) return g.spec(n.outputs[0]).shape;
  return {};
}

}  // namespace

TEST(SliceSinking, RowWiseChainComputesOnlyTheKeptRows) {
  // [B, T, C] through a norm, a linear layer, an activation and a residual
  // add, then the last two positions: every op moves behind the slice.
  Tensor w = random({5, 4}, 2), b = random({5}, 3), scale = random({5}, 4);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor h = gelu(linear(layer_norm(in[0]), w, b), /*tanh_approximation=*/true);
    Tensor out = h * scale + in[1];  // scale [5] broadcasts; in[1] [2, 6, 5] is read row by row
    return std::vector<Tensor>{slice(out, 1, 4, 6)};
  };
  int64_t moved = 0;
  graph::Graph g = sunk(fn, {random({2, 6, 4}, 1), random({2, 6, 5}, 5)}, moved);
  EXPECT_EQ(moved, 5);  // add, mul, gelu, linear, layer_norm
  EXPECT_EQ(shape_of_only(g, "linear"), Shape({2, 2, 5}));
  EXPECT_EQ(shape_of_only(g, "layer_norm"), Shape({2, 2, 4}));
  EXPECT_EQ(shape_of_only(g, "gelu_tanh"), Shape({2, 2, 5}));
  EXPECT_EQ(g.node_count("slice"), 2);  // the two graph inputs, sliced
}

TEST(SliceSinking, StopsWhereTheWholeValueIsNeeded) {
  Tensor w = random({3, 4}, 2);
  int64_t moved = 0;
  // The full result is also returned: nothing to save.
  graph::Graph g = sunk(
      [&](const std::vector<Tensor>& in) {
        Tensor y = linear(in[0], w);
        return std::vector<Tensor>{y, slice(y, 0, 1, 2)};
      },
      {random({4, 4}, 1)}, moved);
  EXPECT_EQ(moved, 0);
  // A slice along the features of a linear layer: every output column reads every input column.
  g = sunk([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{slice(linear(in[0], w), 1, 0, 2)}; },
           {random({4, 4}, 1)}, moved);
  EXPECT_EQ(moved, 0);
  // A reshape that merges the sliced axis with the one before it.
  g = sunk([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{slice(reshape(exp(in[0]), {8, 3}), 0, 6, 8)}; },
           {random({2, 4, 3}, 1)}, moved);
  EXPECT_EQ(moved, 0);
  // A value read twice, by two different slices.
  g = sunk(
      [&](const std::vector<Tensor>& in) {
        Tensor y = exp(in[0]);
        return std::vector<Tensor>{slice(y, 0, 0, 1), slice(y, 0, 2, 3)};
      },
      {random({4, 4}, 1)}, moved);
  EXPECT_EQ(moved, 0);
}

TEST(SliceSinking, TwoReadersThatSliceAlikeAreMergedAndMoveOn) {
  // A residual stream read by a norm and by the add after it: both paths end
  // in the same slice, which then moves before the stream's producer.
  Tensor w = random({4, 4}, 2);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor x = exp(in[0]);
    Tensor out = x + linear(layer_norm(x), w);
    return std::vector<Tensor>{slice(out, 1, 2, 3)};
  };
  int64_t moved = 0;
  graph::Graph g = sunk(fn, {random({1, 3, 4}, 1)}, moved);
  EXPECT_EQ(shape_of_only(g, "exp"), Shape({1, 1, 4}));
  EXPECT_EQ(shape_of_only(g, "linear"), Shape({1, 1, 4}));
  EXPECT_EQ(g.node_count("slice"), 1);
}

TEST(SliceSinking, CausalAttentionKeepsTheLastQueriesOnly) {
  Tensor q = random({1, 2, 5, 4}, 1), k = random({1, 2, 5, 4}, 2), v = random({1, 2, 5, 4}, 3);
  int64_t moved = 0;
  auto last = [](bool causal, int64_t start, int64_t stop) {
    return [=](const std::vector<Tensor>& in) {
      Tensor y = scaled_dot_product_attention(exp(in[0]), in[1], in[2], causal);
      return std::vector<Tensor>{slice(y, 2, start, stop)};
    };
  };
  graph::Graph g = sunk(last(true, 3, 5), {q, k, v}, moved);
  EXPECT_EQ(moved, 2);  // the attention, then the exp of its queries
  EXPECT_EQ(shape_of_only(g, "scaled_dot_product_attention"), Shape({1, 2, 2, 4}));
  // Causal queries in the middle would see fewer keys than they should: not moved.
  g = sunk(last(true, 1, 3), {q, k, v}, moved);
  EXPECT_EQ(moved, 0);
  // Without the mask any queries can be kept.
  g = sunk(last(false, 1, 3), {q, k, v}, moved);
  EXPECT_EQ(moved, 2);
  // Along the head axis: not the queries' rows.
  g = sunk(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{slice(scaled_dot_product_attention(in[0], in[1], in[2]), 1, 0, 1)};
      },
      {q, k, v}, moved);
  EXPECT_EQ(moved, 0);
}

TEST(SliceSinking, EmbeddingPermuteAndReshapeCarryTheAxis) {
  Tensor table = random({10, 6}, 1);
  Generator gen(2);
  Tensor ids = randint(0, 10, {2, 5}, Device::cpu(), &gen);
  auto fn = [&](const std::vector<Tensor>& in) {
    Tensor x = reshape(embedding(table, in[0]), {2, 5, 2, 3});  // keeps [2, 5]
    Tensor y = transpose(sigmoid(x), 1, 2);                      // [2, 2, 5, 3]: the positions move to axis 2
    return std::vector<Tensor>{slice(y, 2, 4, 5)};
  };
  int64_t moved = 0;
  graph::Graph g = sunk(fn, {ids}, moved);
  EXPECT_EQ(moved, 4);  // permute, sigmoid, reshape, embedding
  EXPECT_EQ(shape_of_only(g, "embedding"), Shape({2, 1, 6}));
}

TEST(SliceSinking, PermuteMapsTheAxisThroughItsDims) {
  // A 3-cycle, so that the permutation and its inverse differ: output axis a
  // is input axis dims[a].
  for (int64_t axis = 0; axis < 3; ++axis) {
    auto fn = [axis](const std::vector<Tensor>& in) {
      Tensor y = permute(exp(in[0]), {2, 0, 1});  // [2, 3, 4] -> [4, 2, 3]
      return std::vector<Tensor>{slice(y, axis, 1, 2)};
    };
    int64_t moved = 0;
    graph::Graph g = sunk(fn, {random({2, 3, 4}, 7)}, moved);
    EXPECT_EQ(moved, 2) << "axis " << axis;  // permute, exp
    Shape want = {2, 3, 4};
    want[size_t(std::vector<int64_t>{2, 0, 1}[size_t(axis)])] = 1;
    EXPECT_EQ(shape_of_only(g, "exp"), want) << "axis " << axis;
  }
}

TEST(SliceSinking, ASliceOfASliceMovedInTheSameSweep) {
  // The inner slice moves first; the outer one then reads a value made in that
  // sweep and moves in the next (a case that once read past the sweep's tables).
  auto fn = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{slice(slice(relu(in[0]), 1, 0, 2), 0, 0, 1)};
  };
  int64_t moved = 0;
  graph::Graph g = sunk(fn, {random({4, 6}, 8)}, moved);
  EXPECT_EQ(shape_of_only(g, "relu"), Shape({1, 2}));
}

TEST(SliceSinking, GptPrefillRunsTheLastBlockOnTheLastPosition) {
  // The prefill `ember bench generate --compile` times: the last position's
  // logits. Compiled with the default passes, for both GPT variants (learned
  // positions and layer norm; RoPE, RMS norm, SwiGLU and grouped-query
  // attention, where the slice stops at the rotary embedding of the queries).
  for (const models::GPTConfig& cfg : {models::test_configs::gpt2_style(), models::test_configs::modern()}) {
    Generator gen(1);
    models::GPT model(cfg, &gen);
    model.eval();
    NoGradGuard ng;
    const int64_t T = 12;
    auto prefill = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.last_logits(in[0])}; };
    CompileOptions o;
    o.names = nn::parameter_namer(model);
    CompiledFunction f = compile(prefill, o);
    Generator ids_gen(3);
    Tensor x = randint(0, cfg.vocab_size, {2, T}, Device::cpu(), &ids_gen);
    EXPECT_LE(max_abs_diff(f({x})[0], prefill({x})[0]), 1e-5);
    const graph::Graph& g = *f.last_graph();
    // Linear layers computing one row: the last block's attention output
    // projection, its MLP's two (SwiGLU's gate and value come from one
    // product, sliced along the features, which the row slice passes), and
    // the lm head.
    int64_t one_row = 0, linears = 0;
    for (const graph::Node& n : g.nodes) {
      if (std::string(n.prim->name()) != "linear") continue;
      ++linears;
      one_row += g.spec(n.outputs[0]).shape[1] == 1;
    }
    EXPECT_EQ(one_row, 4) << "of " << linears << " linear nodes";
    bool pass_reported = false;
    for (const graph::PassReport& r : *f.last_report()) pass_reported |= r.pass == "slice_sinking" && r.changed > 0;
    EXPECT_TRUE(pass_reported);
  }
}
