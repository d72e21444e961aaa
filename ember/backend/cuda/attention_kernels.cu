// Scaled dot-product attention on CUDA (see attention_kernels.h): cuBLAS for
// the four kinds of products, and three small kernels: the masked row softmax
// (with the logsumexp), rowsum(dO O), and the elementwise P / dS of the backward.
//
// The query heads that share a kv head are adjacent, so in a [B, H, T, D]
// operand whose heads follow one another (head stride = T * row stride) they
// form one [G * T, D] matrix: every product is then a batch over (b, kv head) of
// plain GEMMs, the group's score rows stacked as a [G * T, S] matrix, and the
// sums over the group that dK and dV need are the GEMMs' own inner sums.
#include "ember/backend/cuda/attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ember/backend/cuda/block_reduce.cuh"
#include "ember/backend/cuda/elementwise_kernels.h"
#include "ember/backend/cuda/kernel_utils.cuh"
#include "ember/backend/cuda/matmul_kernels.h"

namespace ember::cuda {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";
constexpr const char* kBackOp = "scaled_dot_product_attention_backward";
constexpr int64_t kScoreBudget = int64_t(1) << 28;  // elements per score buffer

// ---- operands ----------------------------------------------------------------

// One (b, kv head) matrix of a batch of them: element (b, g, r, c) of the
// [rows, cols] matrix of batch b, kv head g lies at p + b * sb + g * sg + r * ld + c
// (in elements of the compute type).
struct GroupMat {
  char* p = nullptr;
  int64_t ld = 1, sg = 0, sb = 0;
};

// A 4-D operand [B, Hx, R, D] whose heads are read in groups of G: in place when
// it has the compute dtype, a contiguous last dimension and (for G > 1) heads
// that follow one another, else as a contiguous copy held in `keep`.
GroupMat group_operand(const Tensor& t, int64_t G, DType ct, Tensor& keep) {
  auto fits = [&](const Tensor& x, GroupMat& m) {
    const int64_t R = x.shape(2), D = x.shape(3);
    const Strides& s = x.strides();
    if (x.dtype() != ct || (D > 1 && s[3] != 1)) return false;
    const int64_t rows = G * R;
    int64_t ld;
    if (rows <= 1) ld = std::max<int64_t>(D, 1);
    else if (R == 1) ld = s[1];  // the rows are the group's heads
    else if (G == 1 || s[1] == R * s[2]) ld = s[2];
    else return false;
    if (ld < std::max<int64_t>(D, 1)) return false;
    m.p = static_cast<char*>(x.raw_data());
    m.ld = ld;
    m.sg = G * s[1];
    m.sb = s[0];
    return true;
  };
  GroupMat m;
  keep = t;
  if (fits(t, m)) return m;
  keep = Tensor::empty(t.shape(), ct, t.device());
  copy_cast(t, keep);
  fits(keep, m);
  return m;
}

// A contiguous [B, Hx, R, D] buffer of the compute type, in groups of G heads.
GroupMat group_contiguous(void* p, int64_t Hx, int64_t G, int64_t R, int64_t D) {
  GroupMat m;
  m.p = static_cast<char*>(p);
  m.ld = std::max<int64_t>(D, 1);
  m.sg = G * R * D;
  m.sb = Hx * R * D;
  return m;
}

GroupMat offset_batch(GroupMat m, int64_t b, size_t elem) {
  m.p += b * m.sb * int64_t(elem);
  return m;
}

// C = alpha op(A) op(B) for every (b, kv head) of nb batch elements and Hkv heads:
// one strided-batched call when every operand's batch stride is Hkv group
// strides, else one call per batch element.
void grouped_gemm(DType ct, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const GroupMat& A,
                  const GroupMat& B, const GroupMat& C, int64_t nb, int64_t Hkv, const char* op) {
  const int64_t elem = int64_t(dtype_size(ct));
  auto uniform = [&](const GroupMat& x) { return x.sb == Hkv * x.sg; };
  if (nb == 1 || (uniform(A) && uniform(B) && uniform(C))) {
    gemm_batched(ct, ta, tb, m, n, k, alpha, A.p, A.ld, A.sg, B.p, B.ld, B.sg, 0.0, C.p, C.ld, C.sg, nb * Hkv, op);
    return;
  }
  for (int64_t b = 0; b < nb; ++b)
    gemm_batched(ct, ta, tb, m, n, k, alpha, A.p + b * A.sb * elem, A.ld, A.sg, B.p + b * B.sb * elem, B.ld, B.sg,
                 0.0, C.p + b * C.sb * elem, C.ld, C.sg, Hkv, op);
}

// ---- kernels -----------------------------------------------------------------

// The keys row r (query t = r % T) sees: all S, or s <= t + (S - T) when causal.
__device__ __forceinline__ int64_t keys_seen(int64_t r, int64_t T, int64_t S, bool causal) {
  if (!causal) return S;
  const int64_t n = r % T + (S - T) + 1;
  return n < 0 ? 0 : (n > S ? S : n);
}

// Row r of s [rows, S] (scaled scores) becomes its masked softmax; lse[r] = log of
// the row's sum of exp (-inf, and a zero row, when the query sees no key).
template <typename C>
__global__ void softmax_rows_kernel(C* s, C* lse, int64_t rows, int64_t T, int64_t S, bool causal) {
  const C neg_inf = -std::numeric_limits<C>::infinity();
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    C* row = s + r * S;
    const int64_t nv = keys_seen(r, T, S, causal);
    C m = neg_inf;
    for (int64_t j = threadIdx.x; j < nv; j += blockDim.x) m = MaxOp<C>::combine(m, row[j]);
    m = block_allreduce<C, MaxOp<C>>(m);
    C sum = 0;
    for (int64_t j = threadIdx.x; j < nv; j += blockDim.x) {
      const C e = ::exp(row[j] - m);
      row[j] = e;
      sum += e;
    }
    sum = block_allreduce<C, SumOp<C>>(sum);
    const C inv = sum > C(0) ? C(1) / sum : C(0);
    for (int64_t j = threadIdx.x; j < nv; j += blockDim.x) row[j] *= inv;
    for (int64_t j = nv + threadIdx.x; j < S; j += blockDim.x) row[j] = C(0);
    if (threadIdx.x == 0) lse[r] = sum > C(0) ? m + ::log(sum) : neg_inf;
  }
}

// delta[(b * H + h) * T + t] = sum_d dO[b, h, t, d] O[b, h, t, d]; one warp per row.
// Operands as (batch, head, row) strides with a contiguous last dimension.
template <typename C>
__global__ void row_dot_kernel(const C* x, int64_t xb, int64_t xh, int64_t xr, const C* y, int64_t yb, int64_t yh,
                               int64_t yr, C* out, int64_t rows, int64_t H, int64_t T, int64_t D) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    const int64_t t = r % T, h = (r / T) % H, b = r / (T * H);
    const C* xr_p = x + b * xb + h * xh + t * xr;
    const C* yr_p = y + b * yb + h * yh + t * yr;
    C acc = 0;
    for (int64_t d = lane; d < D; d += 32) acc += xr_p[d] * yr_p[d];
    acc = warp_allreduce<C, SumOp<C>>(acc);
    if (lane == 0) out[r] = acc;
  }
}

// From s = scale Q Kᵀ and dp = dO Vᵀ (both [rows, S]): s becomes P = exp(s - lse)
// and dp becomes dS = scale P (dp - delta), zero where masked.
template <typename C>
__global__ void softmax_backward_kernel(C* s, C* dp, const C* lse, const C* delta, int64_t rows, int64_t T,
                                        int64_t S, bool causal, C scale) {
  const int64_t n = rows * S;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = i / S, j = i % S;
    if (j < keys_seen(r, T, S, causal)) {
      const C p = ::exp(s[i] - lse[r]);
      s[i] = p;
      dp[i] = scale * p * (dp[i] - delta[r]);
    } else {
      s[i] = C(0);
      dp[i] = C(0);
    }
  }
}

// ---- the passes ----------------------------------------------------------------

DType compute_dtype(DType dt) { return dt == DType::f64 ? DType::f64 : DType::f32; }

int64_t batch_chunk(const cpu::AttentionDims& d) {
  const int64_t per = std::max<int64_t>(1, d.H * d.T * d.S);
  return std::clamp<int64_t>(kScoreBudget / per, 1, std::max<int64_t>(d.B, 1));
}

template <typename C>
void softmax_rows(C* s, C* lse, int64_t rows, int64_t T, int64_t S, bool causal) {
  if (rows <= 0) return;
  const int threads = int(std::clamp<int64_t>((S + 31) / 32 * 32, 32, 256));
  const unsigned grid = unsigned(std::min<int64_t>(rows, int64_t(1) << 20));
  softmax_rows_kernel<C><<<grid, threads, 0, stream()>>>(s, lse, rows, T, S, causal);
  check_launch(kOp);
}

template <typename C>
void forward_typed(const cpu::AttentionDims& d, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                   Tensor& lse) {
  const DType ct = dtype_of<C>::value;
  const size_t elem = sizeof(C);
  const int64_t G = d.H / d.Hkv;
  Tensor qk, kk, vk;
  const GroupMat Q = group_operand(q, G, ct, qk);
  const GroupMat K = group_operand(k, 1, ct, kk);
  const GroupMat V = group_operand(v, 1, ct, vk);
  Tensor of = o.dtype() == ct ? o : Tensor::empty(o.shape(), ct, o.device());
  const GroupMat O = group_contiguous(of.raw_data(), d.H, G, d.T, d.D);
  C* L = data_of<C>(lse);
  const int64_t chunk = batch_chunk(d);
  Tensor scores = Tensor::empty({std::min(chunk, d.B), d.H, d.T, d.S}, ct, q.device());
  const GroupMat P = group_contiguous(scores.raw_data(), d.H, G, d.T, d.S);
  for (int64_t b0 = 0; b0 < d.B; b0 += chunk) {
    const int64_t nb = std::min(chunk, d.B - b0);
    // scores = scale Q Kᵀ: [G T, D] x [S, D]ᵀ per (b, kv head).
    grouped_gemm(ct, false, true, G * d.T, d.S, d.D, d.scale, offset_batch(Q, b0, elem), offset_batch(K, b0, elem),
                 P, nb, d.Hkv, kOp);
    softmax_rows<C>(data_of<C>(scores), L + b0 * d.H * d.T, nb * d.H * d.T, d.T, d.S, d.causal);
    // O = P V: [G T, S] x [S, D].
    grouped_gemm(ct, false, false, G * d.T, d.D, d.S, 1.0, P, offset_batch(V, b0, elem), offset_batch(O, b0, elem),
                 nb, d.Hkv, kOp);
  }
  if (!of.same(o)) copy_cast(of, o);
}

template <typename C>
void backward_typed(const cpu::AttentionDims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                    const Tensor& lse_in, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  const DType ct = dtype_of<C>::value;
  const size_t elem = sizeof(C);
  const int64_t G = d.H / d.Hkv;
  Tensor qk, kk, vk, ok, dok;
  const GroupMat Q = group_operand(q, G, ct, qk);
  const GroupMat K = group_operand(k, 1, ct, kk);
  const GroupMat V = group_operand(v, 1, ct, vk);
  const GroupMat O = group_operand(o, G, ct, ok);
  const GroupMat dO = group_operand(dout, G, ct, dok);
  Tensor lse = lse_in;
  if (lse.dtype() != ct || !lse.is_contiguous()) {
    lse = Tensor::empty(lse_in.shape(), ct, lse_in.device());
    copy_cast(lse_in, lse);
  }
  auto out_buf = [&](Tensor& t) { return t.dtype() == ct ? t : Tensor::empty(t.shape(), ct, t.device()); };
  Tensor dqf = out_buf(dq), dkf = out_buf(dk), dvf = out_buf(dv);
  const GroupMat dQ = group_contiguous(dqf.raw_data(), d.H, G, d.T, d.D);
  const GroupMat dK = group_contiguous(dkf.raw_data(), d.Hkv, 1, d.S, d.D);
  const GroupMat dV = group_contiguous(dvf.raw_data(), d.Hkv, 1, d.S, d.D);

  // delta = rowsum(dO O), [B, H, T]. In (b, h, t) strides: a group of G heads at
  // group stride sg holds head h at h / G * sg + h % G * (sg / G); the operands'
  // head stride is sg / G (G * R rows of ld each when G > 1).
  Tensor delta = Tensor::empty({d.B, d.H, d.T}, ct, q.device());
  const int64_t rows_all = d.B * d.H * d.T;
  if (rows_all > 0) {
    const int64_t xh = O.sg / G, yh = dO.sg / G;
    const unsigned grid = unsigned(std::min<int64_t>((rows_all + 7) / 8, int64_t(1) << 20));
    row_dot_kernel<C><<<grid, 256, 0, stream()>>>(reinterpret_cast<const C*>(dO.p), dO.sb, yh, dO.ld,
                                                  reinterpret_cast<const C*>(O.p), O.sb, xh, O.ld, data_of<C>(delta),
                                                  rows_all, d.H, d.T, d.D);
    check_launch(kBackOp);
  }

  const int64_t chunk = batch_chunk(d);
  const Shape buf{std::min(chunk, d.B), d.H, d.T, d.S};
  Tensor sbuf = Tensor::empty(buf, ct, q.device());
  Tensor dpbuf = Tensor::empty(buf, ct, q.device());
  const GroupMat P = group_contiguous(sbuf.raw_data(), d.H, G, d.T, d.S);
  const GroupMat dS = group_contiguous(dpbuf.raw_data(), d.H, G, d.T, d.S);
  for (int64_t b0 = 0; b0 < d.B; b0 += chunk) {
    const int64_t nb = std::min(chunk, d.B - b0);
    const GroupMat Qb = offset_batch(Q, b0, elem), Kb = offset_batch(K, b0, elem), Vb = offset_batch(V, b0, elem);
    const GroupMat dOb = offset_batch(dO, b0, elem);
    // S = scale Q Kᵀ (as the forward computed it) and dP = dO Vᵀ.
    grouped_gemm(ct, false, true, G * d.T, d.S, d.D, d.scale, Qb, Kb, P, nb, d.Hkv, kBackOp);
    grouped_gemm(ct, false, true, G * d.T, d.S, d.D, 1.0, dOb, Vb, dS, nb, d.Hkv, kBackOp);
    const int64_t rows = nb * d.H * d.T;
    if (rows * d.S > 0) {
      softmax_backward_kernel<C><<<grid_for(rows * d.S), kThreads, 0, stream()>>>(
          data_of<C>(sbuf), data_of<C>(dpbuf), data_of<C>(lse) + b0 * d.H * d.T, data_of<C>(delta) + b0 * d.H * d.T,
          rows, d.T, d.S, d.causal, C(d.scale));
      check_launch(kBackOp);
    }
    // dV = Pᵀ dO and dK = dSᵀ Q: [G T, S]ᵀ x [G T, D], summed over the group's rows.
    grouped_gemm(ct, true, false, d.S, d.D, G * d.T, 1.0, P, dOb, offset_batch(dV, b0, elem), nb, d.Hkv, kBackOp);
    grouped_gemm(ct, true, false, d.S, d.D, G * d.T, 1.0, dS, Qb, offset_batch(dK, b0, elem), nb, d.Hkv, kBackOp);
    // dQ = dS K: [G T, S] x [S, D].
    grouped_gemm(ct, false, false, G * d.T, d.D, d.S, 1.0, dS, Kb, offset_batch(dQ, b0, elem), nb, d.Hkv, kBackOp);
  }
  if (!dqf.same(dq)) copy_cast(dqf, dq);
  if (!dkf.same(dk)) copy_cast(dkf, dk);
  if (!dvf.same(dv)) copy_cast(dvf, dv);
}

}  // namespace

void attention_forward(const cpu::AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                       Tensor& lse) {
  if (dims.B * dims.H == 0) return;
  set_device(q.device());
  if (compute_dtype(q.dtype()) == DType::f64) forward_typed<double>(dims, q, k, v, o, lse);
  else forward_typed<float>(dims, q, k, v, o, lse);
}

void attention_backward(const cpu::AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv) {
  if (dims.B * dims.Hkv == 0) return;
  set_device(q.device());
  if (compute_dtype(q.dtype()) == DType::f64) backward_typed<double>(dims, q, k, v, o, lse, dout, dq, dk, dv);
  else backward_typed<float>(dims, q, k, v, o, lse, dout, dq, dk, dv);
}

}  // namespace ember::cuda
