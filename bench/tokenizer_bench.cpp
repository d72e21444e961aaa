// Tokenizer micro-benchmarks: encode throughput (bytes/s) for cl100k_base on a
// generated mix of English, code, CJK, emoji and whitespace; the piece merger
// alone; decode; and BPE training on a generated corpus.
//
// The rank files come from $EMBER_TIKTOKEN_DIR or ../shared/data/tiktoken;
// the cl100k benchmarks are skipped without them. The comparison with the
// tiktoken package in the same run is tests/conformance/tiktoken_conformance.py --bench.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "ember/tokenizer/bpe.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/tokenizer/train.h"

using namespace ember;

namespace {

std::string data_dir() {
  if (const char* env = std::getenv("EMBER_TIKTOKEN_DIR"); env && *env) return env;
  return (std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "shared" / "data" / "tiktoken")
      .lexically_normal()
      .string();
}

const Tokenizer* cl100k() {
  static std::unique_ptr<Tokenizer> tok = [] {
    std::string path = data_dir() + "/cl100k_base.tiktoken";
    return std::filesystem::exists(path) ? std::make_unique<Tokenizer>(Tokenizer::from_tiktoken(path)) : nullptr;
  }();
  return tok.get();
}

// About `bytes` of deterministic mixed text.
std::string mixed_text(size_t bytes, uint64_t seed = 42) {
  static const std::vector<std::string> english = {
      "the", "of", "and", "to", "in", "is", "was", "for", "that", "with", "university", "national",
      "tokenizer", "It's", "don't", "They've", "GPT", "2024", "3.14159", "1234567", "however,", "world."};
  static const std::vector<std::string> other = {
      "\n", "\n\n", "    ", "\t", "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {\n",
      "我们今天讨论人工智能", "日本語のテキスト", "한국어 문장", "Привет, мир", "😀👍🏽", "👨‍👩‍👧", "   \n  "};
  std::mt19937_64 rng(seed);
  std::string s;
  while (s.size() < bytes) {
    if (rng() % 5) {
      s += (s.empty() ? "" : " ") + english[rng() % english.size()];
    } else {
      s += other[rng() % other.size()];
    }
  }
  return s;
}

void BM_encode_cl100k(benchmark::State& state) {
  const Tokenizer* tok = cl100k();
  if (!tok) return state.SkipWithError("no cl100k_base.tiktoken (set EMBER_TIKTOKEN_DIR)");
  const std::string text = mixed_text(1 << 20);
  size_t tokens = 0;
  for (auto _ : state) tokens = tok->encode_ordinary(text).size();
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["tokens"] = double(tokens);
}

void BM_encode_batch_cl100k(benchmark::State& state) {
  const Tokenizer* tok = cl100k();
  if (!tok) return state.SkipWithError("no cl100k_base.tiktoken (set EMBER_TIKTOKEN_DIR)");
  std::vector<std::string> docs;
  size_t bytes = 0;
  for (int i = 0; i < 256; ++i) {
    docs.push_back(mixed_text(4096, 1000 + i));
    bytes += docs.back().size();
  }
  for (auto _ : state) benchmark::DoNotOptimize(tok->encode_batch(docs).data());
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
}

void BM_decode_cl100k(benchmark::State& state) {
  const Tokenizer* tok = cl100k();
  if (!tok) return state.SkipWithError("no cl100k_base.tiktoken (set EMBER_TIKTOKEN_DIR)");
  const std::string text = mixed_text(1 << 20);
  const auto ids = tok->encode_ordinary(text);
  for (auto _ : state) benchmark::DoNotOptimize(tok->decode(ids).data());
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

// The merger alone on long pieces with no whole-token shortcut (a 1 KB run
// of random lowercase letters), scan vs heap.
void BM_merge_long_piece(benchmark::State& state) {
  const Tokenizer* tok = cl100k();
  if (!tok) return state.SkipWithError("no cl100k_base.tiktoken (set EMBER_TIKTOKEN_DIR)");
  std::mt19937_64 rng(1);
  std::string piece(size_t(state.range(0)), 'a');
  for (char& c : piece) c = char('a' + rng() % 26);
  std::vector<TokenId> out;
  for (auto _ : state) {
    out.clear();
    if (state.range(1)) {
      bpe_merge_piece_heap(tok->vocab(), piece, out);
    } else {
      bpe_merge_piece_scan(tok->vocab(), piece, out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(piece.size()));
  state.SetLabel(state.range(1) ? "heap" : "scan");
}

void BM_train(benchmark::State& state) {
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(mixed_text(1 << 14, 7 + i));  // 1 MiB
  for (auto _ : state) benchmark::DoNotOptimize(train_bpe(texts, size_t(state.range(0)), "cl100k").vocab_size());
  state.SetBytesProcessed(int64_t(state.iterations()) * (int64_t(1) << 20));
}

}  // namespace

BENCHMARK(BM_encode_cl100k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_encode_batch_cl100k)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_decode_cl100k)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_merge_long_piece)->ArgsProduct({{16, 32, 48, 64, 128, 1024}, {0, 1}});
BENCHMARK(BM_train)->Arg(2048)->Unit(benchmark::kMillisecond);
