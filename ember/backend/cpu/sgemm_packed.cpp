// ember's packed float32 GEMM (see the header). The structure is Goto's
// algorithm as BLIS lays it out:
//
//   for each NC-wide column block of C           (B block sized for L3)
//     for each KC-deep slice of the k dimension
//       pack B[slice, block] into 16-column slivers (KC x 16, 16 KiB: stays in L1)
//       for each MC-tall row block of C          (A block sized for L2)
//         pack A[block, slice] into 6-row slivers (KC x 6)
//         for each 16-column sliver of B, for each 6-row sliver of A:
//           6 x 16 micro-kernel over the KC slice
//
// The micro-kernel keeps a 6 x 16 tile of C in 12 ymm accumulators: per step of
// k, two loads of B, six broadcasts of A and 12 FMAs — enough independent
// chains to keep both FMA pipes of a Zen 3 core busy (4-cycle latency, 2 pipes).
// Packing turns every transpose case into the same contiguous streams, so one
// kernel serves NN, NT, TN and TT. Edges are zero-padded in the packed panels
// and the kernel's tile is written through a small buffer.
//
// Threads split C into independent rectangles (rows when C is tall, columns
// when wide), each packing its own panels: no barriers, and the repeated
// packing of the shared operand is O(k * n) against O(m * n * k) work. (A
// shared B block with row blocks handed out dynamically was measured too: no
// faster on the GPT shapes, slower on the weight-gradient ones.) The result
// does not depend on the thread count: every element is summed over the same
// k slices in the same order.
#include "ember/backend/cpu/sgemm_packed.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define EMBER_SGEMM_PACKED 1
#endif

namespace ember::cpu {

namespace {
constexpr int64_t kNR = 16;  // columns of a packed B sliver (and of the micro-kernel's tile)
int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
}  // namespace

#ifdef EMBER_SGEMM_PACKED
namespace {

constexpr int64_t kMR = 6;
// The k slice: at most kKC deep, the k dimension cut into equal slices (a
// multiple of 4), so that k = 384 (n_embd of the small GPT) is one pass over C
// and no slice is a short remainder. Every pass after the first reads and
// writes all of C, which for the lm head's 2048 x 16384 logits is 128 MiB.
constexpr int64_t kKC = 384;
// The packed A block is sized for L2 (a Zen 3 core has 512 KiB): rows = budget
// / (4 * kc), a multiple of 6.
constexpr int64_t kABytes = 160 * 1024;
constexpr int64_t kNC = 3072;  // kc x 3072 floats of packed B: L3

int64_t slice_depth(int64_t k) {
  const int64_t slices = (k + kKC - 1) / kKC;
  return ((k + slices - 1) / slices + 3) / 4 * 4;
}

int64_t block_rows(int64_t kc) { return std::max<int64_t>(kMR, kABytes / (4 * kc) / kMR * kMR); }

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float, AlignedFree>;

Buffer aligned_floats(int64_t count) {
  void* p = std::aligned_alloc(64, size_t((count * int64_t(sizeof(float)) + 63) / 64 * 64));
  return Buffer(static_cast<float*>(p));
}

// r[0..7] := the 8 x 8 transpose of r[0..7] (row j of the result is column j of the input).
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Six floats from src to dst (a sliver's column of A); the compiler emits one
// 16-byte and one 8-byte move.
inline void copy6(const float* src, float* dst) { std::memcpy(dst, src, 6 * sizeof(float)); }

// op(A) rows [i0, i0+mc) x k-slice [p0, p0+kc) into slivers of kMR rows:
// sliver s holds, for each p, its kMR values of column p (rows past mc are 0).
void pack_a(bool trans, const float* a, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  if (trans) {
    // Element (i, p) at a[p * lda + i]: walk each stored row p once, left to
    // right, handing six values to each sliver in turn (sliver by sliver would
    // revisit every row's cache lines mc / 6 times).
    const int64_t full = mc / kMR * kMR;
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = a + (p0 + p) * lda + i0;
      for (int64_t s = 0; s < full; s += kMR) copy6(src + s, dst + s * kc + p * kMR);
      if (full < mc) {
        float* o = dst + full * kc + p * kMR;
        int64_t r = 0;
        for (; r < mc - full; ++r) o[r] = src[full + r];
        for (; r < kMR; ++r) o[r] = 0.0f;
      }
    }
    return;
  }
  // Element (i, p) at a[i * lda + p]: each sliver reads its six rows along p.
  for (int64_t s = 0; s < mc; s += kMR) {
    const int64_t rows = std::min(kMR, mc - s);
    float* out = dst + s * kc;
    if (rows == kMR) {
      const float* r0 = a + (i0 + s) * lda + p0;
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {  // 8 steps of p at once: load six rows, transpose, keep six lanes
        __m256 v[8];
        for (int r = 0; r < kMR; ++r) v[r] = _mm256_loadu_ps(r0 + r * lda + p);
        v[6] = v[7] = _mm256_setzero_ps();
        transpose8x8(v);
        float* o = out + p * kMR;
        for (int j = 0; j < 8; ++j) {
          _mm_storeu_ps(o + j * kMR, _mm256_castps256_ps128(v[j]));
          _mm_storel_pi(reinterpret_cast<__m64*>(o + j * kMR + 4), _mm256_extractf128_ps(v[j], 1));
        }
      }
      for (; p < kc; ++p) {
        float* o = out + p * kMR;
        o[0] = r0[p];
        o[1] = r0[lda + p];
        o[2] = r0[2 * lda + p];
        o[3] = r0[3 * lda + p];
        o[4] = r0[4 * lda + p];
        o[5] = r0[5 * lda + p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        int64_t r = 0;
        for (; r < rows; ++r) out[p * kMR + r] = a[(i0 + s + r) * lda + p0 + p];
        for (; r < kMR; ++r) out[p * kMR + r] = 0.0f;
      }
    }
  }
}

// op(B) k-slice [p0, p0+kc) x columns [j0, j0+nc) into slivers of kNR columns.
void pack_b(bool trans, const float* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  for (int64_t s = 0; s < nc; s += kNR) {
    const int64_t cols = std::min(kNR, nc - s);
    float* out = dst + s * kc;
    if (!trans) {  // element (p, j) at b[p * ldb + j]: 16 contiguous values per p
      const float* src = b + p0 * ldb + j0 + s;
      if (cols == kNR) {
        for (int64_t p = 0; p < kc; ++p) {
          _mm256_store_ps(out + p * kNR, _mm256_loadu_ps(src + p * ldb));
          _mm256_store_ps(out + p * kNR + 8, _mm256_loadu_ps(src + p * ldb + 8));
        }
      } else {
        for (int64_t p = 0; p < kc; ++p) {
          int64_t c = 0;
          for (; c < cols; ++c) out[p * kNR + c] = src[p * ldb + c];
          for (; c < kNR; ++c) out[p * kNR + c] = 0.0f;
        }
      }
    } else {  // element (p, j) at b[j * ldb + p]: each column j is contiguous along p
      const float* src = b + (j0 + s) * ldb + p0;
      int64_t p = 0;
      if (cols == kNR) {
        for (; p + 8 <= kc; p += 8) {  // two 8 x 8 transposes per 8 steps of p
          for (int half = 0; half < 2; ++half) {
            __m256 v[8];
            for (int c = 0; c < 8; ++c) v[c] = _mm256_loadu_ps(src + (8 * half + c) * ldb + p);
            transpose8x8(v);
            for (int j = 0; j < 8; ++j) _mm256_store_ps(out + (p + j) * kNR + 8 * half, v[j]);
          }
        }
      }
      for (; p < kc; ++p) {
        int64_t c = 0;
        for (; c < cols; ++c) out[p * kNR + c] = src[c * ldb + p];
        for (; c < kNR; ++c) out[p * kNR + c] = 0.0f;
      }
    }
  }
}

// C[0:6, 0:16] = alpha * (packed A sliver x packed B sliver) (+ bias[0:16]
// on every row, when given) + beta * C, or, for an edge tile, the same through
// a buffer of which rows x cols are kept.
void micro_kernel(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, float alpha, float beta,
                  const float* bias, int64_t rows, int64_t cols) {
  // C's rows are a whole row stride apart and not in cache: fetch them now so
  // the update after the k loop does not stall on six misses.
  for (int64_t r = 0; r < rows; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNR - 1), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(pb);
    const __m256 b1 = _mm256_load_ps(pb + 8);
    __m256 a = _mm256_broadcast_ss(pa);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(pa + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(pa + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(pa + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(pa + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(pa + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
    pa += kMR;
    pb += kNR;
  }
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  if (rows == kMR && cols == kNR) {
    const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    const __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
    for (int r = 0; r < kMR; ++r) {
      float* cr = c + r * ldc;
      for (int v = 0; v < 2; ++v) {
        __m256 x = _mm256_fmadd_ps(acc[r][v], va, v == 0 ? bias0 : bias1);
        if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8 * v), x);
        _mm256_storeu_ps(cr + 8 * v, x);
      }
    }
    return;
  }
  alignas(32) float tile[kMR * kNR];
  for (int r = 0; r < kMR; ++r)
    for (int v = 0; v < 2; ++v) _mm256_store_ps(tile + r * kNR + 8 * v, _mm256_mul_ps(acc[r][v], va));
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    const float* tr = tile + r * kNR;
    for (int64_t j = 0; j < cols; ++j) {
      float x = bias ? tr[j] + bias[j] : tr[j];
      if (beta != 0.0f) x += beta * cr[j];
      cr[j] = x;
    }
  }
}

// A scratch buffer of at least `count` floats, kept per thread between calls.
float* scratch(Buffer& buf, int64_t& cap, int64_t count) {
  if (cap < count) buf = aligned_floats(cap = count);
  return buf.get();
}

// One thread's rectangle of C: rows [i0, i1), columns [j0, j1). With
// `prepacked` (pack_b_whole's layout of all n columns; j0 a multiple of kNR)
// B's panels are read from it instead of being packed here.
void gemm_rectangle(bool trans_a, bool trans_b, int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t n_all,
                    int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                    const float* prepacked, float beta, float* c, int64_t ldc, const float* bias) {
  const int64_t m = i1 - i0, n = j1 - j0;
  if (m <= 0 || n <= 0) return;
  const int64_t kc_max = std::min(slice_depth(k), k);
  const int64_t mc_step = block_rows(kc_max);
  thread_local Buffer a_buf, b_buf;
  thread_local int64_t a_cap = 0, b_cap = 0;
  float* pa = scratch(a_buf, a_cap, std::min(mc_step, (m + kMR - 1) / kMR * kMR) * kc_max);
  float* pb = prepacked ? nullptr : scratch(b_buf, b_cap, std::min(kNC, round_up(n, kNR)) * kc_max);
  for (int64_t jc = j0; jc < j1; jc += kNC) {
    const int64_t nc = std::min(kNC, j1 - jc);
    for (int64_t pc = 0; pc < k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, k - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;
      const float* bias_here = pc == 0 ? bias : nullptr;  // added once, with the first slice
      if (prepacked) pb = const_cast<float*>(prepacked) + pc * round_up(n_all, kNR) + jc * kc;
      else pack_b(trans_b, b, ldb, pc, kc, jc, nc, pb);
      for (int64_t ic = i0; ic < i1; ic += mc_step) {
        const int64_t mc = std::min(mc_step, i1 - ic);
        pack_a(trans_a, a, lda, ic, mc, pc, kc, pa);
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t cols = std::min(kNR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += kMR)
            micro_kernel(kc, pa + ir * kc, pb + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, alpha, beta_here,
                         bias_here ? bias_here + jc + jr : nullptr, std::min(kMR, mc - ir), cols);
        }
      }
    }
  }
}

// C = alpha op(A) op(B) + bias + beta C over threads, B packed here per
// rectangle or given whole (`prepacked`).
void sgemm_driver(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, const float* prepacked, float beta, float* c, int64_t ldc,
                  int threads, const float* bias) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {  // no product: C = bias + beta * C (beta == 0 never reads C)
    for (int64_t i = 0; i < m; ++i) {
      float* ci = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) ci[j] = (bias ? bias[j] : 0.0f) + (beta == 0.0f ? 0.0f : beta * ci[j]);
    }
    return;
  }
  // Split C along its longer side into strips of whole tiles, one per thread;
  // small products stay on one thread (a team costs more than they take).
  const bool by_rows = m >= n;
  const int64_t unit = by_rows ? kMR : kNR;
  const int64_t tiles = ((by_rows ? m : n) + unit - 1) / unit;
  const int64_t parts =
      2.0 * double(m) * double(n) * double(k) < 4e6 ? 1 : std::max<int64_t>(1, std::min<int64_t>(threads, tiles));
  auto run_part = [&](int64_t part) {
    const int64_t t0 = tiles * part / parts * unit, t1 = std::min(tiles * (part + 1) / parts * unit, by_rows ? m : n);
    if (by_rows)
      gemm_rectangle(trans_a, trans_b, t0, t1, 0, n, n, k, alpha, a, lda, b, ldb, prepacked, beta, c, ldc, bias);
    else
      gemm_rectangle(trans_a, trans_b, 0, m, t0, t1, n, k, alpha, a, lda, b, ldb, prepacked, beta, c, ldc, bias);
  };
  if (parts == 1) {
    run_part(0);
    return;
  }
#pragma omp parallel for num_threads(int(parts)) schedule(static, 1)
  for (int64_t part = 0; part < parts; ++part) run_part(part);
}

}  // namespace
#endif  // EMBER_SGEMM_PACKED

bool sgemm_packed_available() {
#ifdef EMBER_SGEMM_PACKED
  return true;
#else
  return false;
#endif
}

void sgemm_packed(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads,
                  const float* bias) {
#ifdef EMBER_SGEMM_PACKED
  sgemm_driver(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, nullptr, beta, c, ldc, threads, bias);
#else
  (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb,
      (void)beta, (void)c, (void)ldc, (void)threads, (void)bias;
  std::abort();
#endif
}

int64_t packed_b_floats(int64_t k, int64_t n) { return k * round_up(n, kNR); }

void pack_b_whole(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst) {
#ifdef EMBER_SGEMM_PACKED
  if (k <= 0 || n <= 0) return;
  const int64_t kc_max = std::min(slice_depth(k), k);
  for (int64_t pc = 0; pc < k; pc += kc_max) {
    const int64_t kc = std::min(kc_max, k - pc);
    pack_b(trans_b, b, ldb, pc, kc, 0, n, dst + pc * round_up(n, kNR));
  }
#else
  (void)trans_b, (void)k, (void)n, (void)b, (void)ldb, (void)dst;
  std::abort();
#endif
}

void sgemm_prepacked(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                     const float* packed_b, float beta, float* c, int64_t ldc, int threads, const float* bias) {
#ifdef EMBER_SGEMM_PACKED
  sgemm_driver(trans_a, false, m, n, k, alpha, a, lda, nullptr, 0, packed_b, beta, c, ldc, threads, bias);
#else
  (void)trans_a, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)packed_b, (void)beta, (void)c,
      (void)ldc, (void)threads, (void)bias;
  std::abort();
#endif
}

}  // namespace ember::cpu
