// A prepared data folder's description (meta.json) and the tokenizer fingerprint.
//
//   <data>/train_00000.bin ...   token shards (shard.h), the training split
//   <data>/val_00000.bin ...     the validation split
//   <data>/meta.json             written last: a folder with meta.json is complete
//
// meta.json:
//   {"format": "ember-tokens", "version": 1,
//    "tokenizer": {"name": "...", "vocab_size": 8192, "eot_id": 8189, "fingerprint": "<32 hex digits>"},
//    "dtype": "uint16", "documents": "file" | "paragraphs", "val_fraction": 0.05,
//    "input_bytes": N, "seed": S,
//    "splits": {"train": {"documents": n, "tokens": n, "shards": [{"file": "train_00000.bin", "tokens": n}, ...]},
//               "val":   {...}}}
//
// The fingerprint is a 128-bit hash of everything that decides token ids (the
// bytes of every rank in order, the split pattern, the special tokens and
// their ids), so data made with one tokenizer is never silently read with
// another, even one of the same vocabulary size.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ember/data/shard.h"
#include "ember/tokenizer/tokenizer.h"

namespace ember::data {

std::string tokenizer_fingerprint(const Tokenizer& tok);

struct ShardInfo {
  std::string file;  // name inside the data folder
  uint64_t tokens = 0;
};

struct SplitInfo {
  uint64_t documents = 0;
  uint64_t tokens = 0;
  std::vector<ShardInfo> shards;
};

struct DataMeta {
  std::string tokenizer_name;
  uint64_t vocab_size = 0;
  uint32_t eot_id = 0;
  std::string fingerprint;
  TokenDType dtype = TokenDType::u16;
  std::string documents = "file";
  double val_fraction = 0;
  uint64_t input_bytes = 0;
  uint64_t seed = 0;
  std::map<std::string, SplitInfo> splits;  // "train", "val"

  const SplitInfo& split(const std::string& name, const std::string& dir) const;  // throws naming the folder
};

inline constexpr const char* kMetaName = "meta.json";

std::string format_meta(const DataMeta& meta);
// Reads and validates <dir>/meta.json; errors name the file and the field.
DataMeta read_meta(const std::string& dir);

// Throws ember::Error when `meta` was not made with a tokenizer of this
// vocabulary size and fingerprint (an empty fingerprint checks the size only).
void check_compatible(const DataMeta& meta, const std::string& dir, uint64_t vocab_size,
                      const std::string& fingerprint);

}  // namespace ember::data
