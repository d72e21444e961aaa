// TokenLoader: windows from memory-mapped shards, Philox-chosen or sequential (see loader.h).
#include "ember/data/loader.h"

#include <algorithm>
#include <filesystem>

#include "ember/core/error.h"
#include "ember/core/random.h"

namespace ember::data {

namespace fs = std::filesystem;

namespace {

// Philox counter_hi for the loader, so its numbers never coincide with a
// tensor kernel's that uses the same seed.
constexpr uint64_t kLoaderStream = 0x4c4f41444552ull;  // "LOADER"

}  // namespace

const char* order_name(Order order) { return order == Order::random ? "random" : "sequential"; }

Order order_from_name(const std::string& name) {
  if (name == "random") return Order::random;
  if (name == "sequential") return Order::sequential;
  fail("data", "unknown loader order '", name, "' (expected random or sequential)");
}

nlohmann::json LoaderState::to_json() const {
  return {{"split", split}, {"order", order}, {"seed", seed}, {"step", step},
          {"batch_size", batch_size}, {"seq_len", seq_len}};
}

LoaderState LoaderState::rebatched(int64_t batch) const {
  EMBER_CHECK(batch >= 1, "data", "loader state: batch size ", batch, " must be positive");
  if (sequences() % uint64_t(batch) != 0)
    fail("data", "loader state: the position (", sequences(), " sequences read in batches of ", batch_size,
         ") is not a multiple of the new batch size ", batch);
  LoaderState s = *this;
  s.step = sequences() / uint64_t(batch);
  s.batch_size = batch;
  return s;
}

LoaderState LoaderState::from_json(const nlohmann::json& j) {
  LoaderState s;
  try {
    s.split = j.at("split").get<std::string>();
    s.order = j.at("order").get<std::string>();
    s.seed = j.at("seed").get<uint64_t>();
    s.step = j.at("step").get<uint64_t>();
    s.batch_size = j.at("batch_size").get<int64_t>();
    s.seq_len = j.at("seq_len").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    fail("data", "loader state: ", e.what());
  }
  return s;
}

TokenLoader::TokenLoader(const std::string& dir, const std::string& split, int64_t batch_size, int64_t seq_len,
                         uint64_t seed, Order order)
    : dir_(dir), split_(split), batch_(batch_size), seq_(seq_len), seed_(seed), order_(order) {
  EMBER_CHECK(batch_size >= 1 && seq_len >= 1, "data", "loader: batch size ", batch_size, " and sequence length ",
              seq_len, " must be positive");
  meta_ = read_meta(dir);
  const SplitInfo& info = meta_.split(split, dir);
  const uint64_t T = static_cast<uint64_t>(seq_len);
  for (const ShardInfo& sh : info.shards) {
    TokenShard shard((fs::path(dir) / sh.file).string());
    if (shard.size() != sh.tokens) {
      fail("data", shard.path(), ": holds ", shard.size(), " tokens but ", (fs::path(dir) / kMetaName).string(),
           " says ", sh.tokens);
    }
    if (shard.dtype() != meta_.dtype) {
      fail("data", shard.path(), ": token dtype ", token_dtype_name(shard.dtype()), " but meta.json says ",
           token_dtype_name(meta_.dtype));
    }
    cumulative_.push_back(total_windows_);
    const uint64_t n = shard.size();
    if (n >= T + 1) total_windows_ += order == Order::random ? n - T : (n - 1) / T;
    tokens_ += n;
    shards_.push_back(std::move(shard));
  }
  if (total_windows_ == 0) {
    fail("data", dir, ": split '", split, "' has ", tokens_, " tokens in ", shards_.size(),
         " shards; a window needs ", T + 1, " tokens in one shard (lower the sequence length or prepare more text)");
  }
}

std::pair<size_t, uint64_t> TokenLoader::window(uint64_t step, int64_t row) const {
  const uint64_t k = step * static_cast<uint64_t>(batch_) + static_cast<uint64_t>(row);
  uint64_t index;
  if (order_ == Order::random) {
    const auto w = philox4x32(seed_, kLoaderStream, k);
    const uint64_t r = (static_cast<uint64_t>(w[0]) << 32) | w[1];
    // Multiply-shift maps 64 random bits onto [0, windows) (bias < windows / 2^64).
    index = static_cast<uint64_t>((static_cast<unsigned __int128>(r) * total_windows_) >> 64);
  } else {
    index = k % total_windows_;
  }
  const size_t s = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), index) -
                                       cumulative_.begin()) - 1;
  const uint64_t local = index - cumulative_[s];
  return {s, order_ == Order::random ? local : local * static_cast<uint64_t>(seq_)};
}

std::pair<Tensor, Tensor> TokenLoader::batch_at(uint64_t step) const {
  Tensor input = Tensor::empty({batch_, seq_}, DType::i64);
  Tensor target = Tensor::empty({batch_, seq_}, DType::i64);
  int64_t* in = input.data<int64_t>();
  int64_t* tg = target.data<int64_t>();
  std::vector<int64_t> buf(static_cast<size_t>(seq_) + 1);
  const int64_t vocab = static_cast<int64_t>(meta_.vocab_size);
  for (int64_t b = 0; b < batch_; ++b) {
    const auto [s, start] = window(step, b);
    shards_[s].read(start, buf);
    for (size_t i = 0; i < buf.size(); ++i) {
      if (buf[i] >= vocab) {
        fail("data", shards_[s].path(), ": token ", start + i, " is ", buf[i], ", outside the vocabulary of ", vocab,
             " (corrupt shard?)");
      }
    }
    std::copy(buf.begin(), buf.end() - 1, in + b * seq_);
    std::copy(buf.begin() + 1, buf.end(), tg + b * seq_);
  }
  return {input, target};
}

std::pair<Tensor, Tensor> TokenLoader::next() {
  auto batch = batch_at(step_);
  ++step_;
  return batch;
}

LoaderState TokenLoader::state() const { return {split_, order_name(order_), seed_, step_, batch_, seq_}; }

void TokenLoader::set_state(const LoaderState& s) {
  if (s.split != split_ || s.order != order_name(order_) || s.batch_size != batch_ || s.seq_len != seq_) {
    fail("data", "loader state is for split '", s.split, "', order ", s.order, ", batch ", s.batch_size, "x",
         s.seq_len, ", but this loader reads split '", split_, "', order ", order_name(order_), ", batch ", batch_,
         "x", seq_);
  }
  seed_ = s.seed;
  step_ = s.step;
}

void TokenLoader::check_compatible(uint64_t vocab_size, const std::string& fingerprint) const {
  data::check_compatible(meta_, dir_, vocab_size, fingerprint);
}

void TokenLoader::check_compatible(const Tokenizer& tok) const {
  check_compatible(tok.vocab_size(), tokenizer_fingerprint(tok));
}

}  // namespace ember::data
