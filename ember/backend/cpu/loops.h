// Strided N-operand loops for CPU kernels, parallelised with OpenMP.
//
// for_each_strided() walks a shape for N operands given their element strides.
// It drops size-1 dimensions and merges dimensions that are contiguous for every
// operand, so a contiguous elementwise op becomes one flat loop, and hands the
// innermost run to the caller's lambda, which can then use a vectorisable loop
// when the inner strides are 1 (or 0 for a broadcast operand).
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "ember/core/shape.h"

namespace ember::cpu {

// Work below this many elements runs on one thread: spawning costs more.
constexpr int64_t kParallelGrain = 32768;

template <size_t N>
struct StridedLayout {
  Shape shape;                          // coalesced, at least one dimension
  std::array<Strides, N> strides;       // per operand, same rank as shape
};

template <size_t N>
StridedLayout<N> coalesce(const Shape& shape, const std::array<Strides, N>& strides) {
  StridedLayout<N> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out.shape.empty();
    for (size_t k = 0; k < N && merge; ++k) merge = out.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      out.shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
    } else {
      out.shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
    }
  }
  if (out.shape.empty()) {
    out.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) out.strides[k].push_back(1);
  }
  return out;
}

// Side of the square tiles used when an operand is strided in the innermost
// dimension but contiguous in another (a transpose): walking 32 x 32 tiles keeps
// both the rows written and the columns read in L1 instead of touching a new
// cache line (and often a new page) for every element read.
constexpr int64_t kTile = 32;

// The dimension to tile together with the innermost one, or -1 for none.
template <size_t N>
int tile_dim(const StridedLayout<N>& L) {
  size_t nd = L.shape.size();
  if (nd < 2 || L.shape[nd - 1] < kTile) return -1;
  for (size_t k = 0; k < N; ++k) {
    int64_t s = L.strides[k][nd - 1];
    if (s == 0 || s == 1 || s == -1) continue;
    for (size_t d = 0; d + 1 < nd; ++d)
      if (L.strides[k][d] == 1 && L.shape[d] >= kTile) return int(d);
  }
  return -1;
}

// Runs body(w) for w in [0, work), on all threads when `parallel`. The serial
// case skips the OpenMP runtime entirely: small ops are dominated by overhead.
template <typename B>
void run_work(int64_t work, bool parallel, B&& body) {
  if (!parallel) {
    for (int64_t w = 0; w < work; ++w) body(w);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t w = 0; w < work; ++w) body(w);
}

// inner(std::array<int64_t, N> offsets, std::array<int64_t, N> inner_strides, int64_t count)
template <size_t N, typename F>
void for_each_strided(const Shape& shape, const std::array<Strides, N>& strides, F&& inner,
                      int64_t grain = kParallelGrain) {
  int64_t total = numel(shape);
  if (total == 0) return;
  StridedLayout<N> L = coalesce<N>(shape, strides);
  size_t nd = L.shape.size();
  int64_t inner_n = L.shape[nd - 1];
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = L.strides[k][nd - 1];
  int threads = omp_get_max_threads();

  int t = tile_dim<N>(L);
  if (t >= 0) {
    int64_t nt = L.shape[size_t(t)];
    int64_t tiles_i = (inner_n + kTile - 1) / kTile, tiles_t = (nt + kTile - 1) / kTile;
    int64_t work = total / (inner_n * nt) * tiles_t * tiles_i;
    run_work(work, total >= grain && work > 1 && threads > 1, [&](int64_t w) {
      int64_t ti = w % tiles_i, rest = w / tiles_i;
      int64_t tt = rest % tiles_t, r = rest / tiles_t;
      std::array<int64_t, N> base{};
      for (size_t d = nd - 1; d-- > 0;) {
        if (int(d) == t) continue;
        int64_t i = r % L.shape[d];
        r /= L.shape[d];
        for (size_t k = 0; k < N; ++k) base[k] += i * L.strides[k][d];
      }
      int64_t i0 = ti * kTile, count = std::min(kTile, inner_n - i0);
      int64_t j0 = tt * kTile, j1 = std::min(nt, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j) {
        std::array<int64_t, N> off;
        for (size_t k = 0; k < N; ++k) off[k] = base[k] + j * L.strides[k][size_t(t)] + i0 * inner_strides[k];
        inner(off, inner_strides, count);
      }
    });
    return;
  }

  int64_t rows = total / inner_n;
  // Split long rows into chunks so that a single huge row still uses all threads.
  int64_t chunk = inner_n;
  if (rows < threads && total >= grain) chunk = std::max<int64_t>(grain / 4, (inner_n + threads - 1) / threads);
  int64_t chunks_per_row = (inner_n + chunk - 1) / chunk;
  int64_t work = rows * chunks_per_row;
  run_work(work, total >= grain && work > 1 && threads > 1, [&](int64_t w) {
    int64_t row = w / chunks_per_row;
    int64_t start = (w % chunks_per_row) * chunk;
    int64_t count = std::min(chunk, inner_n - start);
    std::array<int64_t, N> off{};
    int64_t r = row;
    for (size_t d = nd - 1; d-- > 0;) {
      int64_t i = r % L.shape[d];
      r /= L.shape[d];
      for (size_t k = 0; k < N; ++k) off[k] += i * L.strides[k][d];
    }
    for (size_t k = 0; k < N; ++k) off[k] += start * inner_strides[k];
    inner(off, inner_strides, count);
  });
}

// Runs fn(begin, end) over [0, n) in parallel chunks when n is large enough.
template <typename F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  int threads = omp_get_max_threads();
  if (n < grain || threads == 1) {
    fn(int64_t(0), n);
    return;
  }
  int64_t pieces = std::min<int64_t>(threads, (n + grain - 1) / grain);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pieces; ++p) {
    int64_t b = n * p / pieces, e = n * (p + 1) / pieces;
    fn(b, e);
  }
}

}  // namespace ember::cpu
