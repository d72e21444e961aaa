// Cached GPT inference (see gpt_runner.h).
#include "ember/infer/gpt_runner.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ember/backend/cpu/gemm.h"
#include "ember/core/error.h"
#include "ember/nn/norm.h"

namespace ember::infer {
namespace {

const float* f32_ptr(const Tensor& t, const char* what) {
  if (!t.defined()) return nullptr;
  if (t.dtype() != DType::f32 || !t.device().is_cpu() || !t.is_contiguous())
    fail("GPTRunner", what, " must be a contiguous float32 CPU tensor, got ", dtype_name(t.dtype()),
         t.is_contiguous() ? "" : " (non-contiguous)");
  return t.data<float>();
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Four dot products of w rows w0..w3 with x (length k).
inline void dot4(const float* w0, const float* w1, const float* w2, const float* w3, const float* x, int64_t k,
                 float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
  }
  float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (; i < k; ++i) s0 += w0[i] * x[i], s1 += w1[i] * x[i], s2 += w2[i] * x[i], s3 += w3[i] * x[i];
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

inline float dot(const float* a, const float* b, int64_t k) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < k; ++i) s += a[i] * b[i];
  return s;
}

// Y[n, :] = X[n, :] W^T + bias (accumulate: Y += instead), W [m, k] row-major.
// Few rows: weights are streamed once through a 4-row dot kernel (decode is
// bound by reading them); many rows: oneDNN's sgemm.
void linear_rows(const float* X, int64_t n, int64_t k, const float* W, int64_t m, const float* bias, float* Y,
                 bool accumulate) {
  if (n > 8) {
    cpu::gemm(false, true, n, m, k, 1.0f, X, k, W, k, accumulate ? 1.0f : 0.0f, Y, m);
    if (bias) {
#pragma omp parallel for schedule(static) if (n * m > 65536)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t o = 0; o < m; ++o) Y[r * m + o] += bias[o];
    }
    return;
  }
  const int64_t blocks = (m + 3) / 4;
#pragma omp parallel for schedule(static) if (m * k > 16384)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t o = b * 4;
    const int64_t cnt = std::min<int64_t>(4, m - o);
    const float* w[4];
    for (int64_t j = 0; j < 4; ++j) w[j] = W + (o + std::min(j, cnt - 1)) * k;
    for (int64_t r = 0; r < n; ++r) {
      float out[4];
      dot4(w[0], w[1], w[2], w[3], X + r * k, k, out);
      float* y = Y + r * m + o;
      for (int64_t j = 0; j < cnt; ++j) {
        const float v = out[j] + (bias ? bias[o + j] : 0.0f);
        y[j] = accumulate ? y[j] + v : v;
      }
    }
  }
}

inline float gelu_tanh(float x) {
  const float c = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
}

template <typename T> void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

GPTRunner::GPTRunner(const models::GPT& model) : cfg_(model.config()) {
  const auto& tr = *model.transformer;
  wte_ = f32_ptr(tr.wte->weight, "transformer.wte.weight");
  if (tr.wpe) wpe_ = f32_ptr(tr.wpe->weight, "transformer.wpe.weight");
  auto norm_ptrs = [&](const nn::UnaryModule& m, const float*& w, const float*& b) {
    if (auto* ln = dynamic_cast<const nn::LayerNorm*>(&m)) {
      w = f32_ptr(ln->weight, "layernorm weight");
      b = f32_ptr(ln->bias, "layernorm bias");
      if (!w) fail("GPTRunner", "a LayerNorm without affine weight is not supported");
    } else if (auto* rms = dynamic_cast<const nn::RMSNorm*>(&m)) {
      w = f32_ptr(rms->weight, "rmsnorm weight");
      b = nullptr;
    } else {
      fail("GPTRunner", "unsupported norm module ", m.type_name());
    }
  };
  auto add_bytes = [&](const Tensor& t) {
    if (t.defined()) weight_bytes_ += int64_t(t.nbytes());
  };
  for (const auto& m : *tr.h) {
    const auto& blk = static_cast<const models::Block&>(*m);
    Layer L;
    norm_ptrs(*blk.ln_1, L.ln1_w, L.ln1_b);
    norm_ptrs(*blk.ln_2, L.ln2_w, L.ln2_b);
    L.attn_w = f32_ptr(blk.attn->c_attn->weight, "c_attn.weight");
    L.attn_b = f32_ptr(blk.attn->c_attn->bias, "c_attn.bias");
    L.proj_w = f32_ptr(blk.attn->c_proj->weight, "attn.c_proj.weight");
    L.proj_b = f32_ptr(blk.attn->c_proj->bias, "attn.c_proj.bias");
    L.fc_w = f32_ptr(blk.mlp->c_fc->weight, "mlp.c_fc.weight");
    L.fc_b = f32_ptr(blk.mlp->c_fc->bias, "mlp.c_fc.bias");
    L.fc2_w = f32_ptr(blk.mlp->c_proj->weight, "mlp.c_proj.weight");
    L.fc2_b = f32_ptr(blk.mlp->c_proj->bias, "mlp.c_proj.bias");
    for (const Tensor* t : {&blk.attn->c_attn->weight, &blk.attn->c_attn->bias, &blk.attn->c_proj->weight,
                            &blk.attn->c_proj->bias, &blk.mlp->c_fc->weight, &blk.mlp->c_fc->bias,
                            &blk.mlp->c_proj->weight, &blk.mlp->c_proj->bias})
      add_bytes(*t);
    layers_.push_back(L);
  }
  norm_ptrs(*tr.ln_f, lnf_w_, lnf_b_);
  head_ = f32_ptr(model.lm_head->weight, "lm_head.weight");
  add_bytes(model.lm_head->weight);
  if (tr.rope) {
    rope_cos_ = f32_ptr(tr.rope->cos, "rope cos table");
    rope_sin_ = f32_ptr(tr.rope->sin, "rope sin table");
  }
}

void GPTRunner::norm(const float* x, int64_t rows, const float* w, const float* b, float* out) const {
  const int64_t C = cfg_.n_embd;
  const float eps = float(cfg_.norm_eps);
  const bool rms = cfg_.norm == models::NormKind::rmsnorm;
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* o = out + r * C;
    float mean = 0;
    if (!rms) {
      for (int64_t i = 0; i < C; ++i) mean += xr[i];
      mean /= float(C);
    }
    float var = 0;
    for (int64_t i = 0; i < C; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const float inv = 1.0f / std::sqrt(var / float(C) + eps);
    for (int64_t i = 0; i < C; ++i) o[i] = (xr[i] - mean) * inv * w[i] + (b ? b[i] : 0.0f);
  }
}

void GPTRunner::forward(const std::vector<SeqChunk>& chunks, std::vector<float>& logits, bool all_logits) {
  const char* op = "GPTRunner";
  const int64_t C = cfg_.n_embd, H = cfg_.n_head, Hkv = cfg_.n_kv_head, D = cfg_.head_dim(), V = cfg_.vocab_size;
  const int64_t G = H / Hkv, QKV = (H + 2 * Hkv) * D, F = cfg_.mlp_hidden();
  const bool swiglu = cfg_.mlp == models::MlpKind::swiglu;
  if (chunks.empty()) fail(op, "no sequences to run");
  int64_t N = 0, max_len = 0;
  for (size_t s = 0; s < chunks.size(); ++s) {
    const SeqChunk& c = chunks[s];
    if (!c.cache || !c.tokens || c.n_tokens <= 0) fail(op, "sequence ", s, " has no tokens or no cache");
    const KVCache& kv = *c.cache;
    if (kv.n_layer() != cfg_.n_layer || kv.n_kv_head() != Hkv || kv.head_dim() != D || kv.max_len() > cfg_.block_size)
      fail(op, "sequence ", s, "'s cache does not fit the model (layers ", kv.n_layer(), ", kv heads ", kv.n_kv_head(),
           ", head_dim ", kv.head_dim(), ", max_len ", kv.max_len(), ")");
    if (c.n_tokens > kv.remaining())
      fail(op, "sequence ", s, ": ", c.n_tokens, " new tokens at position ", kv.length(), " overflow its cache of ",
           kv.max_len(), " positions");
    for (int64_t i = 0; i < c.n_tokens; ++i)
      if (c.tokens[i] < 0 || c.tokens[i] >= V)
        fail(op, "sequence ", s, ": token id ", c.tokens[i], " outside [0, ", V, ")");
    N += c.n_tokens;
    max_len = std::max(max_len, kv.length() + c.n_tokens);
  }
  grow(x_, size_t(N * C));
  grow(h_, size_t(N * C));
  grow(qkv_, size_t(N * QKV));
  grow(att_, size_t(N * C));
  grow(fc_, size_t(N * (swiglu ? 2 * F : F)));
  grow(act_, size_t(N * F));
  row_pos_.resize(size_t(N));
  row_seq_.resize(size_t(N));
  const int threads = omp_get_max_threads();
  grow(scores_, size_t(threads * max_len));

  // Embeddings.
  {
    int64_t r = 0;
    for (size_t s = 0; s < chunks.size(); ++s)
      for (int64_t i = 0; i < chunks[s].n_tokens; ++i, ++r) {
        const int64_t pos = chunks[s].cache->length() + i;
        row_pos_[size_t(r)] = pos;
        row_seq_[size_t(r)] = int64_t(s);
        const float* e = wte_ + chunks[s].tokens[i] * C;
        float* x = x_.data() + r * C;
        if (wpe_) {
          const float* p = wpe_ + pos * C;
          for (int64_t j = 0; j < C; ++j) x[j] = e[j] + p[j];
        } else {
          std::memcpy(x, e, size_t(C) * sizeof(float));
        }
      }
  }
  const float scale = 1.0f / std::sqrt(float(D));
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const Layer& L = layers_[size_t(l)];
    norm(x_.data(), N, L.ln1_w, L.ln1_b, h_.data());
    linear_rows(h_.data(), N, C, L.attn_w, QKV, L.attn_b, qkv_.data(), false);
    // RoPE on q and k, then k and v into the caches.
#pragma omp parallel for schedule(static) if (N > 16)
    for (int64_t r = 0; r < N; ++r) {
      float* row = qkv_.data() + r * QKV;
      const int64_t pos = row_pos_[size_t(r)];
      if (rope_cos_) {
        const float* cs = rope_cos_ + pos * D;
        const float* sn = rope_sin_ + pos * D;
        const int64_t half = D / 2;
        for (int64_t hd = 0; hd < H + Hkv; ++hd) {
          float* v = row + hd * D;
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = b * cs[i + half] + a * sn[i + half];
          }
        }
      }
      KVCache& kv = *chunks[size_t(row_seq_[size_t(r)])].cache;
      for (int64_t hk = 0; hk < Hkv; ++hk) {
        std::memcpy(kv.k(l, hk) + pos * D, row + (H + hk) * D, size_t(D) * sizeof(float));
        std::memcpy(kv.v(l, hk) + pos * D, row + (H + Hkv + hk) * D, size_t(D) * sizeof(float));
      }
    }
    // Attention of each (row, query head) over its sequence's cache rows 0..pos.
#pragma omp parallel for schedule(dynamic, 4) if (N * H > 8)
    for (int64_t task = 0; task < N * H; ++task) {
      const int64_t r = task / H, hq = task % H, hk = hq / G;
      const int64_t pos = row_pos_[size_t(r)];
      const KVCache& kv = *chunks[size_t(row_seq_[size_t(r)])].cache;
      const float* q = qkv_.data() + r * QKV + hq * D;
      const float* K = kv.k(l, hk);
      const float* Vc = kv.v(l, hk);
      float* sc = scores_.data() + int64_t(omp_get_thread_num()) * max_len;
      float mx = -INFINITY;
      for (int64_t j = 0; j <= pos; ++j) {
        sc[j] = dot(q, K + j * D, D) * scale;
        mx = std::max(mx, sc[j]);
      }
      float total = 0;
      for (int64_t j = 0; j <= pos; ++j) {
        sc[j] = std::exp(sc[j] - mx);
        total += sc[j];
      }
      float* out = att_.data() + r * C + hq * D;
      std::fill(out, out + D, 0.0f);
      const float inv = 1.0f / total;
      for (int64_t j = 0; j <= pos; ++j) {
        const float p = sc[j] * inv;
        const float* vr = Vc + j * D;
#pragma omp simd
        for (int64_t i = 0; i < D; ++i) out[i] += p * vr[i];
      }
    }
    linear_rows(att_.data(), N, C, L.proj_w, C, L.proj_b, x_.data(), true);
    norm(x_.data(), N, L.ln2_w, L.ln2_b, h_.data());
    const int64_t fc_out = swiglu ? 2 * F : F;
    linear_rows(h_.data(), N, C, L.fc_w, fc_out, L.fc_b, fc_.data(), false);
#pragma omp parallel for schedule(static) if (N * F > 65536)
    for (int64_t r = 0; r < N; ++r) {
      const float* f = fc_.data() + r * fc_out;
      float* a = act_.data() + r * F;
      if (swiglu) {
        for (int64_t i = 0; i < F; ++i) {
          const float g = f[i];
          a[i] = g / (1.0f + std::exp(-g)) * f[F + i];
        }
      } else {
        for (int64_t i = 0; i < F; ++i) a[i] = gelu_tanh(f[i]);
      }
    }
    linear_rows(act_.data(), N, F, L.fc2_w, C, L.fc2_b, x_.data(), true);
  }
  for (auto& c : chunks) c.cache->set_length(c.cache->length() + c.n_tokens);

  // Final norm and logits for the rows asked for.
  if (all_logits) {
    norm(x_.data(), N, lnf_w_, lnf_b_, h_.data());
    logits.resize(size_t(N * V));
    linear_rows(h_.data(), N, C, head_, V, nullptr, logits.data(), false);
  } else {
    const int64_t S = int64_t(chunks.size());
    int64_t r = 0;
    for (int64_t s = 0; s < S; ++s) {
      r += chunks[size_t(s)].n_tokens;
      std::memcpy(att_.data() + s * C, x_.data() + (r - 1) * C, size_t(C) * sizeof(float));
    }
    norm(att_.data(), S, lnf_w_, lnf_b_, h_.data());
    logits.resize(size_t(S * V));
    linear_rows(h_.data(), S, C, head_, V, nullptr, logits.data(), false);
  }
}

std::vector<float> GPTRunner::forward(const std::vector<int64_t>& tokens, KVCache& cache) {
  std::vector<float> logits;
  forward({SeqChunk{tokens.data(), int64_t(tokens.size()), &cache}}, logits, /*all_logits=*/true);
  return logits;
}

}  // namespace ember::infer
