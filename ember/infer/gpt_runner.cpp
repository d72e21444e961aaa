// Cached GPT inference (see gpt_runner.h).
#include "ember/infer/gpt_runner.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ember/backend/cpu/attention_kernels.h"
#include "ember/backend/cpu/elementwise_kernels.h"
#include "ember/core/error.h"
#include "ember/infer/quant_kernels.h"

namespace ember::infer {
namespace {

inline float dot(const float* a, const float* b, int64_t k) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < k; ++i) s += a[i] * b[i];
  return s;
}

// sc[j] = dot(q, K row j) * scale for j < n (rows D apart). Four rows at a
// time: four independent sums in flight instead of one dependent chain per
// row, which left a decode step's attention waiting on FMA latency.
void scores(const float* q, const float* K, int64_t n, int64_t D, float scale, float* sc) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *k0 = K + j * D, *k1 = k0 + D, *k2 = k1 + D, *k3 = k2 + D;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t i = 0; i < D; ++i) {
      s0 += q[i] * k0[i];
      s1 += q[i] * k1[i];
      s2 += q[i] * k2[i];
      s3 += q[i] * k3[i];
    }
    sc[j] = s0 * scale, sc[j + 1] = s1 * scale, sc[j + 2] = s2 * scale, sc[j + 3] = s3 * scale;
  }
  for (; j < n; ++j) sc[j] = dot(q, K + j * D, D) * scale;
}

template <typename T> void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

GPTRunner::GPTRunner(const models::GPT& model) : GPTRunner(runner_weights(model)) {}

GPTRunner::GPTRunner(std::shared_ptr<const RunnerWeights> weights)
    : weights_(std::move(weights)), cfg_(weights_->config) {
  const RunnerWeights& w = *weights_;
  auto required = [&](const std::string& name) {
    const float* p = w.f32(name);
    if (!p) fail("GPTRunner", "no weight ", name);
    return p;
  };
  // RMSNorm has no bias; LayerNorm has one unless the config turns biases off.
  auto norm_ptrs = [&](const std::string& prefix, const float*& nw, const float*& nb) {
    nw = required(prefix + ".weight");
    nb = w.f32(prefix + ".bias");
  };
  auto linear = [&](const std::string& prefix, LinearWeight& lw, const float*& b) {
    lw = w.linear(prefix + ".weight");
    b = w.f32(prefix + ".bias");
    weight_bytes_ += lw.bytes() + (b ? lw.rows * int64_t(sizeof(float)) : 0);
  };
  wte_ = required("transformer.wte.weight");
  if (cfg_.position == models::PositionKind::learned) wpe_ = required("transformer.wpe.weight");
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    Layer L;
    norm_ptrs(p + "ln_1", L.ln1_w, L.ln1_b);
    norm_ptrs(p + "ln_2", L.ln2_w, L.ln2_b);
    linear(p + "attn.c_attn", L.attn, L.attn_b);
    linear(p + "attn.c_proj", L.proj, L.proj_b);
    linear(p + "mlp.c_fc", L.fc, L.fc_b);
    linear(p + "mlp.c_proj", L.fc2, L.fc2_b);
    layers_.push_back(L);
  }
  norm_ptrs("transformer.ln_f", lnf_w_, lnf_b_);
  head_ = w.linear(RunnerWeights::kHead);
  weight_bytes_ += head_.bytes();
  if (cfg_.position == models::PositionKind::rope) {
    rope_cos_ = required("rope.cos");
    rope_sin_ = required("rope.sin");
  }
  // The shapes the forward pass assumes, checked once here (a file's shapes are
  // checked when it is read; this catches weights assembled by hand).
  const int64_t C = cfg_.n_embd, QKV = (cfg_.n_head + 2 * cfg_.n_kv_head) * cfg_.head_dim(), F = cfg_.mlp_hidden();
  const int64_t fc_out = cfg_.mlp == models::MlpKind::swiglu ? 2 * F : F;
  auto check = [&](const LinearWeight& lw, int64_t rows, int64_t cols, const char* what) {
    if (lw.rows != rows || lw.cols != cols)
      fail("GPTRunner", what, " weight is [", lw.rows, ", ", lw.cols, "], expected [", rows, ", ", cols, "]");
  };
  for (const Layer& L : layers_) {
    check(L.attn, QKV, C, "attn.c_attn");
    check(L.proj, C, C, "attn.c_proj");
    check(L.fc, fc_out, C, "mlp.c_fc");
    check(L.fc2, C, F, "mlp.c_proj");
  }
  check(head_, cfg_.vocab_size, C, "lm_head");
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
  const int64_t QKV = (H + 2 * Hkv) * D, F = cfg_.mlp_hidden();
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
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    const Layer& L = layers_[size_t(l)];
    norm(x_.data(), N, L.ln1_w, L.ln1_b, h_.data());
    linear_rows(L.attn, h_.data(), N, L.attn_b, qkv_.data(), false, tile_);
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
    const int64_t S = int64_t(chunks.size());
    const bool last_rows_only = l == cfg_.n_layer - 1 && !all_logits && N > S;
    if (last_rows_only) {
      // The rest of the last layer feeds only the logits, and without
      // all_logits those are each chunk's last row's: every row's keys and
      // values are in the cache already, so the attention output, projection
      // and MLP run on one row per chunk (llama.cpp does the same). A 256-token
      // prefill of the 6-layer `small` preset skips 11.8% of its products.
      int64_t last = -1;
      for (int64_t c = 0; c < S; ++c) {
        last += chunks[size_t(c)].n_tokens;
        if (last == c) continue;
        std::memcpy(qkv_.data() + c * QKV, qkv_.data() + last * QKV, size_t(QKV) * sizeof(float));
        std::memcpy(x_.data() + c * C, x_.data() + last * C, size_t(C) * sizeof(float));
        row_pos_[size_t(c)] = row_pos_[size_t(last)];
        row_seq_[size_t(c)] = c;
      }
      N = S;
    }
    attend(l, chunks, N, max_len, last_rows_only);
    linear_rows(L.proj, att_.data(), N, L.proj_b, x_.data(), true, tile_);
    norm(x_.data(), N, L.ln2_w, L.ln2_b, h_.data());
    const int64_t fc_out = swiglu ? 2 * F : F;
    // A prefill chunk with packed float weights applies GELU as the product
    // writes it (one pass over the hidden activations fewer).
    const bool fused = !swiglu && linear_rows_activated(L.fc, h_.data(), N, L.fc_b, UnaryOp::gelu_tanh, act_.data());
    if (!fused) {
      linear_rows(L.fc, h_.data(), N, L.fc_b, fc_.data(), false, tile_);
      // Split along the hidden width too: decoding one row, a serial activation
      // took about a tenth of an int4 token's time while the other threads
      // waited. The activations are the tensor kernels' vectorised forms (libm's
      // scalar tanhf was a fifth of a 256-token prefill).
      const int64_t parts = std::min<int64_t>(threads, std::max<int64_t>(1, N * F / 2048));
#pragma omp parallel for schedule(static) if (parts > 1)
      for (int64_t part = 0; part < parts * N; ++part) {
        const int64_t r = part / parts, p = part % parts;
        const float* f = fc_.data() + r * fc_out;
        float* a = act_.data() + r * F;
        const int64_t lo = F * p / parts, hi = F * (p + 1) / parts;
        if (swiglu) {
          cpu::unary_block_f32(UnaryOp::silu, f + lo, a + lo, hi - lo);
          cpu::binary_block_f32(BinaryOp::mul, a + lo, 1, f + F + lo, 1, a + lo, hi - lo);
        } else {
          cpu::unary_block_f32(UnaryOp::gelu_tanh, f + lo, a + lo, hi - lo);
        }
      }
    }
    linear_rows(L.fc2, act_.data(), N, L.fc2_b, x_.data(), true, tile_);
  }
  for (auto& c : chunks) c.cache->set_length(c.cache->length() + c.n_tokens);

  // Final norm and logits for the rows asked for.
  if (all_logits) {
    norm(x_.data(), N, lnf_w_, lnf_b_, h_.data());
    logits.resize(size_t(N * V));
    linear_rows(head_, h_.data(), N, nullptr, logits.data(), false, tile_);
  } else {
    // Row s holds chunk s's last token: the last layer kept only those rows
    // (last_rows_only above; n_layer >= 1), or every chunk was one token long.
    const int64_t S = int64_t(chunks.size());
    norm(x_.data(), S, lnf_w_, lnf_b_, h_.data());
    logits.resize(size_t(S * V));
    linear_rows(head_, h_.data(), S, nullptr, logits.data(), false, tile_);
  }
}

// Attention for layer l into att_ [N, C]. A chunk of many new tokens (a
// prefill) runs through the flash-attention kernel that training uses
// (backend/cpu/attention_kernels), reading the queries from the fused qkv rows
// and the keys and values from the cache where they lie and writing each
// head's output into its columns of att_: blocks of 64 queries x 64 keys,
// causal blocks past the diagonal skipped and the diagonal ones cut into
// smaller groups, so about half the products of a full scores matrix are
// done. (Before: two oneDNN GEMMs per head over the whole [n, len] score matrix,
// masked afterwards.) Short chunks (decode steps) run row by row, one task per
// (row, query head): a 64-wide dot product per cached row.
void GPTRunner::attend(int64_t l, const std::vector<SeqChunk>& chunks, int64_t N, int64_t max_len,
                       bool last_rows_only) {
  const int64_t C = cfg_.n_embd, H = cfg_.n_head, Hkv = cfg_.n_kv_head, D = cfg_.head_dim();
  const int64_t G = H / Hkv, QKV = (H + 2 * Hkv) * D;
  const float scale = 1.0f / std::sqrt(float(D));
  constexpr int64_t kBlockRows = 16;
  // A chunk kept to its last row (last_rows_only: row s is chunk s's) runs row by row.
  auto blocked = [&](int64_t s) { return !last_rows_only && chunks[size_t(s)].n_tokens >= kBlockRows; };

  // Decode rows are split over the threads by (row, head) once there is
  // enough work: at batch 1 a layer's heads over a few hundred cached rows
  // took a tenth of a cache-resident (int4) `small` token serially.
#pragma omp parallel for schedule(dynamic, 1) if (N * H * max_len * D >= (int64_t(1) << 16))
  for (int64_t task = 0; task < N * H; ++task) {
    const int64_t r = task / H, hq = task % H, hk = hq / G;
    if (blocked(row_seq_[size_t(r)])) continue;
    const int64_t pos = row_pos_[size_t(r)];
    const KVCache& kv = *chunks[size_t(row_seq_[size_t(r)])].cache;
    const float* q = qkv_.data() + r * QKV + hq * D;
    const float* K = kv.k(l, hk);
    const float* Vc = kv.v(l, hk);
    float* sc = scores_.data() + int64_t(omp_get_thread_num()) * max_len;
    scores(q, K, pos + 1, D, scale, sc);
    float mx = -INFINITY;
    for (int64_t j = 0; j <= pos; ++j) mx = std::max(mx, sc[j]);
    for (int64_t j = 0; j <= pos; ++j) sc[j] -= mx;
    cpu::unary_block_f32(UnaryOp::exp, sc, sc, pos + 1);
    float total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j <= pos; ++j) total += sc[j];
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

  int64_t r0 = 0;
  for (size_t s = 0; s < chunks.size(); r0 += chunks[s].n_tokens, ++s) {
    if (!blocked(int64_t(s))) continue;
    const int64_t n = chunks[s].n_tokens;
    const KVCache& kv = *chunks[s].cache;
    cpu::AttentionDims d;
    d.B = 1, d.H = H, d.Hkv = Hkv, d.T = n, d.S = row_pos_[size_t(r0)] + n, d.D = D;
    d.causal = true;  // row i, at position S - n + i, sees cache rows 0 .. S - n + i
    d.scale = scale;
    const int64_t kv_head = kv.max_len() * D;
    cpu::attention_forward(d, cpu::HeadRows<const float>{qkv_.data() + r0 * QKV, 0, D, QKV},
                           cpu::HeadRows<const float>{kv.k(l, 0), 0, kv_head, D},
                           cpu::HeadRows<const float>{kv.v(l, 0), 0, kv_head, D},
                           cpu::HeadRows<float>{att_.data() + r0 * C, 0, D, C}, nullptr);
  }
}

std::vector<float> GPTRunner::forward(const std::vector<int64_t>& tokens, KVCache& cache) {
  std::vector<float> logits;
  forward({SeqChunk{tokens.data(), int64_t(tokens.size()), &cache}}, logits, /*all_logits=*/true);
  return logits;
}

}  // namespace ember::infer
