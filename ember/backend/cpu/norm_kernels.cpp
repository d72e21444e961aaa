// Layer-norm and RMS-norm kernels. A row (C elements) stays in L1 across the
// statistics pass and the output pass, so memory sees x read once and y written
// once. Statistics use the two-pass mean/variance (stable for rows with a large
// mean) in compute_t<T>. The backward pass computes dx, dweight and dbias in one
// sweep; dweight/dbias come from per-thread partial sums added at the end, so
// threads never share a cache line while accumulating.
#include "ember/backend/cpu/norm_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ember/backend/cpu/loops.h"

namespace ember::cpu {
namespace {

template <typename T, bool kRms, bool kWeight, bool kBias>
void forward_rows(const T* x, const T* w, const T* b, double eps, T* y, compute_t<T>* mean, compute_t<T>* rstd,
                  int64_t rows, int64_t C) {
  using A = compute_t<T>;
  parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      A mu = 0, ss = 0;
      if constexpr (!kRms) {
        A s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < C; ++i) s += A(xr[i]);
        mu = s / A(C);
      }
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < C; ++i) {
        A d = A(xr[i]) - mu;
        ss += d * d;
      }
      A rs = A(1) / std::sqrt(ss / A(C) + A(eps));
      if constexpr (!kRms) mean[r] = mu;
      rstd[r] = rs;
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) {
        A v = (A(xr[i]) - mu) * rs;
        if constexpr (kWeight) v *= A(w[i]);
        if constexpr (kBias) v += A(b[i]);
        yr[i] = T(v);
      }
    }
  });
}

template <typename T, bool kRms, bool kWeight>
void backward_rows(const T* x, const T* w, const compute_t<T>* mean, const compute_t<T>* rstd, const T* g, T* dx,
                   T* dw, T* db, int64_t rows, int64_t C) {
  using A = compute_t<T>;
  const bool want_dw = dw != nullptr, want_db = db != nullptr;
  const bool partials = want_dw || want_db;
  int threads = omp_get_max_threads();
  int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(C, 1));
  int64_t pieces = std::max<int64_t>(1, std::min<int64_t>(threads, (rows + grain - 1) / grain));
  // Per piece: C partial dweight sums then C partial dbias sums.
  std::vector<A> part(partials ? size_t(pieces * 2 * C) : 0, A(0));
  const A inv_c = A(1) / A(C);

#pragma omp parallel for schedule(static) if (pieces > 1)
  for (int64_t p = 0; p < pieces; ++p) {
    A* pdw = partials ? part.data() + p * 2 * C : nullptr;
    A* pdb = partials ? pdw + C : nullptr;
    int64_t r0 = rows * p / pieces, r1 = rows * (p + 1) / pieces;
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      const T* gr = g + r * C;
      T* dr = dx + r * C;
      const A mu = kRms ? A(0) : mean[r];
      const A rs = rstd[r];
      A sum_gw = 0, sum_gwx = 0;
#pragma omp simd reduction(+ : sum_gw, sum_gwx)
      for (int64_t i = 0; i < C; ++i) {
        A xh = (A(xr[i]) - mu) * rs;
        A gw = kWeight ? A(gr[i]) * A(w[i]) : A(gr[i]);
        sum_gw += gw;
        sum_gwx += gw * xh;
      }
      const A a = kRms ? A(0) : sum_gw * inv_c;
      const A c = sum_gwx * inv_c;
      if (partials) {
#pragma omp simd
        for (int64_t i = 0; i < C; ++i) {
          A xh = (A(xr[i]) - mu) * rs;
          A gw = kWeight ? A(gr[i]) * A(w[i]) : A(gr[i]);
          dr[i] = T(rs * (gw - a - xh * c));
          pdw[i] += A(gr[i]) * xh;
          pdb[i] += A(gr[i]);
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < C; ++i) {
          A xh = (A(xr[i]) - mu) * rs;
          A gw = kWeight ? A(gr[i]) * A(w[i]) : A(gr[i]);
          dr[i] = T(rs * (gw - a - xh * c));
        }
      }
    }
  }
  if (!partials) return;
  for (int64_t i = 0; i < C; ++i) {
    A sw = 0, sb = 0;
    for (int64_t p = 0; p < pieces; ++p) {
      sw += part[size_t(p * 2 * C + i)];
      sb += part[size_t(p * 2 * C + C + i)];
    }
    if (want_dw) dw[i] = T(sw);
    if (want_db) db[i] = T(sb);
  }
}

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

}  // namespace

void norm_forward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  int64_t C = x.ndim() == 0 ? 1 : x.shape().back();
  int64_t rows = C == 0 ? 0 : x.numel() / C;
  visit_floating(x.dtype(), op, [&]<typename T>() {
    using A = compute_t<T>;
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pw = ptr_or_null<T>(weight);
    const T* pb = ptr_or_null<T>(bias);
    T* py = static_cast<T*>(y.raw_data());
    A* pm = mean.defined() ? static_cast<A*>(mean.raw_data()) : nullptr;
    A* pr = static_cast<A*>(rstd.raw_data());
    auto run = [&]<bool kRms, bool kW, bool kB>() { forward_rows<T, kRms, kW, kB>(px, pw, pb, eps, py, pm, pr, rows, C); };
    if (rms) {
      if (pw) run.template operator()<true, true, false>();
      else run.template operator()<true, false, false>();
    } else if (pw && pb) {
      run.template operator()<false, true, true>();
    } else if (pw) {
      run.template operator()<false, true, false>();
    } else if (pb) {
      run.template operator()<false, false, true>();
    } else {
      run.template operator()<false, false, false>();
    }
  });
}

void norm_backward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                   const Tensor& g, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const char* op = rms ? "rms_norm_backward" : "layer_norm_backward";
  int64_t C = x.shape().back();
  int64_t rows = C == 0 ? 0 : x.numel() / C;
  visit_floating(x.dtype(), op, [&]<typename T>() {
    using A = compute_t<T>;
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pw = ptr_or_null<T>(weight);
    const A* pm = mean.defined() ? static_cast<const A*>(mean.raw_data()) : nullptr;
    const A* pr = static_cast<const A*>(rstd.raw_data());
    const T* pg = static_cast<const T*>(g.raw_data());
    T* pdx = static_cast<T*>(dx.raw_data());
    T* pdw = dweight.defined() ? static_cast<T*>(dweight.raw_data()) : nullptr;
    T* pdb = dbias.defined() ? static_cast<T*>(dbias.raw_data()) : nullptr;
    if (rows == 0) {  // sums over no rows
      for (int64_t i = 0; i < C; ++i) {
        if (pdw) pdw[i] = T(0);
        if (pdb) pdb[i] = T(0);
      }
      return;
    }
    auto run = [&]<bool kRms, bool kW>() { backward_rows<T, kRms, kW>(px, pw, pm, pr, pg, pdx, pdw, pdb, rows, C); };
    if (rms) {
      if (pw) run.template operator()<true, true>();
      else run.template operator()<true, false>();
    } else if (pw) {
      run.template operator()<false, true>();
    } else {
      run.template operator()<false, false>();
    }
  });
}

}  // namespace ember::cpu
