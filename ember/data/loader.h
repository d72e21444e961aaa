// TokenLoader: (input, target) batches of shape [B, T] from a prepared data folder.
//
// A window is T + 1 consecutive tokens inside one shard (windows never cross
// shards: shards are cut mid-document anyway, and this keeps reads to one
// mapping); input = window[0:T], target = window[1:T+1], both int64.
//
// Order:
//   random      row b of batch k starts at a window chosen uniformly among
//               all valid starts of the split, from Philox4x32 keyed by the
//               seed with counter (k, b). Sampling is with replacement: a
//               batch is a pure function of (seed, k), independent of threads,
//               of earlier batches, and of how often the loader was recreated.
//   sequential  non-overlapping windows in order (shard by shard, stride T),
//               wrapping around: for evaluation, where every run should see
//               the same tokens.
//
// The whole position is LoaderState {seed, step, ...}: saving it in a training
// checkpoint and restoring it yields exactly the batches an uninterrupted run
// would have seen. Restoring checks that split, order, B and T match.
//
// Row b of batch k is window number k*B + b of one stream (Philox counter or
// sequential index), so the position is really `sequences = step * B`: a
// loader with batch B' that starts at step sequences / B' continues the same
// stream (LoaderState::rebatched). That is how a run resumes on a different
// number of ranks: the same global batch, cut into other per-rank batches.
//
// Shards are memory-mapped and validated on open (shard.h), their counts
// checked against meta.json, and every token read is checked against the
// vocabulary size, so a corrupt file stops the run with a one-line error
// naming it rather than feeding garbage ids to an embedding.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/tensor.h"
#include "ember/data/meta.h"
#include "ember/data/shard.h"

namespace ember::data {

enum class Order { random, sequential };

struct LoaderState {
  std::string split = "train";
  std::string order = "random";
  uint64_t seed = 0;
  uint64_t step = 0;  // batches already produced
  int64_t batch_size = 0;
  int64_t seq_len = 0;
  bool operator==(const LoaderState&) const = default;

  uint64_t sequences() const { return step * uint64_t(batch_size); }  // windows read so far
  // The same position for a loader with `batch` rows per batch; throws when
  // sequences() is not a multiple of it (the position would fall mid-batch).
  LoaderState rebatched(int64_t batch) const;

  nlohmann::json to_json() const;
  static LoaderState from_json(const nlohmann::json& j);  // throws ember::Error on a missing/mistyped field
};

class TokenLoader {
 public:
  TokenLoader(const std::string& dir, const std::string& split, int64_t batch_size, int64_t seq_len,
              uint64_t seed = 0, Order order = Order::random);

  // The next (input, target) pair, each int64 [B, T] on the CPU.
  std::pair<Tensor, Tensor> next();
  // Same batch that next() would give at `step`, without moving.
  std::pair<Tensor, Tensor> batch_at(uint64_t step) const;

  LoaderState state() const;
  void set_state(const LoaderState& s);  // throws when split/order/B/T differ

  // Throws a one-line ember::Error (naming meta.json) when the data was not
  // made with this tokenizer.
  void check_compatible(uint64_t vocab_size, const std::string& fingerprint) const;
  void check_compatible(const Tokenizer& tok) const;

  const DataMeta& meta() const { return meta_; }
  const std::string& dir() const { return dir_; }
  uint64_t tokens() const { return tokens_; }            // in this split
  uint64_t windows() const { return total_windows_; }    // valid starts (random) or windows (sequential)
  int64_t batch_size() const { return batch_; }
  int64_t seq_len() const { return seq_; }

 private:
  // (shard index, start token) of row `row` of batch `step`.
  std::pair<size_t, uint64_t> window(uint64_t step, int64_t row) const;

  std::string dir_, split_;
  DataMeta meta_;
  std::vector<TokenShard> shards_;
  std::vector<uint64_t> cumulative_;  // windows before shard i (prefix sums)
  uint64_t total_windows_ = 0, tokens_ = 0;
  int64_t batch_ = 0, seq_ = 0;
  uint64_t seed_ = 0, step_ = 0;
  Order order_ = Order::random;
};

const char* order_name(Order order);
Order order_from_name(const std::string& name);

}  // namespace ember::data
