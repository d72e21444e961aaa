// `ember tokenizer train|encode|decode|bench`: the tokenizer on the command line.
//
//   ember tokenizer train --input FILES... --vocab-size N --out DIR [--pattern P] [--special T]...
//   ember tokenizer encode (--tokenizer DIR | --tiktoken FILE)   stdin text -> one JSON array of ids
//   ember tokenizer decode (--tokenizer DIR | --tiktoken FILE)   stdin JSON array -> bytes on stdout
//   ember tokenizer bench  (--tokenizer DIR | --tiktoken FILE) --input FILE   one JSON line of MB/s
//
// encode reads all of stdin as one text and treats special-token strings as
// plain text (the contract other tools rely on). With --tiktoken, the split
// pattern and special tokens come from encodings.json beside the rank file.
#include <omp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/tokenizer/tiktoken_file.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/tokenizer/train.h"
#include "ember/util/progress.h"

namespace ember::cli {

namespace {

struct TokenizerSource {
  std::string dir;
  std::string tiktoken;
};

void add_source_options(CLI::App* cmd, TokenizerSource& src) {
  auto* dir = cmd->add_option("--tokenizer", src.dir, "Tokenizer folder (from `ember tokenizer train`)");
  auto* tik = cmd->add_option("--tiktoken", src.tiktoken,
                              "tiktoken rank file; encodings.json beside it gives pattern and special tokens");
  dir->excludes(tik);
  tik->excludes(dir);
}

Tokenizer open_tokenizer(const TokenizerSource& src) {
  if (!src.dir.empty()) return Tokenizer::load(src.dir);
  if (!src.tiktoken.empty()) return Tokenizer::from_tiktoken(src.tiktoken);
  fail("tokenizer", "give --tokenizer DIR or --tiktoken FILE");
}

std::string read_stdin() {
  std::string data;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), stdin)) > 0) data.append(buffer, n);
  if (std::ferror(stdin)) fail("tokenizer", "error reading stdin");
  return data;
}

void write_stdout(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size() || std::fflush(stdout) != 0) {
    fail("tokenizer", "error writing stdout");
  }
}

std::string ids_to_json(const std::vector<TokenId>& ids) {
  std::string out;
  out.reserve(ids.size() * 7 + 3);
  out += '[';
  char buf[16];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    auto res = std::to_chars(buf, buf + sizeof(buf), ids[i]);
    out.append(buf, res.ptr);
  }
  out += "]\n";
  return out;
}

std::vector<TokenId> json_to_ids(const std::string& text) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer", "decode: stdin is not JSON: ", e.what());
  }
  if (!doc.is_array()) fail("tokenizer", "decode: stdin must be one JSON array of token ids");
  std::vector<TokenId> ids;
  ids.reserve(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& v = doc[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 0xFFFFFFFEll) {
      fail("tokenizer", "decode: element ", i, " (", v.dump(), ") is not a token id");
    }
    ids.push_back(static_cast<TokenId>(v.get<int64_t>()));
  }
  return ids;
}

void run_train(const std::vector<std::string>& inputs, size_t vocab_size, const std::string& out,
               const std::string& pattern, const std::vector<std::string>& specials, size_t min_frequency) {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (const std::string& path : inputs) {
    texts.push_back(read_file_bytes(path));
    bytes += texts.back().size();
  }
  BpeTrainOptions options;
  options.vocab_size = vocab_size;
  options.pattern = pattern;
  if (!specials.empty()) options.special_tokens = specials;
  options.min_frequency = min_frequency;
  std::unique_ptr<ProgressBar> bar;
  options.on_merge = [&](size_t done, size_t wanted) {
    if (!bar) bar = std::make_unique<ProgressBar>("merges", static_cast<int64_t>(wanted), "merge");
    if (done % 64 == 0 || done == wanted) bar->update(static_cast<int64_t>(done));
  };
  BpeTrainStats stats;
  Tokenizer tok = train_bpe(texts, options, &stats);
  if (bar) bar->finish();
  tok.save(out);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::ordered_json summary;
  summary["out"] = out;
  summary["vocab_size"] = tok.vocab_size();
  summary["merges"] = stats.merges;
  summary["input_bytes"] = bytes;
  summary["distinct_chunks"] = stats.distinct_chunks;
  summary["stopped_early"] = stats.stopped_early;
  summary["seconds"] = seconds;
  std::cout << summary.dump() << std::endl;
  if (stats.stopped_early) {
    std::cerr << "ember: note: no pair occurs " << min_frequency << " times any more; vocabulary is "
              << tok.vocab_size() << ", not " << vocab_size << "\n";
  }
}

// Cuts text into documents of at least `min_bytes`, each ending after a '\n'
// (or at the end): the batch the bench encodes in parallel.
std::vector<std::string> split_documents(const std::string& text, size_t min_bytes) {
  std::vector<std::string> docs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', std::min(text.size(), pos + min_bytes));
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    docs.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return docs;
}

void run_bench(const TokenizerSource& src, const std::string& input, double min_seconds, int threads) {
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  Tokenizer tok = open_tokenizer(src);
  const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
  const std::string text = read_file_bytes(input);
  EMBER_CHECK(!text.empty(), "tokenizer", "bench: ", input, " is empty");
  // Best of repeated single-thread runs, after one warm-up run.
  size_t n_tokens = tok.encode_ordinary(text).size();
  double best = 1e30, spent = 0;
  int reps = 0;
  while (spent < min_seconds || reps < 3) {
    auto t = clock::now();
    n_tokens = tok.encode_ordinary(text).size();
    double s = std::chrono::duration<double>(clock::now() - t).count();
    best = std::min(best, s);
    spent += s;
    ++reps;
  }
  if (threads > 0) omp_set_num_threads(threads);
  const std::vector<std::string> docs = split_documents(text, 4096);
  double batch_best = 1e30;
  spent = 0;
  for (int r = 0; spent < min_seconds || r < 3; ++r) {
    auto t = clock::now();
    auto ids = tok.encode_batch(docs);
    double s = std::chrono::duration<double>(clock::now() - t).count();
    batch_best = std::min(batch_best, s);
    spent += s;
  }
  nlohmann::ordered_json line;
  line["tokenizer"] = tok.name();
  line["bytes"] = text.size();
  line["tokens"] = n_tokens;
  line["load_s"] = load_s;
  line["encode_mb_s"] = text.size() / best / 1e6;
  line["batch_threads"] = omp_get_max_threads();
  line["batch_docs"] = docs.size();
  line["batch_mb_s"] = text.size() / batch_best / 1e6;
  std::cout << line.dump() << std::endl;
}

}  // namespace

void register_tokenizer(CLI::App& app) {
  auto* group = app.add_subcommand("tokenizer", "Train, run and benchmark the byte-level BPE tokenizer");
  group->require_subcommand(1);

  struct TrainArgs {
    std::vector<std::string> inputs;
    size_t vocab_size = 0;
    std::string out;
    std::string pattern = "cl100k";
    std::vector<std::string> specials;
    size_t min_frequency = 2;
  };
  auto train = std::make_shared<TrainArgs>();
  auto* t = group->add_subcommand("train", "Learn BPE merges from text files and write a tokenizer folder");
  t->add_option("--input", train->inputs, "Text files")->required()->expected(1, -1)->check(CLI::ExistingFile);
  t->add_option("--vocab-size", train->vocab_size, "Vocabulary size, special tokens included")->required();
  t->add_option("--out", train->out, "Output tokenizer folder")->required();
  t->add_option("--pattern", train->pattern, "Split pattern: gpt2, cl100k, o200k or a regex")->capture_default_str();
  t->add_option("--special", train->specials,
                "Special tokens (default: <|endoftext|> <|im_start|> <|im_end|>)");
  t->add_option("--min-frequency", train->min_frequency, "Stop when the best pair is rarer")->capture_default_str();
  t->callback([train] {
    run_train(train->inputs, train->vocab_size, train->out, train->pattern, train->specials, train->min_frequency);
  });

  auto encode_src = std::make_shared<TokenizerSource>();
  auto* e = group->add_subcommand("encode", "Encode stdin (one text) and print the ids as one JSON array");
  add_source_options(e, *encode_src);
  e->callback([encode_src] {
    Tokenizer tok = open_tokenizer(*encode_src);
    write_stdout(ids_to_json(tok.encode_ordinary(read_stdin())));
  });

  auto decode_src = std::make_shared<TokenizerSource>();
  auto* d = group->add_subcommand("decode", "Decode a JSON array of ids on stdin to bytes on stdout");
  add_source_options(d, *decode_src);
  d->callback([decode_src] {
    Tokenizer tok = open_tokenizer(*decode_src);
    write_stdout(tok.decode(json_to_ids(read_stdin())));
  });

  struct BenchArgs {
    TokenizerSource src;
    std::string input;
    double seconds = 1.0;
    int threads = 0;
  };
  auto bench = std::make_shared<BenchArgs>();
  auto* b = group->add_subcommand("bench", "Encode throughput on a text file, one JSON line");
  add_source_options(b, bench->src);
  b->add_option("--input", bench->input, "Text file")->required()->check(CLI::ExistingFile);
  b->add_option("--seconds", bench->seconds, "Minimum time per measurement")->capture_default_str();
  b->add_option("--threads", bench->threads, "Threads for the batch measurement (default: OpenMP's)");
  b->callback([bench] { run_bench(bench->src, bench->input, bench->seconds, bench->threads); });
}

}  // namespace ember::cli
