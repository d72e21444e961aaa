// KV cache storage (see kv_cache.h).
#include "ember/infer/kv_cache.h"

#include "ember/core/error.h"

namespace ember::infer {

KVCache::KVCache(int64_t n_layer, int64_t n_kv_head, int64_t max_len, int64_t head_dim)
    : n_layer_(n_layer), n_kv_head_(n_kv_head), max_len_(max_len), head_dim_(head_dim) {
  if (n_layer <= 0 || n_kv_head <= 0 || max_len <= 0 || head_dim <= 0)
    fail("KVCache", "every size must be positive, got n_layer ", n_layer, ", n_kv_head ", n_kv_head, ", max_len ",
         max_len, ", head_dim ", head_dim);
  const size_t n = size_t(n_layer * n_kv_head * max_len * head_dim);
  k_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
}

KVCache KVCache::for_config(const models::GPTConfig& cfg, int64_t max_len) {
  if (max_len < 0 || max_len > cfg.block_size)
    fail("KVCache", "max_len must be in [1, block_size ", cfg.block_size, "] (0: block_size), got ", max_len);
  return KVCache(cfg.n_layer, cfg.n_kv_head, max_len > 0 ? max_len : cfg.block_size, cfg.head_dim());
}

void KVCache::set_length(int64_t n) {
  if (n < 0 || n > max_len_) fail("KVCache", "length ", n, " outside [0, max_len ", max_len_, "]");
  length_ = n;
}

}  // namespace ember::infer
