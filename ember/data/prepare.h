// `ember data prepare`: text files -> token shards + meta.json (format: shard.h, meta.h).
//
// Documents. Each input file is one document, and a literal "<|endoftext|>"
// inside a file also ends a document (so one file can hold many, as the
// built-in corpus does). With `paragraphs`, a run of blank lines ends a
// document too (for one big file of prose, e.g. Debian's bible-kjv-text).
// Leading and trailing newlines of a document are dropped; empty documents
// are skipped. In the token stream every document is preceded by the
// tokenizer's <|endoftext|> id, so a sequence always starts at a document
// boundary after an EOT, as in GPT-2's training data.
//
// Split. A document goes to `val` when a hash of its bytes (and the seed),
// as a number in [0, 1), is below val_fraction: the choice does not depend on
// input order or thread count, and duplicate documents land in the same split.
// With val_fraction > 0 at least one document goes to each split (the one with
// the smallest / largest hash is moved); a single document cannot be split,
// which is an error that suggests `paragraphs`.
//
// Work. All input text is read first (it must fit in memory), then documents
// are encoded in parallel batches (Tokenizer::encode_batch) and appended, in
// input order, to the split's stream, cut into shards of shard_tokens tokens.
//
// Nothing half-written: inputs and tokenizer are checked before anything is
// created; shards and meta.json are written into `<out>.partial-<pid>` and
// that folder is renamed to `<out>` only at the end. An existing non-empty
// `<out>` is an error unless `overwrite` is set.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ember/data/meta.h"
#include "ember/tokenizer/tokenizer.h"

namespace ember::data {

struct PrepareOptions {
  std::vector<std::string> inputs;
  std::string out;
  double val_fraction = 0.05;
  uint64_t shard_tokens = 1 << 24;  // 16.8M tokens: 32 MB as uint16; the writer buffers one shard
  bool paragraphs = false;   // also split documents on blank lines
  uint64_t seed = 0;         // salts the document hash of the split
  bool overwrite = false;
  size_t batch_bytes = 8 << 20;  // text encoded per parallel batch
  // Called with (bytes encoded, total bytes) after every batch; for progress bars.
  std::function<void(uint64_t, uint64_t)> on_progress;
};

// Splits one text into documents (see above); views into `text`.
std::vector<std::string_view> split_documents(std::string_view text, bool paragraphs);

// Runs the whole preparation; returns the meta written to <out>/meta.json.
DataMeta prepare_data(const Tokenizer& tok, const PrepareOptions& options);

}  // namespace ember::data
