// Flash-attention kernels for the CPU.
//
// Forward: one task per (batch, head, block of kBr queries). For each block of
// kBc keys the task forms the kBr x kBc score block, folds it into a running
// row max m and row sum l (online softmax: earlier partial outputs are rescaled
// by exp(m_old - m_new)) and accumulates P V. Only the row logsumexp m + log l is
// kept for the backward pass.
//
// Backward (FlashAttention-2): one task per (batch, kv head), optionally split
// over key blocks when there are fewer such units than threads. A task owns its
// key blocks' dK and dV and all query heads of its group, so nothing is shared
// between threads except split partial dQ buffers, which are summed at the end.
// For each key block and each query block it recomputes P = exp(S - lse), then
//   dV += P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),
//   dQ += scale dS K,  dK += scale dS^T Q.
//
// The block products go through cpu::gemm. Register-tiled loops were measured
// against it at T = 256, D = 64: as fast on a lone 64x64x64 block, but they
// need transposed keys, and end to end the gemm path was as fast or faster.
#include "ember/backend/cpu/attention_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/backend/cpu/loops.h"
#include "ember/backend/cpu/softmax_kernels.h"

namespace ember::cpu {
namespace {

constexpr int64_t kBr = 64;  // queries per block
constexpr int64_t kBc = 64;  // keys per block

// Number of keys of the block starting at s0 (cols wide) that query t may see.
inline int64_t visible_keys(const AttentionDims& d, int64_t t, int64_t s0, int64_t cols) {
  if (!d.causal) return cols;
  return std::clamp<int64_t>(t + (d.S - d.T) - s0 + 1, 0, cols);
}

template <typename T>
void forward_typed(const AttentionDims& d, const T* q, const T* k, const T* v, T* o, T* lse) {
  const int64_t G = d.H / d.Hkv, D = d.D;
  const int64_t nqb = (d.T + kBr - 1) / kBr;
  const int64_t tasks = d.B * d.H * nqb;
  const T scale = T(d.scale);
  const T neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> sbuf(size_t(kBr * kBc)), acc(size_t(kBr * D)), m(kBr), l(kBr);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t qb = task % nqb, bh = task / nqb;
      const int64_t b = bh / d.H, h = bh % d.H, hk = h / G;
      const int64_t t0 = qb * kBr, rows = std::min(kBr, d.T - t0);
      const T* Q = q + (bh * d.T + t0) * D;
      const T* K = k + (b * d.Hkv + hk) * d.S * D;
      const T* V = v + (b * d.Hkv + hk) * d.S * D;
      // Keys after the last one the block's last query may see are skipped entirely.
      const int64_t kend = d.causal ? std::clamp<int64_t>(t0 + rows + (d.S - d.T), 0, d.S) : d.S;
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), T(0));
      std::fill(acc.begin(), acc.begin() + rows * D, T(0));
      for (int64_t s0 = 0; s0 < kend; s0 += kBc) {
        const int64_t cols = std::min(kBc, kend - s0);
        gemm(false, true, rows, cols, D, scale, Q, D, K + s0 * D, D, T(0), sbuf.data(), cols);  // S = s Q K^T
        for (int64_t i = 0; i < rows; ++i) {
          T* Si = sbuf.data() + i * cols;
          const int64_t nv = visible_keys(d, t0 + i, s0, cols);
          if (nv == 0) {  // nothing visible in this block: contributes nothing
            std::fill(Si, Si + cols, T(0));
            continue;
          }
          const T mx = max_of(Si, nv);
          const T mnew = std::max(m[size_t(i)], mx);
          const T alpha = vexp(m[size_t(i)] - mnew);  // 0 on the first visible block
          T rs = 0;
#pragma omp simd reduction(+ : rs)
          for (int64_t j = 0; j < nv; ++j) {
            T p = vexp(Si[j] - mnew);
            Si[j] = p;
            rs += p;
          }
          std::fill(Si + nv, Si + cols, T(0));
          l[size_t(i)] = l[size_t(i)] * alpha + rs;
          m[size_t(i)] = mnew;
          if (alpha != T(1)) {
            T* Ai = acc.data() + i * D;
#pragma omp simd
            for (int64_t c = 0; c < D; ++c) Ai[c] *= alpha;
          }
        }
        gemm(false, false, rows, D, cols, T(1), sbuf.data(), cols, V + s0 * D, D, T(1), acc.data(), D);  // O += P V
      }
      T* O = o + (bh * d.T + t0) * D;
      T* L = lse + bh * d.T + t0;
      for (int64_t i = 0; i < rows; ++i) {
        const T li = l[size_t(i)];
        const T inv = li > T(0) ? T(1) / li : T(0);
        const T* Ai = acc.data() + i * D;
        T* Oi = O + i * D;
#pragma omp simd
        for (int64_t c = 0; c < D; ++c) Oi[c] = Ai[c] * inv;
        L[i] = li > T(0) ? m[size_t(i)] + std::log(li) : neg_inf;
      }
    }
  }
}

template <typename T>
void backward_typed(const AttentionDims& d, const T* q, const T* k, const T* v, const T* o, const T* lse,
                    const T* dout, T* dq, T* dk, T* dv) {
  const int64_t G = d.H / d.Hkv, D = d.D;
  const int64_t nkb = (d.S + kBc - 1) / kBc;
  const int64_t units = d.B * d.Hkv;
  const T scale = T(d.scale);

  // rowsum(dO * O) per query row: the softmax-backward correction term.
  std::vector<T> delta(size_t(d.B * d.H * d.T));
  parallel_for(d.B * d.H * d.T, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(D, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   T s = 0;
#pragma omp simd reduction(+ : s)
                   for (int64_t c = 0; c < D; ++c) s += dout[r * D + c] * o[r * D + c];
                   delta[size_t(r)] = s;
                 }
               });

  // Split key blocks over more tasks only when there are fewer units than threads;
  // each split then accumulates dQ into its own buffer.
  const int64_t threads = omp_get_max_threads();
  const int64_t nsplit = std::clamp<int64_t>((threads + units - 1) / std::max<int64_t>(units, 1), 1,
                                             std::max<int64_t>(nkb, 1));
  const int64_t group_q = G * d.T * D;  // dQ elements of one unit
  std::vector<T> partial(nsplit > 1 ? size_t(units * nsplit * group_q) : 0, T(0));
  if (nsplit == 1) std::fill(dq, dq + d.B * d.H * d.T * D, T(0));
  const int64_t tasks = units * nsplit;

#pragma omp parallel if (tasks > 1)
  {
    std::vector<T> P(size_t(kBr * kBc)), dP(size_t(kBr * kBc)), dK(size_t(kBc * D)), dV(size_t(kBc * D));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t unit = task / nsplit, split = task % nsplit;
      const int64_t b = unit / d.Hkv, hk = unit % d.Hkv;
      T* dQ = nsplit > 1 ? partial.data() + task * group_q : dq + (b * d.H + hk * G) * d.T * D;
      for (int64_t j = split; j < nkb; j += nsplit) {
        const int64_t s0 = j * kBc, cols = std::min(kBc, d.S - s0);
        const T* Kj = k + (unit * d.S + s0) * D;
        const T* Vj = v + (unit * d.S + s0) * D;
        std::fill(dK.begin(), dK.begin() + cols * D, T(0));
        std::fill(dV.begin(), dV.begin() + cols * D, T(0));
        // The first query that sees key s0 is s0 - (S - T).
        const int64_t tfirst = d.causal ? std::max<int64_t>(0, s0 - (d.S - d.T)) : 0;
        for (int64_t g = 0; g < G; ++g) {
          const int64_t bh = b * d.H + hk * G + g;
          for (int64_t t0 = (tfirst / kBr) * kBr; t0 < d.T; t0 += kBr) {
            const int64_t rows = std::min(kBr, d.T - t0);
            const T* Qi = q + (bh * d.T + t0) * D;
            const T* dOi = dout + (bh * d.T + t0) * D;
            const T* Li = lse + bh * d.T + t0;
            const T* Di = delta.data() + bh * d.T + t0;
            gemm(false, true, rows, cols, D, scale, Qi, D, Kj, D, T(0), P.data(), cols);  // S = s Q K^T
            for (int64_t i = 0; i < rows; ++i) {
              T* Pi = P.data() + i * cols;
              const int64_t nv = visible_keys(d, t0 + i, s0, cols);
              const T li = Li[i];
#pragma omp simd
              for (int64_t c = 0; c < nv; ++c) Pi[c] = vexp(Pi[c] - li);
              std::fill(Pi + nv, Pi + cols, T(0));
            }
            gemm(true, false, cols, D, rows, T(1), P.data(), cols, dOi, D, T(1), dV.data(), D);  // dV += P^T dO
            gemm(false, true, rows, cols, D, T(1), dOi, D, Vj, D, T(0), dP.data(), cols);       // dP = dO V^T
            for (int64_t i = 0; i < rows; ++i) {
              T* dPi = dP.data() + i * cols;
              const T* Pi = P.data() + i * cols;
              const T di = Di[i];
#pragma omp simd
              for (int64_t c = 0; c < cols; ++c) dPi[c] = Pi[c] * (dPi[c] - di);
            }
            gemm(false, false, rows, D, cols, scale, dP.data(), cols, Kj, D, T(1), dQ + (g * d.T + t0) * D, D);  // dQ += s dS K
            gemm(true, false, cols, D, rows, scale, dP.data(), cols, Qi, D, T(1), dK.data(), D);  // dK += s dS^T Q
          }
        }
        std::copy(dK.begin(), dK.begin() + cols * D, dk + (unit * d.S + s0) * D);
        std::copy(dV.begin(), dV.begin() + cols * D, dv + (unit * d.S + s0) * D);
      }
    }
  }
  if (nsplit > 1) {
    parallel_for(units * group_q, kParallelGrain, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t unit = e / group_q, off = e % group_q;
        T s = 0;
        for (int64_t sp = 0; sp < nsplit; ++sp) s += partial[size_t((unit * nsplit + sp) * group_q + off)];
        const int64_t b = unit / d.Hkv, hk = unit % d.Hkv;
        dq[(b * d.H + hk * G) * d.T * D + off] = s;
      }
    });
  }
}

// 16-bit inputs run through the float kernels on converted copies.
Tensor as_float(const Tensor& t) {
  if (t.dtype() == DType::f32 || t.dtype() == DType::f64) return t;
  Tensor f = Tensor::empty(t.shape(), DType::f32, t.device());
  copy_cast(t, f);
  return f;
}

}  // namespace

void attention_forward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                       Tensor& lse) {
  if (o.numel() == 0) return;
  Tensor qf = as_float(q), kf = as_float(k), vf = as_float(v);
  Tensor of = o.dtype() == qf.dtype() ? o : Tensor::empty(o.shape(), qf.dtype(), o.device());
  if (qf.dtype() == DType::f64) {
    forward_typed<double>(dims, qf.data<double>(), kf.data<double>(), vf.data<double>(), of.data<double>(),
                          lse.data<double>());
  } else {
    forward_typed<float>(dims, qf.data<float>(), kf.data<float>(), vf.data<float>(), of.data<float>(),
                         lse.data<float>());
  }
  if (!of.same(o)) copy_cast(of, o);
}

void attention_backward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  if (dq.numel() == 0 && dk.numel() == 0) return;
  Tensor qf = as_float(q), kf = as_float(k), vf = as_float(v), of = as_float(o), df = as_float(dout);
  auto out_buf = [&](Tensor& t) { return t.dtype() == qf.dtype() ? t : Tensor::empty(t.shape(), qf.dtype(), t.device()); };
  Tensor dqf = out_buf(dq), dkf = out_buf(dk), dvf = out_buf(dv);
  if (qf.dtype() == DType::f64) {
    backward_typed<double>(dims, qf.data<double>(), kf.data<double>(), vf.data<double>(), of.data<double>(),
                           lse.data<double>(), df.data<double>(), dqf.data<double>(), dkf.data<double>(),
                           dvf.data<double>());
  } else {
    backward_typed<float>(dims, qf.data<float>(), kf.data<float>(), vf.data<float>(), of.data<float>(),
                          lse.data<float>(), df.data<float>(), dqf.data<float>(), dkf.data<float>(),
                          dvf.data<float>());
  }
  if (!dqf.same(dq)) copy_cast(dqf, dq);
  if (!dkf.same(dk)) copy_cast(dkf, dk);
  if (!dvf.same(dv)) copy_cast(dvf, dv);
}

}  // namespace ember::cpu
