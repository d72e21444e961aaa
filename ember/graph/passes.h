// Graph passes: each rewrites a Graph in place, keeps what it computes
// unchanged (to float32 rounding, for fusion), and returns how many nodes it
// removed or rewrote. One pass per file under ember/graph/passes/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/graph/ir.h"

namespace ember::graph {

// Removes nodes none of whose outputs reach a graph output or gradient.
int64_t eliminate_dead_code(Graph& g);

// Merges nodes that apply an equivalent primitive (same name and attributes)
// to the same inputs; later copies read the first one's outputs.
int64_t eliminate_common_subexpressions(Graph& g);

// Evaluates nodes whose inputs are all constants (and whose outputs are at most
// `max_bytes`) once, at compile time; their outputs become constants.
int64_t fold_constants(Graph& g, int64_t max_bytes = int64_t(16) << 20);

// Local rewrites that remove work: x*1, 1*x, x/1, x+0, 0+x, x-0 (when the result
// has x's shape and dtype), neg(neg(x)), a permute of a permute, a reshape of a
// reshape, reshape/broadcast_to/permute to the value's own shape or order, and
// a sum of slice_backwards that tile an axis (the gradient of a split) -> concat.
int64_t simplify_algebra(Graph& g);

// Moves a slice before the ops that treat its axis row by row (elementwise,
// linear, norms, embedding, views, causal attention along the queries when the
// last ones are kept), so that they compute only the kept rows: a prefill that
// reads the last position's logits runs the last block's MLP on one row.
// Runs dead-code and common-subexpression elimination between its sweeps.
// Returns how many slices moved (sink_slices.cpp has the rules).
int64_t sink_slices(Graph& g);

// Turns connected float32 unary/binary chains of one shape into
// FusedElementwise nodes (fused_elementwise.h).
int64_t fuse_elementwise(Graph& g);

// Recomputes cheap values (elementwise ops, norms) just before readers more
// than `min_distance` nodes after their definition, when the value's inputs are
// alive there anyway, so the value need not stay alive in between (training
// graphs: forward values read again by the backward pass).
int64_t rematerialize(Graph& g, int64_t min_distance = 16);

class PackedWeightCache;  // prepacked_linear.h

// Inference graphs with frozen weights: each `linear` whose weight is a
// captured float32 CPU matrix reads that weight packed once for the GEMM
// (prepacked_linear.h) instead of packing it on every call. The packed copy
// holds the weight's values when it is made: later updates to the weight are
// not seen. With `cache`, graphs share packed weights (each weight is packed
// at its first use only); without, this graph packs its own. Skips graphs that
// bind gradients or update captures.
int64_t prepack_linear_weights(Graph& g, PackedWeightCache* cache = nullptr);

// Graphs with frozen weights: a linear_prepacked whose output only an
// activation (gelu, gelu_tanh, relu, silu, ...) or an add of a same-shape
// float32 value reads takes that op into its GEMM's writing of the output
// (act(x Wᵀ + b) + r at most). Returns how many ops were taken in.
int64_t fuse_linear_epilogues(Graph& g);

struct PassOptions {
  bool dead_code = true;
  bool cse = true;
  bool constant_folding = true;
  bool algebra = true;
  bool slices = true;
  bool fusion = true;
  bool remat = true;
  // Off by default: freezes the weights (see prepack_linear_weights).
  bool prepack_weights = false;
  // Where packed weights are kept, shared by every graph optimised with these
  // options (ember::compile makes one per compiled function); may be null.
  std::shared_ptr<PackedWeightCache> packed_weights;
};

struct PassReport {
  std::string pass;
  int64_t changed = 0;
  int64_t nodes_after = 0;
};

// Runs the enabled passes in order: simplify, slice sinking, fold, CSE, dead code, and (unless
// `keep_differentiable`) weight prepacking, linear epilogue fusion (with prepacking and
// fusion on) and elementwise fusion, whose nodes have no vjp, then rematerialisation; dead
// code again last.
std::vector<PassReport> optimize(Graph& g, const PassOptions& options, bool keep_differentiable = false);

}  // namespace ember::graph
