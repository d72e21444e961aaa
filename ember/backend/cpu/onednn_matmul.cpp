// oneDNN matmul primitives cached per call signature (see onednn_matmul.h).
#include "ember/backend/cpu/onednn_matmul.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <unordered_map>

#include "ember/core/error.h"

namespace ember::cpu::onednn {
namespace {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

// MatmulKey as plain bytes: zero-filled, so padding takes part in equality and
// hashing. alpha and beta are kept as bit patterns: the usual 1 and 0 hit the
// cache, and an unusual value is a new entry rather than a wrong result.
struct KeyBits {
  int64_t m, n, k, lda, ldb, ldc;
  uint32_t alpha_bits, beta_bits;
  uint8_t dtype, trans_a, trans_b, bias, blocked, activate, activation, residual;
  bool operator==(const KeyBits& o) const { return std::memcmp(this, &o, sizeof(KeyBits)) == 0; }
};
struct KeyHash {
  size_t operator()(const KeyBits& key) const {
    const auto* bytes = reinterpret_cast<const unsigned char*>(&key);
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(KeyBits); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
  }
};

KeyBits bits_of(const MatmulKey& key) {
  KeyBits b;
  std::memset(&b, 0, sizeof(b));
  b.m = key.m, b.n = key.n, b.k = key.k, b.lda = key.lda, b.ldc = key.ldc;
  std::memcpy(&b.alpha_bits, &key.alpha, sizeof(float));
  std::memcpy(&b.beta_bits, &key.beta, sizeof(float));
  b.dtype = uint8_t(key.dtype);
  b.trans_a = key.trans_a;
  b.bias = key.bias;
  b.blocked = key.blocked_weights;
  if (!key.blocked_weights) b.ldb = key.ldb, b.trans_b = key.trans_b;
  b.activate = key.activate;
  if (key.activate) b.activation = uint8_t(key.activation);
  b.residual = key.residual;
  return b;
}

struct Entry {
  std::optional<dnnl::matmul> prim;  // empty: oneDNN has no fast kernel, use the caller's fallback
  dnnl::matmul::primitive_desc pd;
  std::string impl;
  // Blocked weights only: the layout they are packed in, and, if oneDNN's
  // primitive never picked it (not seen so far), a reorder into its own pick
  // in a per-call buffer, so that results stay right, if slower.
  std::optional<dnnl::reorder> convert_weights;
  dnnl::memory::desc packed_desc;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

std::optional<dnnl::algorithm> eltwise_of(UnaryOp op) {
  switch (op) {
    case UnaryOp::gelu: return dnnl::algorithm::eltwise_gelu_erf;
    case UnaryOp::gelu_tanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case UnaryOp::relu: return dnnl::algorithm::eltwise_relu;
    case UnaryOp::silu: return dnnl::algorithm::eltwise_swish;  // x * sigmoid(alpha x), alpha 1
    case UnaryOp::tanh: return dnnl::algorithm::eltwise_tanh;
    case UnaryOp::sigmoid: return dnnl::algorithm::eltwise_logistic;
    default: return std::nullopt;
  }
}

// The blocked layout of a k x n float32 weight, as pack_blocked_weights
// writes it and every product with it reads it: the one oneDNN picks (weights
// given as format_tag::any) for a plain product of 64 rows, with its geometry
// when it is BA16a64b. Computed once per (k, n) and kept for the life of the
// process, apart from the primitive cache (which may be cleared), so a packed
// weight is never read with another layout. A zero desc when oneDNN has no
// brgemm kernel for (k, n).
struct Layout {
  dnnl::memory::desc desc;
  BlockedGeometry geometry;
};

BlockedGeometry geometry_of(const dnnl::memory::desc& layout, int64_t k, int64_t n) {
  BlockedGeometry g;
  const dnnl_memory_desc_t& d = layout.data;
  if (d.format_kind != dnnl_blocked || d.ndims != 2 || d.offset0 != 0) return g;
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  if (b.inner_nblks != 2 || b.inner_blks[0] != 16 || b.inner_blks[1] != 64 || b.inner_idxs[0] != 0 ||
      b.inner_idxs[1] != 1 || b.strides[0] != 16 * 64 || d.padded_dims[0] != (k + 15) / 16 * 16 ||
      d.padded_dims[1] != (n + 63) / 64 * 64 || b.strides[1] != d.padded_dims[0] * 64)
    return g;
  g.valid = true;
  g.kb_stride = b.strides[0];
  g.nb_stride = b.strides[1];
  return g;
}

const Layout& blocked_layout(int64_t k, int64_t n) {
  static std::mutex mu;
  static std::map<std::pair<int64_t, int64_t>, Layout> layouts;  // node-based: references stay valid
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = layouts.find({k, n}); it != layouts.end()) return it->second;
  }
  Layout layout;
  try {
    dnnl::memory::desc a({64, k}, dt::f32, dims{k, 1}), c({64, n}, dt::f32, dims{n, 1});
    dnnl::memory::desc b({k, n}, dt::f32, dnnl::memory::format_tag::any);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), cpu_engine());
    // Only brgemm's blocked layouts: on CPUs without its kernels (AVX2)
    // oneDNN falls back to gemm:jit, whose layout choice gains nothing over
    // ember's own panels, which frozen weights use there.
    if (std::string(pd.impl_info_str()).find("brg") != std::string::npos) {
      layout.desc = pd.weights_desc();
      layout.geometry = geometry_of(layout.desc, k, n);
    }
  } catch (const dnnl::error&) {
    // No implementation: the zero layout.
  }
  std::lock_guard<std::mutex> lock(mu);
  return layouts.emplace(std::make_pair(k, n), layout).first->second;
}

// Creates the primitive for one signature; declines reference kernels, which
// are orders of magnitude slower than the fallbacks (sgemm, or converting
// 16-bit operands to float32).
//
// Blocked weights: the primitive reads the packed layout (see below).
Entry make_entry(const MatmulKey& key) {
  dt type = key.dtype == DType::bf16 ? dt::bf16 : key.dtype == DType::f16 ? dt::f16 : dt::f32;
  Entry entry;
  if (key.activate && key.beta != 0.0f) return entry;  // act(AB + bias) + beta C is not expressible: decline
  if (key.blocked_weights) {
    entry.packed_desc = blocked_layout(key.k, key.n).desc;
    if (entry.packed_desc.is_zero()) return entry;
  }
  auto make_pd = [&](const dnnl::memory::desc& b) -> std::optional<dnnl::matmul::primitive_desc> {
    try {
      dnnl::memory::desc a({key.m, key.k}, type, key.trans_a ? dims{1, key.lda} : dims{key.lda, 1});
      dnnl::memory::desc c({key.m, key.n}, type, dims{key.ldc, 1});
      std::optional<dnnl::matmul::desc> desc;
      if (key.bias) desc.emplace(a, b, dnnl::memory::desc({1, key.n}, dt::f32, dims{key.n, 1}), c);
      else desc.emplace(a, b, c);
      dnnl::primitive_attr attr;
      // The caller's scratchpad (run_matmul), not the library's: oneDNN 2.x
      // (built without DNNL_ENABLE_CONCURRENT_EXEC) keeps its scratchpad per
      // thread, set up when a primitive is created, so a cached primitive run on
      // another thread (a serving worker) would find none or too small a one.
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (key.alpha != 1.0f) attr.set_output_scales(0, {key.alpha});
      // Post-ops in this order: beta C, the activation, the residual (run_matmul
      // numbers the residual's argument by its place here).
      dnnl::post_ops ops;
      if (key.beta != 0.0f) ops.append_sum(key.beta);
      if (key.activate) {
        auto alg = eltwise_of(key.activation);
        if (!alg) return std::nullopt;
        ops.append_eltwise(1.0f, *alg, key.activation == UnaryOp::silu ? 1.0f : 0.0f, 0.0f);
      }
      if (key.residual) ops.append_binary(dnnl::algorithm::binary_add, c);
      attr.set_post_ops(ops);
      dnnl::matmul::primitive_desc pd(*desc, attr, cpu_engine());
      if (std::string(pd.impl_info_str()).find("ref") != std::string::npos) return std::nullopt;
      return pd;
    } catch (const dnnl::error&) {
      return std::nullopt;  // no implementation for this signature on this CPU
    }
  };
  std::optional<dnnl::matmul::primitive_desc> pd;
  if (key.blocked_weights) {
    const dnnl::memory::desc any({key.k, key.n}, type, dnnl::memory::format_tag::any);
    pd = make_pd(any);
    // oneDNN's pick depends on the threads the primitive is made for: on 8 or
    // more, for products of up to about 40 rows, it can pick narrower blocks
    // than the packed layout (a review's probe, session 23), and it has no
    // fast kernel for a layout given explicitly (only its reference one). A
    // few rows need few threads, so the primitive is made for half as many,
    // then a quarter, ..., until its pick is the packed layout (oneDNN runs a
    // primitive on the threads it was made for).
    const int threads = omp_get_max_threads();
    for (int t = threads / 2; pd && pd->weights_desc() != entry.packed_desc && t >= 1; t /= 2) {
      omp_set_num_threads(t);
      if (auto fewer = make_pd(any); fewer && fewer->weights_desc() == entry.packed_desc) pd = fewer;
    }
    omp_set_num_threads(threads);
    if (pd && pd->weights_desc() != entry.packed_desc) {
      // Not seen on any host: reorder the weights into its pick on every call.
      try {
        entry.convert_weights.emplace(
            dnnl::reorder::primitive_desc(cpu_engine(), entry.packed_desc, cpu_engine(), pd->weights_desc()));
      } catch (const dnnl::error&) {
        pd.reset();
      }
    }
  } else {
    pd = make_pd(dnnl::memory::desc({key.k, key.n}, type, key.trans_b ? dims{1, key.ldb} : dims{key.ldb, 1}));
  }
  if (!pd) return entry;
  entry.impl = pd->impl_info_str();
  entry.prim.emplace(*pd);
  entry.pd = *pd;
  return entry;
}

// Returns a copy (primitive handles are reference-counted), so a concurrent clear() is harmless.
// A new entry is created outside the lock (oneDNN compiles kernels for it), so
// that a serving thread meeting a new prefill length does not hold up the
// others; when two threads create the same entry, the first one stored wins.
Entry lookup(const MatmulKey& key) {
  static std::mutex mu;
  static std::unordered_map<KeyBits, Entry, KeyHash> cache;
  const KeyBits bits = bits_of(key);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(bits);
    if (it != cache.end()) return it->second;
  }
  Entry made = make_entry(key);
  std::lock_guard<std::mutex> lock(mu);
  // Bound the cache: shapes in a training run repeat, so this only trims pathological use.
  if (cache.size() >= 4096) cache.clear();
  return cache.emplace(bits, std::move(made)).first->second;
}

// This thread's buffer number `slot` (0: scratchpads, 1: converted weights),
// grown to the largest size asked for.
void* thread_buffer(int slot, size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer bufs[2];
  Buffer& buf = bufs[slot];
  if (bytes > buf.size) {
    std::free(buf.data);
    buf.size = (bytes + 63) / 64 * 64;
    buf.data = std::aligned_alloc(64, buf.size);
    if (!buf.data) {
      buf.size = 0;
      fail("matmul", "cannot allocate a ", bytes, "-byte buffer for oneDNN");
    }
  }
  return buf.data;
}

}  // namespace

bool run_matmul(const MatmulKey& key, const void* a, const void* b, void* c, const float* bias,
                const float* residual) {
  if (key.bias != (bias != nullptr) || key.residual != (residual != nullptr))
    fail("matmul", "internal error: the bias or residual given does not match the primitive's key");
  Entry e = lookup(key);
  if (!e.prim) return false;
  const dnnl::matmul::primitive_desc& pd = e.pd;
  dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const dnnl::memory::desc scratch_desc = pd.scratchpad_desc();
  dnnl::memory scratch(scratch_desc, engine, thread_buffer(0, std::max<size_t>(scratch_desc.get_size(), 1)));
  dnnl::memory mb(key.blocked_weights ? e.packed_desc : pd.weights_desc(), engine, const_cast<void*>(b));
  if (e.convert_weights) {
    dnnl::memory converted(pd.weights_desc(), engine, thread_buffer(1, pd.weights_desc().get_size()));
    e.convert_weights->execute(stream, mb, converted);
    mb = converted;
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl::memory(pd.src_desc(), engine, const_cast<void*>(a))},
                                             {DNNL_ARG_WEIGHTS, mb},
                                             {DNNL_ARG_DST, dnnl::memory(pd.dst_desc(), engine, c)},
                                             {DNNL_ARG_SCRATCHPAD, scratch}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(pd.bias_desc(), engine, const_cast<float*>(bias)));
  if (residual) {
    // The residual is the last post-op: after the sum (beta) and the activation.
    const int index = int(key.beta != 0.0f) + int(key.activate);
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1,
                 dnnl::memory(pd.dst_desc(), engine, const_cast<float*>(residual)));
  }
  e.prim->execute(stream, args);
  stream.wait();
  return true;
}

std::string matmul_impl(const MatmulKey& key) {
  Entry e = lookup(key);
  return e.prim ? e.impl : "";
}

bool fusable_activation(UnaryOp op) { return eltwise_of(op).has_value(); }

int64_t blocked_weights_bytes(int64_t k, int64_t n) {
  if (k < 1 || n < 1) return 0;
  return int64_t(blocked_layout(k, n).desc.get_size());
}

BlockedGeometry blocked_geometry(int64_t k, int64_t n) {
  return k < 1 || n < 1 ? BlockedGeometry() : blocked_layout(k, n).geometry;
}

bool reorders_weights_per_call(const MatmulKey& key) {
  Entry e = lookup(key);
  return e.prim && e.convert_weights.has_value();
}

void pack_blocked_weights(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, void* dst) {
  const dnnl::memory::desc layout = k > 0 && n > 0 ? blocked_layout(k, n).desc : dnnl::memory::desc();
  if (layout.is_zero()) fail("matmul", "oneDNN has no blocked weight layout for a ", k, " x ", n, " product on this CPU");
  dnnl::engine& engine = cpu_engine();
  dnnl::memory::desc plain({k, n}, dt::f32, trans_b ? dims{1, ldb} : dims{ldb, 1});
  dnnl::memory src(plain, engine, const_cast<float*>(b));
  dnnl::memory out(layout, engine, dst);
  dnnl::stream stream(engine);
  dnnl::reorder(src, out).execute(stream, src, out);
  stream.wait();
}

}  // namespace ember::cpu::onednn
