// A preallocated key/value cache for one sequence: per layer, K and V laid out
// [n_kv_head, max_len, head_dim] (grouped-query aware: only the kv heads are
// stored, shared by their H / Hkv query heads), float32, filled front to back.
//
// The cache is allocated once at its full length, so decoding never allocates;
// the engine keeps one per slot and reuses it (reset()) for the next request.
// A sequence's position i lives at row i of every head (no paging: slots are
// few and block_size is small, so a paged layout would only add indirection).
#pragma once

#include <cstdint>
#include <vector>

#include "ember/models/gpt_config.h"

namespace ember::infer {

class KVCache {
 public:
  KVCache() = default;
  KVCache(int64_t n_layer, int64_t n_kv_head, int64_t max_len, int64_t head_dim);
  // Sized for a model: max_len = block_size unless given (>0 and <= block_size).
  static KVCache for_config(const models::GPTConfig& cfg, int64_t max_len = 0);

  int64_t n_layer() const { return n_layer_; }
  int64_t n_kv_head() const { return n_kv_head_; }
  int64_t max_len() const { return max_len_; }
  int64_t head_dim() const { return head_dim_; }

  // Positions 0 .. length()-1 hold valid keys and values.
  int64_t length() const { return length_; }
  int64_t remaining() const { return max_len_ - length_; }
  void set_length(int64_t n);  // checked against max_len
  void reset() { length_ = 0; }

  // Row 0 of head `head` in `layer`: max_len rows of head_dim floats.
  float* k(int64_t layer, int64_t head) { return k_.data() + offset(layer, head); }
  float* v(int64_t layer, int64_t head) { return v_.data() + offset(layer, head); }
  const float* k(int64_t layer, int64_t head) const { return k_.data() + offset(layer, head); }
  const float* v(int64_t layer, int64_t head) const { return v_.data() + offset(layer, head); }

  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  size_t offset(int64_t layer, int64_t head) const {
    return size_t(((layer * n_kv_head_) + head) * max_len_ * head_dim_);
  }
  int64_t n_layer_ = 0, n_kv_head_ = 0, max_len_ = 0, head_dim_ = 0, length_ = 0;
  std::vector<float> k_, v_;
};

}  // namespace ember::infer
