// Memory planning: where each intermediate value of a graph lives.
//
// Every value a node writes (not a view, not observed by the caller) gets a
// byte offset in one arena that the executor allocates once and reuses on
// every run. Two values share bytes only if their lifetimes do not overlap;
// a value's lifetime runs from its producing node to the last node that reads
// it or any view of it. Placement is greedy by size (largest first, lowest
// offset that fits), the standard heuristic for static buffer assignment.
//
// In-place: an elementwise node whose input dies at that node (and is a
// planned buffer of the same shape and dtype, with no other alias read by the
// node) writes its output over that input, so chains such as the backward of
// an activation reuse one buffer.
//
// Values the caller receives as outputs, and the buffers their views point
// into, are not planned: they are allocated fresh on each run, because the
// caller may keep them. Gradients are planned (they are produced in the
// backward pass, when the forward's activations have died, so they cost the
// arena little) and *lent*: the caller's .grad points into the arena, and the
// executor switches to a fresh arena for a run that starts while one is held.
//
// Mutations (in-place updates of captures, e.g. an optimizer step): the new
// value is computed straight into the capture's own bytes when no node after
// its producer reads the old contents and the producer may overwrite that
// input (an elementwise kernel, or an optimizer update writing parameter and
// moments element by element); otherwise it is a fresh buffer that the
// executor copies into the capture after the run.
#pragma once

#include <cstdint>
#include <vector>

#include "ember/graph/ir.h"

namespace ember::graph {

struct MemoryPlan {
  std::vector<int64_t> offset;      // per value: byte offset in the arena, or -1 (not planned)
  std::vector<int32_t> last_use;    // per value: the last node reading it or an alias of it (-1: none)
  std::vector<ValueId> reuses;      // per value: the input whose buffer it overwrites in place, or -1
  int64_t arena_bytes = 0;          // the plan's peak: bytes of the arena
  int64_t unplanned_peak_bytes = 0; // peak of the same intermediates with no reuse (each alive until freed)
  int64_t total_bytes = 0;          // sum of all planned intermediates' sizes
  int64_t in_place = 0;             // nodes that write over an input
  std::vector<ValueId> lent;        // planned buffers handed to the caller as gradients
  std::vector<ValueId> in_capture;  // per value: the capture whose bytes it is computed in, or -1
  int64_t mutations_in_place = 0;   // mutations computed in their capture's bytes
};

// Alignment of every planned buffer, bytes.
constexpr int64_t kPlanAlignment = 64;

MemoryPlan plan_memory(const Graph& g);

// True for primitives whose CPU kernel may write its output over an input of
// the same shape (an elementwise loop reading element i before writing it, or
// a row-wise kernel reading a row before writing it).
bool may_write_in_place(const Primitive& prim);

// The input slot whose bytes output `output` of `prim` may overwrite for a
// mutation: kAnySameShape for the single-output kernels above, a fixed slot
// for the optimizer updates (adamw_update: parameter, exp_avg, exp_avg_sq are
// inputs 0, 2, 3 and outputs 0, 1, 2), or -1.
constexpr int kAnySameShape = -2;
int in_place_slot(const Primitive& prim, int output);

}  // namespace ember::graph
