// Where the tests find the shared tiktoken files (rank files, encodings.json,
// golden.jsonl): $EMBER_TIKTOKEN_DIR, else ../shared/data/tiktoken beside the
// repository. Tests that need them skip (saying why) when they are absent.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "ember/tokenizer/tokenizer.h"

namespace ember::test {

inline std::string tiktoken_dir() {
  if (const char* env = std::getenv("EMBER_TIKTOKEN_DIR"); env && *env) return env;
  namespace fs = std::filesystem;
  return (fs::path(__FILE__).parent_path() / ".." / ".." / ".." / "shared" / "data" / "tiktoken")
      .lexically_normal()
      .string();
}

inline bool have_tiktoken(const std::string& name) {
  return std::filesystem::exists(tiktoken_dir() + "/" + name + ".tiktoken");
}

// Loaded once per process: the big rank files take a while to parse.
inline const Tokenizer& tiktoken_encoding(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) slot = std::make_unique<Tokenizer>(Tokenizer::from_tiktoken(tiktoken_dir() + "/" + name + ".tiktoken"));
  return *slot;
}

}  // namespace ember::test
