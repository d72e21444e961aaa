// The tokenizer folder: save/load round trip (same ids, same specials, a rank
// file tiktoken can read), and clear errors for broken or mismatched folders.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ember/core/error.h"
#include "ember/tokenizer/tiktoken_file.h"
#include "ember/tokenizer/train.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

class TokenizerFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ember_tokenizer_folder_" + std::to_string(::getpid());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Tokenizer trained() {
    std::vector<std::string> texts(20, "Some text to learn from, with numbers 12345 and 中文 and more text.\n");
    BpeTrainOptions options;
    options.vocab_size = 320;
    options.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|user|>"};
    options.name = "test-bpe";
    return train_bpe(texts, options);
  }

  void write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
  }
  std::string load_error() {
    try {
      Tokenizer::load(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
};

TEST_F(TokenizerFolder, SaveLoadRoundTrip) {
  Tokenizer tok = trained();
  tok.save(dir_);
  EXPECT_TRUE(fs::exists(dir_ + "/tokenizer.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/ranks.tiktoken"));
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << "stray temporary " << entry.path();
  }
  Tokenizer back = Tokenizer::load(dir_);
  EXPECT_EQ(back.name(), "test-bpe");
  EXPECT_EQ(back.pattern(), tok.pattern());
  EXPECT_EQ(back.special_tokens(), tok.special_tokens());
  EXPECT_EQ(back.vocab_size(), tok.vocab_size());
  EXPECT_EQ(back.vocab().entries(), tok.vocab().entries());
  const std::string text = "<|user|>Some numbers 987 and text<|endoftext|>";
  EXPECT_EQ(back.encode(text, AllowedSpecial::All()), tok.encode(text, AllowedSpecial::All()));
  // Saving over an existing folder replaces it cleanly.
  back.save(dir_);
  EXPECT_EQ(Tokenizer::load(dir_).vocab().entries(), tok.vocab().entries());
  // The ranks file is plain tiktoken format.
  EXPECT_EQ(read_tiktoken_file(dir_ + "/ranks.tiktoken").size(), tok.vocab().size());
}

TEST_F(TokenizerFolder, BrokenFoldersGiveClearErrors) {
  EXPECT_NE(load_error().find("no such directory"), std::string::npos) << load_error();
  trained().save(dir_);

  fs::remove(dir_ + "/tokenizer.json");
  EXPECT_NE(load_error().find("tokenizer.json: missing"), std::string::npos) << load_error();

  write("tokenizer.json", "{not json");
  EXPECT_NE(load_error().find("tokenizer.json: not valid JSON"), std::string::npos) << load_error();

  write("tokenizer.json", R"({"format": "other"})");
  EXPECT_NE(load_error().find("\"format\" is not \"ember-bpe\""), std::string::npos) << load_error();

  write("tokenizer.json", R"({"format": "ember-bpe", "version": 2})");
  EXPECT_NE(load_error().find("unsupported version 2"), std::string::npos) << load_error();

  write("tokenizer.json", R"({"format": "ember-bpe", "version": 1, "pattern": "x", "ranks": "../r.tiktoken",
                              "special_tokens": {}, "vocab_size": 300})");
  EXPECT_NE(load_error().find("must name a file inside the folder"), std::string::npos) << load_error();

  write("tokenizer.json", R"({"format": "ember-bpe", "version": 1, "pattern": "x", "ranks": "ranks.tiktoken",
                              "special_tokens": {}, "vocab_size": 99})");
  EXPECT_NE(load_error().find("vocab_size is 99 but the ranks and special tokens give"), std::string::npos)
      << load_error();

  write("tokenizer.json", R"({"format": "ember-bpe", "version": 1, "pattern": "x", "ranks": "ranks.tiktoken",
                              "special_tokens": {"<|eot|>": 3}, "vocab_size": 300})");
  EXPECT_NE(load_error().find("already the rank of a mergeable token"), std::string::npos) << load_error();

  trained().save(dir_);
  write("ranks.tiktoken", "IQ== 0\nnot-a-line\n");
  EXPECT_NE(load_error().find("ranks.tiktoken:2: expected"), std::string::npos) << load_error();

  write("ranks.tiktoken", "IQ== 0\n");
  EXPECT_NE(load_error().find("ranks.tiktoken: no token for the single byte 0x00"), std::string::npos)
      << load_error();
}

}  // namespace
}  // namespace ember
