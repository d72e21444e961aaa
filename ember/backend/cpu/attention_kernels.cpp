// Flash-attention kernels for the CPU.
//
// Forward: one task per (batch, head, block of kBr queries), the blocks with
// the most keys first (causal), so that the last tasks handed out are short.
// A task packs its queries once as Qᵀ (pre-scaled) and computes each score
// block transposed, Sᵀ = K Qᵀ: K is then read where it lies, and a query's
// softmax statistics sit in one vector lane, so the online softmax (running
// max m and sum l; earlier partial outputs rescaled by exp(m_old - m_new)) is
// vectorised over the queries. O += P V reads P through Sᵀ's strides.
//
// Backward (FlashAttention-2): one task per (batch, kv head), optionally split
// over key blocks when there are fewer such units than threads. A task owns its
// key blocks' dK and dV and all query heads of its group, so nothing is shared
// between threads except split partial dQ buffers, which are summed at the end.
// Per key block it packs Kᵀ and Vᵀ once; per query block it recomputes
// P = exp(S - lse), then
//   dV += Pᵀ dO,  dP = dO Vᵀ,  dS = P * (dP - rowsum(dO * O)),
//   dQ += scale dS K,  dK += scale dSᵀ Q.
//
// Causal blocks on the diagonal are cut into groups of kSub rows, and each
// group's products cover only the keys (or queries) it can see: about 3/8 of a
// diagonal block's work is never done instead of being done and masked.
//
// The products are attention_block_gemm's register-tiled loops: oneDNN's sgemm
// called per 64 x 64 block ran the `small` shape's forward + backward at about
// 40 GFLOP/s (docs/PERFORMANCE.md has the before and after).
#include "ember/backend/cpu/attention_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ember/backend/cpu/attention_block_gemm.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/loops.h"
#include "ember/backend/cpu/softmax_kernels.h"

namespace ember::cpu {
namespace {

constexpr int64_t kBr = 64;   // queries per block
constexpr int64_t kBc = 64;   // keys per block
constexpr int64_t kSub = 16;  // rows per group on the causal diagonal

// What causal masking leaves of one (query block, key block) pair: query row i
// (position t0 + i) sees key j (position s0 + j) when s0 + j <= t0 + i + off,
// off = S - T.
struct Pair {
  int64_t t0, rows, s0, cols, off;
  bool causal;
  // The keys query row i sees: a prefix of the block.
  int64_t keys_seen(int64_t i) const {
    return causal ? std::clamp<int64_t>(t0 + i + off - s0 + 1, 0, cols) : cols;
  }
  // The first query row that sees key j (every later row sees it too).
  int64_t first_query(int64_t j) const { return causal ? std::clamp<int64_t>(s0 + j - off - t0, 0, rows) : 0; }
  bool full() const { return keys_seen(0) == cols; }
};

// Asks for rows [0, n) of a strided operand (d values each) to be brought into
// the cache. The kernels read Q, K, V and dO rows that the previous op has just
// written or that lie in another head's stripe of [B, T, H, D]; measured on the
// `small` forward, the first touch of those rows was about a sixth of the
// kernel's time, stalled on one row after another. Issued ahead, the misses
// overlap each other and the arithmetic of the block before.
template <typename T>
inline void prefetch_rows(const T* p, int64_t n, int64_t stride, int64_t d) {
  constexpr int64_t line = 64 / int64_t(sizeof(T));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; c += line) __builtin_prefetch(p + i * stride + c);
}

template <typename T>
void forward_typed(const AttentionDims& d, HeadRows<const T> q, HeadRows<const T> k, HeadRows<const T> v,
                   HeadRows<T> o, T* lse) {
  const int64_t G = d.H / d.Hkv, D = d.D, off = d.S - d.T;
  const int64_t nqb = (d.T + kBr - 1) / kBr, BH = d.B * d.H, tasks = BH * nqb;
  const T scale = T(d.scale);
  const T neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> qt(size_t(D * kBr)), st(size_t(kBc * kBr)), acc(size_t(kBr * D));
    std::vector<T> m(kBr), l(kBr), mnew(kBr), ref(kBr), alpha(kBr);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      // The query blocks of one head run one after another (its K and V stay in the
      // caches), the block with the most keys first (causal), so that the last
      // tasks handed out are short.
      const int64_t bh = task / nqb, qb = nqb - 1 - task % nqb;
      const int64_t b = bh / d.H, h = bh % d.H, hk = h / G;
      const int64_t t0 = qb * kBr, rows = std::min(kBr, d.T - t0);
      // Keys after the last one the block's last query sees are skipped entirely.
      const int64_t kend = d.causal ? std::clamp<int64_t>(t0 + rows + off, 0, d.S) : d.S;
      prefetch_rows(q.at(b, h, t0), rows, q.row, D);
      prefetch_rows(k.at(b, hk, 0), std::min(kBc, kend), k.row, D);
      for (int64_t i = 0; i < rows; ++i) {
        const T* qi = q.at(b, h, t0 + i);
        for (int64_t c = 0; c < D; ++c) qt[size_t(c * kBr + i)] = qi[c] * scale;
      }
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), T(0));
      std::fill(acc.begin(), acc.begin() + rows * D, T(0));
      T* St = st.data();
      for (int64_t s0 = 0; s0 < kend; s0 += kBc) {
        const Pair p{t0, rows, s0, std::min(kBc, kend - s0), off, d.causal};
        const bool full = p.full();
        const T* K0 = k.at(b, hk, s0);
        prefetch_rows(v.at(b, hk, s0), p.cols, v.row, D);
        if (s0 + kBc < kend) prefetch_rows(k.at(b, hk, s0 + kBc), std::min(kBc, kend - s0 - kBc), k.row, D);
        // Sᵀ [cols, rows]. Every key of the block is seen by the block's last query.
        const int64_t js = full ? p.cols : kSub;
        for (int64_t j0 = 0; j0 < p.cols; j0 += js) {
          const int64_t jn = std::min(js, p.cols - j0), i0 = p.first_query(j0);
          block_gemm(jn, rows - i0, D, K0 + j0 * k.row, k.row, 1, qt.data() + i0, kBr, St + j0 * kBr + i0, kBr,
                     false);
          if (!full)
            for (int64_t j = j0; j < j0 + jn; ++j) std::fill(St + j * kBr, St + j * kBr + p.first_query(j), neg_inf);
        }
        // Online softmax, one lane per query.
        std::copy(m.begin(), m.begin() + rows, mnew.begin());
        for (int64_t j = 0; j < p.cols; ++j) {
          const T* Sj = St + j * kBr;
#pragma omp simd
          for (int64_t i = 0; i < rows; ++i) mnew[size_t(i)] = vmax(mnew[size_t(i)], Sj[i]);
        }
        for (int64_t i = 0; i < rows; ++i) {
          // A query that has seen no key yet keeps m = -inf; 0 as its reference makes every exp 0.
          ref[size_t(i)] = mnew[size_t(i)] == neg_inf ? T(0) : mnew[size_t(i)];
          alpha[size_t(i)] = vexp(m[size_t(i)] - ref[size_t(i)]);
          l[size_t(i)] *= alpha[size_t(i)];
          m[size_t(i)] = mnew[size_t(i)];
        }
        for (int64_t j = 0; j < p.cols; ++j) {
          T* Sj = St + j * kBr;
#pragma omp simd
          for (int64_t i = 0; i < rows; ++i) {
            const T e = vexp(Sj[i] - ref[size_t(i)]);
            Sj[i] = e;
            l[size_t(i)] += e;
          }
        }
        for (int64_t i = 0; i < rows; ++i) {
          const T a = alpha[size_t(i)];
          if (a == T(1)) continue;
          T* Ai = acc.data() + i * D;
#pragma omp simd
          for (int64_t c = 0; c < D; ++c) Ai[c] *= a;
        }
        // O += P V, P read through Sᵀ; on the diagonal each group of queries only over the keys it sees.
        const int64_t is = full ? rows : kSub;
        for (int64_t i0 = 0; i0 < rows; i0 += is) {
          const int64_t in = std::min(is, rows - i0), jn = p.keys_seen(i0 + in - 1);
          block_gemm(in, D, jn, St + i0, 1, kBr, v.at(b, hk, s0), v.row, acc.data() + i0 * D, D, true);
        }
      }
      for (int64_t i = 0; i < rows; ++i) {
        const T li = l[size_t(i)];
        const T inv = li > T(0) ? T(1) / li : T(0);
        const T* Ai = acc.data() + i * D;
        T* Oi = o.at(b, h, t0 + i);
#pragma omp simd
        for (int64_t c = 0; c < D; ++c) Oi[c] = Ai[c] * inv;
        if (lse) lse[bh * d.T + t0 + i] = li > T(0) ? m[size_t(i)] + std::log(li) : neg_inf;
      }
    }
  }
}

template <typename T>
void backward_typed(const AttentionDims& d, HeadRows<const T> q, HeadRows<const T> k, HeadRows<const T> v,
                    HeadRows<const T> o, const T* lse, HeadRows<const T> dout, HeadRows<T> dq, HeadRows<T> dk,
                    HeadRows<T> dv) {
  const int64_t G = d.H / d.Hkv, D = d.D, off = d.S - d.T;
  const int64_t nkb = (d.S + kBc - 1) / kBc;
  const int64_t units = d.B * d.Hkv;
  const T scale = T(d.scale);
  const int64_t row_grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(D, 1));

  // Split key blocks over more tasks only when there are fewer units than threads;
  // each split then accumulates dQ into its own buffer.
  const int64_t threads = omp_get_max_threads();
  const int64_t nsplit = std::clamp<int64_t>((threads + units - 1) / std::max<int64_t>(units, 1), 1,
                                             std::max<int64_t>(nkb, 1));
  const int64_t group_q = G * d.T * D;  // dQ elements of one unit
  std::vector<T> partial(nsplit > 1 ? size_t(units * nsplit * group_q) : 0, T(0));
  const int64_t tasks = units * nsplit;

#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> kt(size_t(D * kBc)), vt(size_t(D * kBc)), P(size_t(kBr * kBc)), dS(size_t(kBr * kBc));
    std::vector<T> delta(size_t(G * d.T));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t unit = task / nsplit, split = task % nsplit;
      const int64_t b = unit / d.Hkv, hk = unit % d.Hkv;
      const int64_t dq_row = nsplit > 1 ? D : dq.row;
      auto dq_at = [&](int64_t g, int64_t t) {
        return nsplit > 1 ? partial.data() + task * group_q + (g * d.T + t) * D : dq.at(b, hk * G + g, t);
      };
      // rowsum(dO * O) of the group's query rows (the softmax-backward correction term),
      // and dQ zeroed, here rather than in passes of their own: the rows are then in the
      // cache for the products that follow.
      for (int64_t g = 0; g < G; ++g)
        for (int64_t t = 0; t < d.T; ++t) {
          if (t + 8 < d.T) {  // a few rows ahead, so that the misses overlap
            prefetch_rows(dout.at(b, hk * G + g, t + 8), 1, 0, D);
            prefetch_rows(o.at(b, hk * G + g, t + 8), 1, 0, D);
          }
          const T *dor = dout.at(b, hk * G + g, t), *orow = o.at(b, hk * G + g, t);
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t c = 0; c < D; ++c) sum += dor[c] * orow[c];
          delta[size_t(g * d.T + t)] = sum;
          if (nsplit == 1) std::fill(dq_at(g, t), dq_at(g, t) + D, T(0));
        }
      for (int64_t jb = split; jb < nkb; jb += nsplit) {
        const int64_t s0 = jb * kBc, cols = std::min(kBc, d.S - s0);
        const T* K0 = k.at(b, hk, s0);
        const T* V0 = v.at(b, hk, s0);
        if (jb + nsplit < nkb) {  // the next key block's rows, while this one is worked on
          const int64_t next = std::min(kBc, d.S - s0 - nsplit * kBc);
          prefetch_rows(k.at(b, hk, s0 + nsplit * kBc), next, k.row, D);
          prefetch_rows(v.at(b, hk, s0 + nsplit * kBc), next, v.row, D);
        }
        for (int64_t j = 0; j < cols; ++j) {
          const T *kj = K0 + j * k.row, *vj = V0 + j * v.row;
          for (int64_t c = 0; c < D; ++c) {
            kt[size_t(c * kBc + j)] = kj[c];
            vt[size_t(c * kBc + j)] = vj[c];
          }
        }
        // dK and dV accumulate in the outputs' rows, which this task alone writes.
        T* dK = dk.at(b, hk, s0);
        T* dV = dv.at(b, hk, s0);
        for (int64_t j = 0; j < cols; ++j) {
          std::fill(dK + j * dk.row, dK + j * dk.row + D, T(0));
          std::fill(dV + j * dv.row, dV + j * dv.row + D, T(0));
        }
        // The first query that sees key s0 is s0 - (S - T).
        const int64_t tfirst = d.causal ? std::max<int64_t>(0, s0 - off) : 0;
        for (int64_t g = 0; g < G; ++g) {
          const int64_t h = hk * G + g, bh = b * d.H + h;
          for (int64_t t0 = (tfirst / kBr) * kBr; t0 < d.T; t0 += kBr) {
            const Pair p{t0, std::min(kBr, d.T - t0), s0, cols, off, d.causal};
            const int64_t rows = p.rows;
            const bool full = p.full();
            const T* Q0 = q.at(b, h, t0);
            const T* dO0 = dout.at(b, h, t0);
            if (t0 + kBr < d.T) {
              const int64_t next = std::min(kBr, d.T - t0 - kBr);
              prefetch_rows(q.at(b, h, t0 + kBr), next, q.row, D);
              prefetch_rows(dout.at(b, h, t0 + kBr), next, dout.row, D);
            }
            const T* Li = lse + bh * d.T + t0;
            const T* Di = delta.data() + g * d.T + t0;
            // S = Q Kᵀ and dP = dO Vᵀ (into dS); on the diagonal each group of queries only
            // over the keys it sees.
            const int64_t is = full ? rows : kSub;
            for (int64_t i0 = 0; i0 < rows; i0 += is) {
              const int64_t in = std::min(is, rows - i0), jn = p.keys_seen(i0 + in - 1);
              block_gemm(in, jn, D, Q0 + i0 * q.row, q.row, 1, kt.data(), kBc, P.data() + i0 * kBc, kBc, false);
              block_gemm(in, jn, D, dO0 + i0 * dout.row, dout.row, 1, vt.data(), kBc, dS.data() + i0 * kBc, kBc,
                         false);
            }
            // P = exp(scale S - lse), dS = scale P (dP - delta); zero where masked.
            for (int64_t i = 0; i < rows; ++i) {
              const int64_t nv = p.keys_seen(i);
              T* Pi = P.data() + i * kBc;
              T* dSi = dS.data() + i * kBc;
              const T li = Li[i], di = Di[i];
#pragma omp simd
              for (int64_t c = 0; c < nv; ++c) {
                const T e = vexp(Pi[c] * scale - li);
                Pi[c] = e;
                dSi[c] = scale * e * (dSi[c] - di);
              }
              std::fill(Pi + nv, Pi + cols, T(0));
              std::fill(dSi + nv, dSi + cols, T(0));
            }
            // dV += Pᵀ dO and dK += dSᵀ Q; on the diagonal each group of keys only over the
            // queries that see it.
            const int64_t js = full ? cols : kSub;
            for (int64_t j0 = 0; j0 < cols; j0 += js) {
              const int64_t jn = std::min(js, cols - j0), i0 = p.first_query(j0);
              block_gemm(jn, D, rows - i0, P.data() + i0 * kBc + j0, 1, kBc, dO0 + i0 * dout.row, dout.row,
                         dV + j0 * dv.row, dv.row, true);
              block_gemm(jn, D, rows - i0, dS.data() + i0 * kBc + j0, 1, kBc, Q0 + i0 * q.row, q.row,
                         dK + j0 * dk.row, dk.row, true);
            }
            // dQ += dS K.
            for (int64_t i0 = 0; i0 < rows; i0 += is) {
              const int64_t in = std::min(is, rows - i0), jn = p.keys_seen(i0 + in - 1);
              block_gemm(in, D, jn, dS.data() + i0 * kBc, kBc, 1, K0, k.row, dq_at(g, t0 + i0), dq_row, true);
            }
          }
        }
      }
    }
  }
  if (nsplit > 1) {
    parallel_for(units * G * d.T, row_grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t unit = r / (G * d.T), g = (r / d.T) % G, t = r % d.T;
        T* out = dq.at(unit / d.Hkv, (unit % d.Hkv) * G + g, t);
        const T* first = partial.data() + unit * nsplit * group_q + (g * d.T + t) * D;
        std::copy(first, first + D, out);
        for (int64_t sp = 1; sp < nsplit; ++sp) {
          const T* part = first + sp * group_q;
#pragma omp simd
          for (int64_t c = 0; c < D; ++c) out[c] += part[c];
        }
      }
    });
  }
}

// A 4-D operand as HeadRows: as it lies when its last dimension is contiguous
// and its dtype is the compute dtype, else through a contiguous copy (kept in
// `keep`). 16-bit inputs compute in float32.
template <typename T>
HeadRows<const T> rows_of(const Tensor& t, Tensor& keep) {
  const DType want = t.dtype() == DType::f64 ? DType::f64 : DType::f32;
  keep = t;
  if (t.dtype() != want || (t.strides()[3] != 1 && t.shape(3) > 1)) {
    keep = Tensor::empty(t.shape(), want, t.device());
    copy_cast(t, keep);
  }
  const Strides& s = keep.strides();
  return {keep.data<T>(), s[0], s[1], s[2]};
}

template <typename T>
HeadRows<T> out_rows(const Tensor& t) {
  const Strides& s = t.strides();
  return {t.data<T>(), s[0], s[1], s[2]};
}

template <typename T>
void forward_tensors(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                     Tensor& lse) {
  Tensor kq, kk, kv;
  Tensor of = o.dtype() == dtype_of<T>::value ? o : Tensor::empty(o.shape(), dtype_of<T>::value, o.device());
  attention_forward(dims, rows_of<T>(q, kq), rows_of<T>(k, kk), rows_of<T>(v, kv), out_rows<T>(of), lse.data<T>());
  if (!of.same(o)) copy_cast(of, o);
}

template <typename T>
void backward_tensors(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                      const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  Tensor kq, kk, kv, ko, kd;
  auto out_buf = [&](Tensor& t) {
    return t.dtype() == dtype_of<T>::value ? t : Tensor::empty(t.shape(), dtype_of<T>::value, t.device());
  };
  Tensor dqf = out_buf(dq), dkf = out_buf(dk), dvf = out_buf(dv);
  attention_backward(dims, rows_of<T>(q, kq), rows_of<T>(k, kk), rows_of<T>(v, kv), rows_of<T>(o, ko),
                     lse.data<T>(), rows_of<T>(dout, kd), out_rows<T>(dqf), out_rows<T>(dkf), out_rows<T>(dvf));
  if (!dqf.same(dq)) copy_cast(dqf, dq);
  if (!dkf.same(dk)) copy_cast(dkf, dk);
  if (!dvf.same(dv)) copy_cast(dvf, dv);
}

}  // namespace

void attention_forward(const AttentionDims& dims, HeadRows<const float> q, HeadRows<const float> k,
                       HeadRows<const float> v, HeadRows<float> o, float* lse) {
  forward_typed<float>(dims, q, k, v, o, lse);
}
void attention_forward(const AttentionDims& dims, HeadRows<const double> q, HeadRows<const double> k,
                       HeadRows<const double> v, HeadRows<double> o, double* lse) {
  forward_typed<double>(dims, q, k, v, o, lse);
}
void attention_backward(const AttentionDims& dims, HeadRows<const float> q, HeadRows<const float> k,
                        HeadRows<const float> v, HeadRows<const float> o, const float* lse,
                        HeadRows<const float> dout, HeadRows<float> dq, HeadRows<float> dk, HeadRows<float> dv) {
  backward_typed<float>(dims, q, k, v, o, lse, dout, dq, dk, dv);
}
void attention_backward(const AttentionDims& dims, HeadRows<const double> q, HeadRows<const double> k,
                        HeadRows<const double> v, HeadRows<const double> o, const double* lse,
                        HeadRows<const double> dout, HeadRows<double> dq, HeadRows<double> dk,
                        HeadRows<double> dv) {
  backward_typed<double>(dims, q, k, v, o, lse, dout, dq, dk, dv);
}

void attention_forward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                       Tensor& lse) {
  if (o.numel() == 0) return;
  if (q.dtype() == DType::f64) forward_tensors<double>(dims, q, k, v, o, lse);
  else forward_tensors<float>(dims, q, k, v, o, lse);
}

void attention_backward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  if (dq.numel() == 0 && dk.numel() == 0) return;
  if (q.dtype() == DType::f64) backward_tensors<double>(dims, q, k, v, o, lse, dout, dq, dk, dv);
  else backward_tensors<float>(dims, q, k, v, o, lse, dout, dq, dk, dv);
}

}  // namespace ember::cpu
