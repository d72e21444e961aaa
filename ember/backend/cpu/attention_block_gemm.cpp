// Register-tiled block products for the attention kernels (see the header).
//
// The AVX2 path computes C in tiles of up to 6 rows x 16 columns: 12 ymm
// accumulators, two loads of B and six broadcasts of A per step of p, 12 FMAs.
// That keeps both FMA pipes of a Zen 3 core busy (4-cycle latency x 2 pipes
// needs at least 8 independent accumulators) while the loads stay under the
// core's load bandwidth. Column tails use masked loads and stores, row tails
// smaller tiles, so any m, n, k works without padding. The p loop is unrolled
// four times: measured on one core with the operands in L1, 64 x 64 x 64 went
// from 60-63 to 69-70 GFLOP/s (94 is the FMA peak), the loop's address and
// counter arithmetic no longer competing with the FMAs for dispatch.
//
// The AVX-512 path (chosen at compile time) uses tiles of up to 8 rows x 32
// columns: 16 zmm accumulators of the 32 registers, two loads of B and eight
// broadcasts of A per step of p, 16 FMAs, and mask registers for the column
// tails: half the instructions per flop of the AVX2 tile (Zen 4 splits each
// 512-bit FMA over its two 256-bit pipes, so its FMA peak is the same). On
// the `small` step the attention kernels ran about 4% faster with it. The row
// count of 8 divides the kernels' 64-row blocks and 16-row diagonal groups,
// so no row tails there. Both paths share the row loop (rows_in_tiles); the
// tiles differ in vector type and in how a column tail is masked.
#include "ember/backend/cpu/attention_block_gemm.h"

#include <algorithm>
#include <type_traits>

#if (defined(__AVX2__) && defined(__FMA__)) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace ember::cpu {
namespace {

template <typename T>
void block_gemm_loops(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, int64_t a_ps, const T* b,
                      int64_t ldb, T* c, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    if (!accumulate) std::fill(ci, ci + n, T(0));
    for (int64_t p = 0; p < k; ++p) {
      const T aip = a[i * a_rs + p * a_ps];
      const T* bp = b + p * ldb;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
    }
  }
}

// Rows [0, m) of a panel: tiles of MR rows, then one smaller tile for the
// rest; tile(std::integral_constant<int, R>, i) computes rows [i, i + R).
template <int R, class Tile>
inline void tail_tile(int64_t rows, int64_t i, Tile& tile) {
  if constexpr (R > 0) {
    if (rows == R) tile(std::integral_constant<int, R>{}, i);
    else tail_tile<R - 1>(rows, i, tile);
  }
}
template <int MR, class Tile>
inline void rows_in_tiles(int64_t m, Tile&& tile) {
  int64_t i = 0;
  for (; i + MR <= m; i += MR) tile(std::integral_constant<int, MR>{}, i);
  tail_tile<MR - 1>(m - i, i, tile);
}

#if defined(__AVX512F__)

// One tile: MR rows of C, NV vectors of 16 columns; the last vector covers
// only the lanes set in `tail` (all of them for a full tile).
template <int MR, int NV>
inline void tile512(int64_t k, const float* a, int64_t a_rs, int64_t a_ps, const float* b, int64_t ldb, float* c,
                    int64_t ldc, __mmask16 tail, bool accumulate) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    const float* ap = a + p * a_ps;
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(ap[r * a_rs]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const __mmask16 lanes = v == NV - 1 ? tail : __mmask16(0xFFFF);
      __m512 x = acc[r][v];
      if (accumulate) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(lanes, cr + 16 * v));
      _mm512_mask_storeu_ps(cr + 16 * v, lanes, x);
    }
  }
}

// All m rows of one panel of up to 32 columns.
template <int NV>
void panel512(int64_t m, int64_t k, const float* a, int64_t a_rs, int64_t a_ps, const float* b, int64_t ldb,
              float* c, int64_t ldc, __mmask16 tail, bool accumulate) {
  rows_in_tiles<8>(m, [&](auto rows, int64_t i) {
    tile512<decltype(rows)::value, NV>(k, a + i * a_rs, a_rs, a_ps, b, ldb, c + i * ldc, ldc, tail, accumulate);
  });
}

#elif defined(__AVX2__) && defined(__FMA__)

// One tile: MR rows of C, NV vectors of 8 columns; with Masked, the last
// vector covers only the lanes set in `mask`.
template <int MR, int NV, bool Masked>
inline void tile(int64_t k, const float* a, int64_t a_rs, int64_t a_ps, const float* b, int64_t ldb, float* c,
                 int64_t ldc, __m256i mask, bool accumulate) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    const float* ap = a + p * a_ps;
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = Masked && v == NV - 1 ? _mm256_maskload_ps(bp + 8 * v, mask) : _mm256_loadu_ps(bp + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(ap + r * a_rs);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      if (Masked && v == NV - 1) {
        __m256 x = acc[r][v];
        if (accumulate) x = _mm256_add_ps(x, _mm256_maskload_ps(cr + 8 * v, mask));
        _mm256_maskstore_ps(cr + 8 * v, mask, x);
      } else {
        __m256 x = acc[r][v];
        if (accumulate) x = _mm256_add_ps(x, _mm256_loadu_ps(cr + 8 * v));
        _mm256_storeu_ps(cr + 8 * v, x);
      }
    }
  }
}

// All m rows of one panel of up to 16 columns.
template <int NV, bool Masked>
void panel(int64_t m, int64_t k, const float* a, int64_t a_rs, int64_t a_ps, const float* b, int64_t ldb, float* c,
           int64_t ldc, __m256i mask, bool accumulate) {
  rows_in_tiles<6>(m, [&](auto rows, int64_t i) {
    tile<decltype(rows)::value, NV, Masked>(k, a + i * a_rs, a_rs, a_ps, b, ldb, c + i * ldc, ldc, mask, accumulate);
  });
}

__m256i lanes_below(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#endif  // AVX2 and FMA

}  // namespace

void block_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ps, const float* b,
                int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
#if defined(__AVX512F__)
  for (int64_t j = 0; j < n; j += 32) {
    const int64_t w = std::min<int64_t>(32, n - j);
    const __mmask16 tail = __mmask16((1u << ((w - 1) % 16 + 1)) - 1);  // lanes of the last vector
    if (w > 16) panel512<2>(m, k, a, a_rs, a_ps, b + j, ldb, c + j, ldc, tail, accumulate);
    else panel512<1>(m, k, a, a_rs, a_ps, b + j, ldb, c + j, ldc, tail, accumulate);
  }
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256i all = _mm256_set1_epi32(-1);
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t w = std::min<int64_t>(16, n - j);
    if (w == 16) panel<2, false>(m, k, a, a_rs, a_ps, b + j, ldb, c + j, ldc, all, accumulate);
    else if (w > 8) panel<2, true>(m, k, a, a_rs, a_ps, b + j, ldb, c + j, ldc, lanes_below(w - 8), accumulate);
    else if (w == 8) panel<1, false>(m, k, a, a_rs, a_ps, b + j, ldb, c + j, ldc, all, accumulate);
    else panel<1, true>(m, k, a, a_rs, a_ps, b + j, ldb, c + j, ldc, lanes_below(w), accumulate);
  }
#else
  block_gemm_loops(m, n, k, a, a_rs, a_ps, b, ldb, c, ldc, accumulate);
#endif
}

void block_gemm(int64_t m, int64_t n, int64_t k, const double* a, int64_t a_rs, int64_t a_ps, const double* b,
                int64_t ldb, double* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  block_gemm_loops(m, n, k, a, a_rs, a_ps, b, ldb, c, ldc, accumulate);
}

}  // namespace ember::cpu
