// `ember data prepare|builtin|inspect`: token data on the command line.
//
//   ember data prepare --tokenizer DIR --input FILES... --out DIR [--val-fraction F] [--shard-tokens N]
//                      [--paragraphs] [--seed S] [--overwrite]
//   ember data builtin --out FILE [--megabytes N] [--seed S]
//   ember data inspect --data DIR          meta.json summary + every shard validated, one JSON line
//
// prepare prints one JSON line (tokens and documents per split, seconds) and a
// progress bar on stderr; see ember/data/prepare.h for documents, the split and
// the guarantees on bad input.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/data/builtin_corpus.h"
#include "ember/data/prepare.h"
#include "ember/io/atomic_file.h"
#include "ember/util/progress.h"

namespace ember::cli {

namespace {

void run_prepare(const std::string& tokenizer_dir, data::PrepareOptions options) {
  const auto start = std::chrono::steady_clock::now();
  Tokenizer tok = Tokenizer::load(tokenizer_dir);
  std::unique_ptr<ProgressBar> bar;
  options.on_progress = [&](uint64_t done, uint64_t total) {
    // The bar counts MB so its rate reads as MB/s.
    const int64_t total_mb = static_cast<int64_t>((total + 999'999) / 1'000'000);
    if (!bar) bar = std::make_unique<ProgressBar>("tokenize", total_mb, "MB");
    bar->update(done >= total ? total_mb : static_cast<int64_t>(done / 1'000'000));
  };
  const data::DataMeta meta = data::prepare_data(tok, options);
  if (bar) bar->finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::ordered_json line;
  line["out"] = options.out;
  line["tokenizer"] = meta.tokenizer_name;
  line["vocab_size"] = meta.vocab_size;
  line["dtype"] = data::token_dtype_name(meta.dtype);
  for (const auto& [name, s] : meta.splits) {
    line[name + "_documents"] = s.documents;
    line[name + "_tokens"] = s.tokens;
    line[name + "_shards"] = s.shards.size();
  }
  line["input_bytes"] = meta.input_bytes;
  line["seconds"] = seconds;
  std::cout << line.dump() << std::endl;
}

void run_builtin(const std::string& out, double megabytes, uint64_t seed) {
  EMBER_CHECK(megabytes > 0 && megabytes <= 4096, "data", "builtin: --megabytes ", megabytes, " is not in (0, 4096]");
  const std::string text = data::builtin_corpus(static_cast<uint64_t>(megabytes * 1e6), seed);
  write_file_atomic(out, text);
  nlohmann::ordered_json line;
  line["out"] = out;
  line["bytes"] = text.size();
  line["seed"] = seed;
  std::cout << line.dump() << std::endl;
}

void run_inspect(const std::string& dir) {
  const data::DataMeta meta = data::read_meta(dir);
  nlohmann::ordered_json line;
  line["data"] = dir;
  line["tokenizer"] = meta.tokenizer_name;
  line["vocab_size"] = meta.vocab_size;
  line["fingerprint"] = meta.fingerprint;
  line["dtype"] = data::token_dtype_name(meta.dtype);
  for (const auto& [name, s] : meta.splits) {
    for (const auto& sh : s.shards) {
      data::TokenShard shard((std::filesystem::path(dir) / sh.file).string());
      if (shard.size() != sh.tokens) {
        fail("data", shard.path(), ": holds ", shard.size(), " tokens but meta.json says ", sh.tokens);
      }
      for (size_t i = 0; i < shard.size(); ++i) {
        if (shard.at(i) >= meta.vocab_size) {
          fail("data", shard.path(), ": token ", i, " is ", shard.at(i), ", outside the vocabulary of ", meta.vocab_size);
        }
      }
    }
    line[name + "_documents"] = s.documents;
    line[name + "_tokens"] = s.tokens;
    line[name + "_shards"] = s.shards.size();
  }
  line["ok"] = true;
  std::cout << line.dump() << std::endl;
}

}  // namespace

void register_data(CLI::App& app) {
  auto* group = app.add_subcommand("data", "Prepare token shards for training, and the built-in corpus");
  group->require_subcommand(1);

  struct PrepareArgs {
    std::string tokenizer;
    data::PrepareOptions options;
  };
  auto prep = std::make_shared<PrepareArgs>();
  auto* p = group->add_subcommand("prepare", "Tokenize text files into train/val token shards + meta.json");
  p->footer(
      "Documents: each file is one, and so is each stretch between literal <|endoftext|> strings (with "
      "--paragraphs also each blank-line-separated paragraph); each document is preceded by the <|endoftext|> id. "
      "A document goes to val when a hash of its text (salted by --seed) falls below --val-fraction, so the split "
      "does not depend on file order or threads. The folder is built under <out>.partial-<pid> and renamed into "
      "place when complete; prints one JSON line.");
  p->add_option("--tokenizer", prep->tokenizer, "Tokenizer folder (from `ember tokenizer train`)")->required();
  p->add_option("--input", prep->options.inputs, "Text files (UTF-8)")->required()->expected(1, -1);
  p->add_option("--out", prep->options.out, "Output data folder (created; must not exist or be empty)")->required();
  p->add_option("--val-fraction", prep->options.val_fraction, "Share of documents for the val split, in [0, 1)")
      ->capture_default_str();
  p->add_option("--shard-tokens", prep->options.shard_tokens, "Tokens per shard file")->capture_default_str();
  p->add_flag("--paragraphs", prep->options.paragraphs, "Blank lines also separate documents");
  p->add_option("--seed", prep->options.seed, "Salts the document hash that picks the val split")->capture_default_str();
  p->add_flag("--overwrite", prep->options.overwrite, "Replace a non-empty --out folder (only once the new one is complete)");
  p->callback([prep] { run_prepare(prep->tokenizer, prep->options); });

  struct BuiltinArgs {
    std::string out;
    double megabytes = 5;
    uint64_t seed = 1;
  };
  auto builtin = std::make_shared<BuiltinArgs>();
  auto* b = group->add_subcommand("builtin", "Write the built-in corpus of generated simple English text");
  b->footer(
      "Templated documents about a small generated world: counting stories, arithmetic in words and digits, "
      "comparisons, routines, dialogues, short stories, town facts. Documents are separated by <|endoftext|>; "
      "the same --megabytes and --seed give the same text on every machine.");
  b->add_option("--out", builtin->out, "Output text file (written atomically)")->required();
  b->add_option("--megabytes", builtin->megabytes, "Approximate size in MB (10^6 bytes)")->capture_default_str();
  b->add_option("--seed", builtin->seed, "Generator seed")->capture_default_str();
  b->callback([builtin] { run_builtin(builtin->out, builtin->megabytes, builtin->seed); });

  auto inspect_dir = std::make_shared<std::string>();
  auto* i = group->add_subcommand("inspect", "Validate a data folder (meta.json, every shard, every token id); one JSON line");
  i->add_option("--data", *inspect_dir, "Data folder (from `ember data prepare`)")->required();
  i->callback([inspect_dir] { run_inspect(*inspect_dir); });
}

}  // namespace ember::cli
