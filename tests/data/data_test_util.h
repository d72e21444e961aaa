// Helpers shared by the data tests: a fresh temporary folder and a small tokenizer.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "ember/core/error.h"
#include "ember/data/builtin_corpus.h"
#include "ember/tokenizer/train.h"

namespace ember::data::testing {

namespace fs = std::filesystem;

// A folder removed when the object goes away.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = fs::path(::testing::TempDir()) / ("ember_data_" + tag + "_" + std::to_string(::getpid()) + "_" +
                                             std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A BPE tokenizer trained on a little of the built-in corpus (vocab 400).
inline const Tokenizer& small_tokenizer() {
  static const Tokenizer tok = [] {
    BpeTrainOptions options;
    options.vocab_size = 400;
    options.name = "data-test-bpe";
    return train_bpe({builtin_corpus(200'000, 7)}, options);
  }();
  return tok;
}

// The message of the ember::Error that `fn` throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace ember::data::testing
