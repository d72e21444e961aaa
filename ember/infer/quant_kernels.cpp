// Matrix products with f32, int8, int4 and f16 weights (see quant_kernels.h).
// AVX2 + FMA kernels (ember builds with -march=native; the development
// machine has no AVX-512), f16 also with F16C; a plain loop through a
// dequantized row keeps other builds compiling and correct.
#include "ember/infer/quant_kernels.h"

#include <omp.h>

#include <algorithm>

#include "ember/backend/cpu/gemm.h"
#include "ember/core/error.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define EMBER_QUANT_AVX2 1
#if defined(__F16C__)
#define EMBER_QUANT_F16C 1
#endif
#endif

namespace ember::infer {
namespace {

// Bound on the float tile of the GEMM path: 2 MiB, so it stays in L3 next to
// the activations while oneDNN multiplies it.
constexpr int64_t kTileFloats = int64_t(1) << 19;

// A kernel computes out[r][j] = dot(W row rows[j], X row r) for the four
// weight rows `rows` and nr <= 2 rows of X (row stride k), scales included.
using Out = float[2][4];

#ifdef EMBER_QUANT_AVX2
// Prefetching. A kernel reads four consecutive rows of W side by side, and
// consecutive rows are contiguous, so a block of four rows is one contiguous
// span: reading offset o of each row has consumed 4 o bytes of it. Each step
// prefetches (into L2) the lines that lie kPrefetchAhead bytes past that point,
// a window moving through W at the rate the kernel consumes it, across blocks.
// Streaming a matrix from DRAM (2 threads), the hardware prefetcher alone gave
// float32 12.8 GB/s and int8 5.6 GB/s; prefetching 4 KiB ahead along each row
// 18 to 22 and 11 to 13 GB/s; the window 16 KiB ahead raised decode by about a
// tenth in float32 and by half in f16 on `small` (docs/PERFORMANCE.md). A
// prefetch never faults, so running past the end of the matrix is harmless.
constexpr int64_t kPrefetchAhead = 16384;

// Prefetches `lines` cache lines of the window of the block starting at
// `block` when each of its rows has been read up to `row_offset_bytes`.
inline void prefetch_window(const void* block, int64_t row_offset_bytes, int lines) {
  const char* p = static_cast<const char*>(block) + kPrefetchAhead + 4 * row_offset_bytes;
  for (int t = 0; t < lines; ++t) _mm_prefetch(p + 64 * t, _MM_HINT_T1);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 16 int4 codes (8 bytes, the even column in the low nibble) as the int8
// values code - 8, in column order.
inline __m128i unpack_int4x16(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(b, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
  return _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), _mm_set1_epi8(8));
}
inline __m256 low8_ps(__m128i q) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)); }
inline __m256 high8_ps(__m128i q) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q))); }
inline __m256 int8x8_ps(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// X rows are read straight from memory inside the FMAs (L1 hits), which keeps
// the accumulators and the converted weights within the 16 registers.
//
// Enough independent sums to fill both FMA pipes: an FMA's result is ready
// after 4 cycles on Zen 3 and two issue per cycle, so 8 chains are needed.
// Four weight rows give four per X row; at batch 1 each row keeps two
// (alternate 8-column steps), at batch 2 the two X rows give the eight. With
// four, FMA latency rather than loads bounds a matrix that is already in
// cache (at most one FMA per cycle).
template <int NR>
constexpr int kChains = NR == 1 ? 2 : 1;

template <int NR>
void f32_block(const float* const w[4], const float* x, int64_t k, Out& out) {
  constexpr int U = kChains<NR>;
  __m256 acc[4][NR][U];
  for (auto& a : acc)
    for (auto& b : a)
      for (auto& v : b) v = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 * U <= k; i += 8 * U)
    for (int u = 0; u < U; ++u) {
      if ((i + 8 * u) % 16 == 0) prefetch_window(w[0], (i + 8 * u) * 4, 4);  // 64 bytes a row
      for (int j = 0; j < 4; ++j) {
        const __m256 wv = _mm256_loadu_ps(w[j] + i + 8 * u);
        for (int r = 0; r < NR; ++r)
          acc[j][r][u] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * k + i + 8 * u), acc[j][r][u]);
      }
    }
  for (; i + 8 <= k; i += 8)
    for (int j = 0; j < 4; ++j) {
      const __m256 wv = _mm256_loadu_ps(w[j] + i);
      for (int r = 0; r < NR; ++r) acc[j][r][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * k + i), acc[j][r][0]);
    }
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < NR; ++r) {
      __m256 sum = acc[j][r][0];
      for (int u = 1; u < U; ++u) sum = _mm256_add_ps(sum, acc[j][r][u]);
      float s = hsum(sum);
      for (int64_t t = i; t < k; ++t) s += w[j][t] * x[r * k + t];
      out[r][j] = s;
    }
}

inline float widen1(int8_t v) { return float(v); }
inline __m256 widen8(const int8_t* p) { return int8x8_ps(p); }
#ifdef EMBER_QUANT_F16C
inline __m256 f16x8_ps(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float widen1(uint16_t v) { return half_to_float(v); }
inline __m256 widen8(const uint16_t* p) { return f16x8_ps(p); }
#endif

// int8 (T = int8_t, a scale per row) and f16 (T = uint16_t, no scale: vcvtph2ps
// widens exactly, so the sums are float32's on the dequantized weights): eight
// weights widened to float per step, 32 of a row between prefetches (the
// window's 128 or 256 bytes of the block).
template <int NR, typename T>
void widening_block(const T* const w[4], const float* const scale, const float* x, int64_t k, Out& out) {
  constexpr int U = kChains<NR>;  // see f32_block
  __m256 acc[4][NR][U];
  for (auto& a : acc)
    for (auto& b : a)
      for (auto& v : b) v = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    prefetch_window(w[0], i * int64_t(sizeof(T)), int(sizeof(T)) * 2);  // 32 weights a row
    for (int u = 0; u < 32; u += 8)
      for (int j = 0; j < 4; ++j) {
        const __m256 wv = widen8(w[j] + i + u);
        for (int r = 0; r < NR; ++r) {
          __m256& a = acc[j][r][(u / 8) % U];
          a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * k + i + u), a);
        }
      }
  }
  for (; i + 8 <= k; i += 8)
    for (int j = 0; j < 4; ++j) {
      const __m256 wv = widen8(w[j] + i);
      for (int r = 0; r < NR; ++r) acc[j][r][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * k + i), acc[j][r][0]);
    }
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < NR; ++r) {
      __m256 sum = acc[j][r][0];
      for (int u = 1; u < U; ++u) sum = _mm256_add_ps(sum, acc[j][r][u]);
      float s = hsum(sum);
      for (int64_t t = i; t < k; ++t) s += widen1(w[j][t]) * x[r * k + t];
      out[r][j] = scale ? s * scale[j] : s;
    }
}

// Full groups run 16 columns (8 bytes) a step. The bytes are widened to
// 32-bit lanes as they are, so the low nibbles are the group's even columns and
// the high ones its odd columns: rather than interleave them, the caller
// de-interleaves X once per call (deinterleave_x), and each weight becomes
// code * s - 8 s in one FMA (exactly the reference's (code - 8) * s, rounded
// once). The columns after the last full group (a shorter last group) run as
// scalars on the original X.
template <int NR>
void int4_block(const uint8_t* const w[4], const float* const s[4], int64_t group, const float* xs, const float* x,
                int64_t k, Out& out) {
  __m256 acc[4][NR];
  for (auto& a : acc)
    for (auto& v : a) v = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi32(0x0F);
  const int64_t full = k / group;
  for (int64_t g = 0; g < full; ++g) {
    prefetch_window(w[0], g * group / 2, int(std::max<int64_t>(1, group / 32)));  // half a byte a weight
    for (int64_t c = g * group; c < (g + 1) * group; c += 16)
      for (int j = 0; j < 4; ++j) {
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w[j] + c / 2)));
        const __m256 sv = _mm256_set1_ps(s[j][g]), off = _mm256_set1_ps(-8.0f * s[j][g]);
        const __m256 even = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b, low)), sv, off);
        const __m256 odd = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4)), sv, off);
        for (int r = 0; r < NR; ++r) {
          acc[j][r] = _mm256_fmadd_ps(even, _mm256_loadu_ps(xs + r * k + c), acc[j][r]);
          acc[j][r] = _mm256_fmadd_ps(odd, _mm256_loadu_ps(xs + r * k + c + 8), acc[j][r]);
        }
      }
  }
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < NR; ++r) {
      float sum = hsum(acc[j][r]);
      for (int64_t t = full * group; t < k; ++t) {
        const int nib = (t % 2 == 0) ? (w[j][t / 2] & 0x0F) : (w[j][t / 2] >> 4);
        sum += float(nib - 8) * s[j][full] * x[r * k + t];
      }
      out[r][j] = sum;
    }
}

// One X row (decode at batch 1), fewer instructions per weight: the codes
// (0..15) are multiplied with X as they are, each group's sum is scaled once,
// and the offset of 8 comes off at the end as 8 * sum_g s[g] * sum(x in g),
// with the group sums of X (xsum) computed once per call.
void int4_block1(const uint8_t* const w[4], const float* const s[4], int64_t group, const float* xs,
                 const float* xsum, const float* x, int64_t k, Out& out) {
  // Even and odd columns in separate partial sums: 8 chains (see f32_block).
  __m256 acc[4], part[4], part_odd[4];
  for (auto& a : acc) a = _mm256_setzero_ps();
  const __m256i low = _mm256_set1_epi32(0x0F);
  const int64_t full = k / group;
  float offset[4] = {0, 0, 0, 0};
  for (int64_t g = 0; g < full; ++g) {
    prefetch_window(w[0], g * group / 2, int(std::max<int64_t>(1, group / 32)));
    for (int j = 0; j < 4; ++j) part[j] = part_odd[j] = _mm256_setzero_ps();
    for (int64_t c = g * group; c < (g + 1) * group; c += 16) {
      const __m256 xe = _mm256_loadu_ps(xs + c), xo = _mm256_loadu_ps(xs + c + 8);
      for (int j = 0; j < 4; ++j) {
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w[j] + c / 2)));
        part[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(b, low)), xe, part[j]);
        part_odd[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4)), xo, part_odd[j]);
      }
    }
    for (int j = 0; j < 4; ++j) {
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(s[j][g]), _mm256_add_ps(part[j], part_odd[j]), acc[j]);
      offset[j] += s[j][g] * xsum[g];
    }
  }
  for (int j = 0; j < 4; ++j) {
    float sum = hsum(acc[j]) - 8.0f * offset[j];
    for (int64_t t = full * group; t < k; ++t) {
      const int nib = (t % 2 == 0) ? (w[j][t / 2] & 0x0F) : (w[j][t / 2] >> 4);
      sum += float(nib - 8) * s[j][full] * x[t];
    }
    out[0][j] = sum;
  }
}

// X as int4_block reads it: in each 16 columns of the full groups, the 8 even
// columns first, then the 8 odd ones.
// Also the sum of each full group of each row: xsum [n, k / group].
void deinterleave_x(const float* x, int64_t n, int64_t k, int64_t group, float* xs, float* xsum) {
  const int64_t full = k / group;
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * k;
    float* o = xs + r * k;
    for (int64_t c = 0; c < full * group; c += 16)
      for (int64_t b = 0; b < 8; ++b) o[c + b] = xr[c + 2 * b], o[c + 8 + b] = xr[c + 2 * b + 1];
    for (int64_t g = 0; g < full; ++g) {
      float sum = 0;
      for (int64_t c = g * group; c < (g + 1) * group; ++c) sum += xr[c];
      xsum[r * full + g] = sum;
    }
  }
}
#endif  // EMBER_QUANT_AVX2

// Any format, one dot product at a time through a dequantized row: the
// version for builds without AVX2, and the meaning of the kernels above.
void generic_block(const LinearWeight& w, const int64_t rows[4], const float* x, int nr, Out& out,
                   std::vector<float>& row) {
  row.resize(size_t(w.cols));
  for (int j = 0; j < 4; ++j) {
    dequantize_rows(w, rows[j], rows[j] + 1, row.data());
    for (int r = 0; r < nr; ++r) {
      float s = 0;
      for (int64_t t = 0; t < w.cols; ++t) s += row[size_t(t)] * x[r * w.cols + t];
      out[r][j] = s;
    }
  }
}

// xs, xsum: X prepared by deinterleave_x for int4 (unused otherwise).
void compute_block(const LinearWeight& w, const int64_t rows[4], const float* x, const float* xs, const float* xsum,
                   int nr, Out& out, std::vector<float>& row) {
#ifdef EMBER_QUANT_AVX2
  const int64_t k = w.cols;
  switch (w.format) {
    case WeightFormat::f32: {
      const float* base = static_cast<const float*>(w.data);
      const float* p[4] = {base + rows[0] * k, base + rows[1] * k, base + rows[2] * k, base + rows[3] * k};
      return nr == 2 ? f32_block<2>(p, x, k, out) : f32_block<1>(p, x, k, out);
    }
    case WeightFormat::int8: {
      const int8_t* base = static_cast<const int8_t*>(w.data);
      const int8_t* p[4] = {base + rows[0] * k, base + rows[1] * k, base + rows[2] * k, base + rows[3] * k};
      const float sc[4] = {w.scales[rows[0]], w.scales[rows[1]], w.scales[rows[2]], w.scales[rows[3]]};
      return nr == 2 ? widening_block<2>(p, sc, x, k, out) : widening_block<1>(p, sc, x, k, out);
    }
    case WeightFormat::int4: {
      const int64_t rb = int4_row_bytes(k), ng = int4_groups(k, w.group);
      const uint8_t* base = static_cast<const uint8_t*>(w.data);
      const uint8_t* p[4] = {base + rows[0] * rb, base + rows[1] * rb, base + rows[2] * rb, base + rows[3] * rb};
      const float* s[4] = {w.scales + rows[0] * ng, w.scales + rows[1] * ng, w.scales + rows[2] * ng,
                           w.scales + rows[3] * ng};
      if (nr == 2) return int4_block<2>(p, s, w.group, xs, x, k, out);
      return int4_block1(p, s, w.group, xs, xsum, x, k, out);
    }
    case WeightFormat::f16: {
#ifdef EMBER_QUANT_F16C
      const uint16_t* base = static_cast<const uint16_t*>(w.data);
      const uint16_t* p[4] = {base + rows[0] * k, base + rows[1] * k, base + rows[2] * k, base + rows[3] * k};
      return nr == 2 ? widening_block<2>(p, nullptr, x, k, out) : widening_block<1>(p, nullptr, x, k, out);
#else
      break;
#endif
    }
  }
#endif
  (void)xs, (void)xsum;
  generic_block(w, rows, x, nr, out, row);
}

// Few rows: every block of four weight rows is read once (from memory) and
// serves all n rows of X, two at a time, while it sits in L1.
void gemv(const LinearWeight& w, const float* x, int64_t n, const float* bias, float* y, bool accumulate,
          std::vector<float>& scratch) {
  const int64_t m = w.rows, k = w.cols;
  const int64_t blocks = (m + 3) / 4;
  const float *xs = nullptr, *xsum = nullptr;
  const int64_t full = w.format == WeightFormat::int4 ? k / w.group : 0;
#ifdef EMBER_QUANT_AVX2
  if (w.format == WeightFormat::int4) {
    if (int64_t(scratch.size()) < n * (k + full)) scratch.resize(size_t(n * (k + full)));
    deinterleave_x(x, n, k, w.group, scratch.data(), scratch.data() + n * k);
    xs = scratch.data();
    xsum = xs + n * k;
  }
#endif
#pragma omp parallel if (m * k > 16384)
  {
    std::vector<float> row;  // the generic kernel's dequantized row
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t o = b * 4, cnt = std::min<int64_t>(4, m - o);
      // A short last block repeats its last row; the copies are not stored.
      const int64_t rows[4] = {o, o + std::min<int64_t>(1, cnt - 1), o + std::min<int64_t>(2, cnt - 1),
                               o + std::min<int64_t>(3, cnt - 1)};
      for (int64_t r = 0; r < n; r += 2) {
        const int nr = n - r >= 2 ? 2 : 1;
        Out out;
        compute_block(w, rows, x + r * k, xs ? xs + r * k : nullptr, xsum ? xsum + r * full : nullptr, nr, out, row);
        for (int rr = 0; rr < nr; ++rr) {
          float* yr = y + (r + rr) * m + o;
          for (int64_t j = 0; j < cnt; ++j) {
            const float v = out[rr][j] + (bias ? bias[o + j] : 0.0f);
            yr[j] = accumulate ? yr[j] + v : v;
          }
        }
      }
    }
  }
}

}  // namespace

void dequantize_rows_fast(const LinearWeight& w, int64_t r0, int64_t r1, float* out) {
#ifdef EMBER_QUANT_AVX2
  if (w.format == WeightFormat::int4) {
    const int64_t k = w.cols, rb = int4_row_bytes(k), ng = int4_groups(k, w.group), full = k / w.group;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* q = static_cast<const uint8_t*>(w.data) + r * rb;
      const float* s = w.scales + r * ng;
      float* o = out + (r - r0) * k;
      for (int64_t g = 0; g < full; ++g) {
        const __m256 sv = _mm256_set1_ps(s[g]);
        for (int64_t c = g * w.group; c < (g + 1) * w.group; c += 16) {
          const __m128i v = unpack_int4x16(q + c / 2);
          _mm256_storeu_ps(o + c, _mm256_mul_ps(low8_ps(v), sv));
          _mm256_storeu_ps(o + c + 8, _mm256_mul_ps(high8_ps(v), sv));
        }
      }
      for (int64_t c = full * w.group; c < k; ++c) {
        const int nib = (c % 2 == 0) ? (q[c / 2] & 0x0F) : (q[c / 2] >> 4);
        o[c] = float(nib - 8) * s[full];
      }
    }
    return;
  }
#endif
#ifdef EMBER_QUANT_F16C
  if (w.format == WeightFormat::f16) {
    const int64_t n = (r1 - r0) * w.cols;
    const uint16_t* q = static_cast<const uint16_t*>(w.data) + r0 * w.cols;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, f16x8_ps(q + i));
    for (; i < n; ++i) out[i] = half_to_float(q[i]);
    return;
  }
#endif
  // float32 is a copy and int8 a loop the compiler vectorises.
  dequantize_rows(w, r0, r1, out);
}

bool linear_rows_activated(const LinearWeight& w, const float* x, int64_t n, const float* bias, UnaryOp act,
                           float* y) {
  if (!w.defined() || w.format != WeightFormat::f32 || !w.packed || n <= kGemvMaxRows ||
      !cpu::epilogue_activation_supported(w.packed_layout, act))
    return false;
  cpu::GemmEpilogue epilogue;
  epilogue.activation = act;
  cpu::gemm_packed_weights(w.packed_layout, n, w.rows, w.cols, x, w.cols, w.packed, bias, y, w.rows, 0.0f, epilogue);
  return true;
}

void linear_rows(const LinearWeight& w, const float* x, int64_t n, const float* bias, float* y, bool accumulate,
                 std::vector<float>& scratch) {
  if (!w.defined()) fail("linear_rows", "undefined weight");
  const int64_t m = w.rows, k = w.cols;
  if (n <= kGemvMaxRows) return gemv(w, x, n, bias, y, accumulate, scratch);
  const float beta = accumulate ? 1.0f : 0.0f;
  // The bias goes in as the GEMM writes Y (one pass over Y fewer).
  auto product = [&](const float* wt, int64_t rows, int64_t o0) {
    if (bias) cpu::gemm_bias(false, true, n, rows, k, x, k, wt, k, bias + o0, y + o0, m, beta);
    else cpu::gemm(false, true, n, rows, k, 1.0f, x, k, wt, k, beta, y + o0, m);
  };
  if (w.format == WeightFormat::f32 && w.packed) {
    cpu::gemm_packed_weights(w.packed_layout, n, m, k, x, k, w.packed, bias, y, m, beta);
  } else if (w.format == WeightFormat::f32) {
    product(static_cast<const float*>(w.data), m, 0);
  } else {
    // Blocks of whole rows, a multiple of 16 of them, at most the tile's size.
    const int64_t mb = std::min(m, std::max<int64_t>(16, kTileFloats / k / 16 * 16));
    if (int64_t(scratch.size()) < mb * k) scratch.resize(size_t(mb * k));
    float* tile = scratch.data();
    for (int64_t o0 = 0; o0 < m; o0 += mb) {
      const int64_t cnt = std::min(mb, m - o0);
#pragma omp parallel for schedule(static) if (cnt * k > 65536)
      for (int64_t r = 0; r < cnt; r += 8)
        dequantize_rows_fast(w, o0 + r, o0 + std::min(cnt, r + 8), tile + r * k);
      product(tile, cnt, o0);
    }
  }
}

}  // namespace ember::infer
