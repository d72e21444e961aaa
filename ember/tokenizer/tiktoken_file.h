// tiktoken's on-disk formats.
//
// A `.tiktoken` rank file has one token per line: the token's bytes in
// standard base64, one space, its rank in decimal. Empty lines are skipped
// (tiktoken does the same). Errors name `file:line` and what is wrong.
//
// `encodings.json` (as in ../shared/data/tiktoken/) maps an encoding name to
// its split pattern and special tokens:
//   {"cl100k_base": {"pat_str": "...", "special_tokens": {"<|endoftext|>": 100257},
//                    "n_ranks": 100256, "explicit_n_vocab": 100277 (optional)}}
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/tokenizer/vocab.h"

namespace ember {

std::string base64_encode(std::string_view bytes);
// Strict standard base64 (with '=' padding); nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view text);

// Parses rank-file content; `source` names the file in error messages.
std::vector<std::pair<std::string, TokenId>> parse_tiktoken_ranks(std::string_view content,
                                                                  const std::string& source);
std::vector<std::pair<std::string, TokenId>> read_tiktoken_file(const std::string& path);
// The rank-file text for `vocab`, ordered by rank.
std::string format_tiktoken_ranks(const Vocab& vocab);

struct TiktokenEncoding {
  std::string name;
  std::string pattern;
  std::map<std::string, TokenId> special_tokens;
  std::optional<size_t> n_ranks;           // checked against the rank file when present
  std::optional<size_t> explicit_n_vocab;  // likewise, against ranks + specials
};

// Reads the entry `name` of an encodings.json file.
TiktokenEncoding read_tiktoken_encoding(const std::string& json_path, const std::string& name);

// Reads a whole file as bytes; throws "[where] path: cannot read: reason".
std::string read_file_bytes(const std::string& path, const std::string& where = "tokenizer");

}  // namespace ember
