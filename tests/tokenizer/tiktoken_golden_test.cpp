// Encoding identical to tiktoken: the golden ids in ../shared/data/tiktoken/golden.jsonl
// (produced by the official tiktoken core) for gpt2, cl100k_base and o200k_base,
// plus special tokens and round trips with the real vocabularies.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ember/core/error.h"

#include "tokenizer/tiktoken_data.h"

namespace ember {
namespace {

class TiktokenGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TiktokenGolden, MatchesGoldenIds) {
  const std::string name = GetParam();
  const std::string golden = test::tiktoken_dir() + "/golden.jsonl";
  if (!test::have_tiktoken(name) || !std::filesystem::exists(golden)) {
    GTEST_SKIP() << "no tiktoken data in " << test::tiktoken_dir() << " (set EMBER_TIKTOKEN_DIR)";
  }
  const Tokenizer& tok = test::tiktoken_encoding(name);
  std::ifstream in(golden);
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    auto rec = nlohmann::json::parse(line);
    if (rec["encoding"] != name) continue;
    const std::string text = rec["text"];
    const std::vector<TokenId> want = rec["ids"].get<std::vector<TokenId>>();
    std::vector<TokenId> got = tok.encode_ordinary(text);
    EXPECT_EQ(got, want) << name << " text: " << text;
    EXPECT_EQ(tok.decode(got), text);
    ++checked;
  }
  EXPECT_GT(checked, 100) << "golden.jsonl has too few records for " << name;
}

INSTANTIATE_TEST_SUITE_P(Encodings, TiktokenGolden, ::testing::Values("gpt2", "cl100k_base", "o200k_base"));

TEST(TiktokenEncoding, SpecialTokensOnlyWhenAllowed) {
  if (!test::have_tiktoken("cl100k_base")) GTEST_SKIP() << "no tiktoken data";
  const Tokenizer& tok = test::tiktoken_encoding("cl100k_base");
  const std::string text = "hi<|endoftext|>there<|fim_prefix|>";
  const TokenId eot = tok.special_id("<|endoftext|>");
  EXPECT_EQ(eot, 100257u);
  EXPECT_EQ(tok.vocab_size(), 100277u);

  auto all = tok.encode(text, AllowedSpecial::All());
  EXPECT_EQ(all, (std::vector<TokenId>{6151, 100257, 19041, 100258}));
  EXPECT_EQ(tok.decode(all), text);

  // Not allowed: the strings are ordinary text and never produce special ids.
  for (const auto& ids : {tok.encode_ordinary(text), tok.encode(text, AllowedSpecial::None())}) {
    for (TokenId id : ids) EXPECT_FALSE(tok.is_special(id)) << id;
    EXPECT_EQ(tok.decode(ids), text);
  }
  AllowedSpecial only_eot{false, {"<|endoftext|>"}};
  auto some = tok.encode(text, only_eot);
  EXPECT_EQ(std::count(some.begin(), some.end(), eot), 1);
  EXPECT_EQ(std::count(some.begin(), some.end(), 100258u), 0);
  EXPECT_EQ(tok.decode(some), text);
}

TEST(TiktokenEncoding, Gpt2VocabularyMatchesEncodingsJson) {
  if (!test::have_tiktoken("gpt2")) GTEST_SKIP() << "no tiktoken data";
  const Tokenizer& tok = test::tiktoken_encoding("gpt2");
  EXPECT_EQ(tok.vocab().size(), 50256u);
  EXPECT_EQ(tok.vocab_size(), 50257u);
  EXPECT_EQ(tok.special_id("<|endoftext|>"), 50256u);
  EXPECT_EQ(tok.encode_ordinary("Hello, world!"), (std::vector<TokenId>{15496, 11, 995, 0}));
}

TEST(TiktokenEncoding, LongPiecesAndWhitespaceRuns) {
  if (!test::have_tiktoken("cl100k_base")) GTEST_SKIP() << "no tiktoken data";
  const Tokenizer& tok = test::tiktoken_encoding("cl100k_base");
  // A 200 KB piece with no split point goes through the heap merger; runs of
  // spaces exercise the look-ahead; both must still round-trip exactly.
  std::string letters(200000, 'x');
  std::string spaces = std::string(100000, ' ') + "x" + std::string(5000, '\n') + std::string(3000, '\t');
  for (const std::string& text : {letters, spaces}) {
    auto ids = tok.encode_ordinary(text);
    EXPECT_EQ(tok.decode(ids), text);
    EXPECT_LT(ids.size(), text.size() / 4);
  }
}

TEST(TiktokenEncoding, InvalidUtf8RoundTrips) {
  if (!test::have_tiktoken("o200k_base")) GTEST_SKIP() << "no tiktoken data";
  const Tokenizer& tok = test::tiktoken_encoding("o200k_base");
  const std::string text = "ok \xff\xfe caf\xc3 \xe2\x82 tail \xed\xa0\x80 end\x80";
  EXPECT_EQ(tok.decode(tok.encode_ordinary(text)), text);
}

// Code points where PCRE2 10.42 (Unicode 14) and tiktoken's regex (Unicode 16)
// disagree: U+180E (whitespace to PCRE2 only) and letters/digits added in
// Unicode 16. Ids from tiktoken 0.14.
TEST(TiktokenEncoding, CodePointsNewerThanPcre2) {
  if (!test::have_tiktoken("cl100k_base") || !test::have_tiktoken("o200k_base")) GTEST_SKIP() << "no tiktoken data";
  const std::string ws = "x\u180e\u180e  y\u180e";
  const std::string letters = "Tje \u1c89\u1c8a abc \U000105c0\U000105c1 12\U00010d40\U00010d41 ok";
  const Tokenizer& cl = test::tiktoken_encoding("cl100k_base");
  EXPECT_EQ(cl.encode_ordinary(ws), (std::vector<TokenId>{87, 157, 254, 236, 157, 254, 236, 220, 379, 157, 254, 236}));
  EXPECT_EQ(cl.encode_ordinary(letters),
            (std::vector<TokenId>{51, 3841, 87189, 110, 231, 157, 110, 232, 40122, 220, 172, 238, 245, 222, 172,
                                  238, 245, 223, 220, 717, 172, 238, 113, 222, 172, 238, 113, 223, 5509}));
  const Tokenizer& o200k = test::tiktoken_encoding("o200k_base");
  EXPECT_EQ(o200k.encode_ordinary(ws), (std::vector<TokenId>{87, 157, 254, 236, 157, 254, 236, 220, 342, 157, 254, 236}));
  EXPECT_EQ(o200k.encode_ordinary(letters),
            (std::vector<TokenId>{51, 1587, 220, 157, 110, 231, 157, 110, 232, 75094, 220, 172, 238, 245, 222, 172,
                                  238, 245, 223, 220, 899, 172, 238, 113, 222, 172, 238, 113, 223, 4763}));
}

TEST(TiktokenEncoding, MissingEncodingsJsonIsAClearError) {
  if (!test::have_tiktoken("gpt2")) GTEST_SKIP() << "no tiktoken data";
  const std::string dir = ::testing::TempDir() + "/ember_tok_nojson";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(test::tiktoken_dir() + "/gpt2.tiktoken", dir + "/gpt2.tiktoken",
                             std::filesystem::copy_options::overwrite_existing);
  try {
    Tokenizer::from_tiktoken(dir + "/gpt2.tiktoken");
    FAIL() << "expected an error";
  } catch (const ember::Error& e) {
    EXPECT_NE(std::string(e.what()).find("encodings.json"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ember
