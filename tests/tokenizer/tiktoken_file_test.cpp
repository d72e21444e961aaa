// The .tiktoken rank-file reader: base64, and a clear `file:line` error for
// every kind of malformed line; Vocab's own checks (missing bytes, bad ranks).
#include <gtest/gtest.h>

#include <string>

#include "ember/core/error.h"
#include "ember/tokenizer/tiktoken_file.h"
#include "ember/tokenizer/tokenizer.h"

namespace ember {
namespace {

// All 256 single bytes at ranks 0..255, then `extra`.
std::string byte_ranks(const std::string& extra = "") {
  std::string out;
  for (int b = 0; b < 256; ++b) out += base64_encode(std::string(1, char(b))) + " " + std::to_string(b) + "\n";
  return out + extra;
}

std::string error_of(const std::string& content) {
  try {
    Vocab v(parse_tiktoken_ranks(content, "bad.tiktoken"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TiktokenFile, Base64RoundTripAndStrictness) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x10"}) {
    if (s.empty()) continue;
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("Hello"), "SGVsbG8=");
  EXPECT_EQ(base64_decode("SGVsbG8="), "Hello");
  EXPECT_FALSE(base64_decode("SGVsbG8"));    // length not a multiple of 4
  EXPECT_FALSE(base64_decode("SGV*bG8="));   // bad character
  EXPECT_FALSE(base64_decode("SG=sbG8="));   // padding in the middle
  EXPECT_FALSE(base64_decode("SGVsbG9="));   // non-canonical trailing bits
  EXPECT_FALSE(base64_decode(""));
}

TEST(TiktokenFile, ParsesRanksSkippingEmptyLinesAndCR) {
  auto tokens = parse_tiktoken_ranks("IQ== 0\r\n\nIg== 7\n", "x");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0], (std::pair<std::string, TokenId>{"!", 0}));
  EXPECT_EQ(tokens[1], (std::pair<std::string, TokenId>{"\"", 7}));
}

TEST(TiktokenFile, MalformedLinesNameFileAndLine) {
  struct Case {
    std::string content;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"IQ== 0\nIg==\n", "bad.tiktoken:2: expected '<base64 token> <rank>', got 'Ig=='"},
      {"IQ== 0 1\n", "bad.tiktoken:1: expected"},
      {"IQ== 0\n\nI*== 1\n", "bad.tiktoken:3: invalid base64 token 'I*=='"},
      {"IQ== -1\n", "bad.tiktoken:1: rank '-1' is not an integer"},
      {"IQ== 12x\n", "bad.tiktoken:1: rank '12x' is not an integer"},
      {"IQ== 99999999999\n", "bad.tiktoken:1: rank '99999999999' is not an integer in [0, 2^31)"},
      {"IQ== 0\nIg== 1\nIQ== 2\n", "bad.tiktoken:3: token 'IQ==' repeats line 1"},
      {"IQ== 0\nIg== 0\n", "bad.tiktoken:2: rank 0 repeats line 1"},
      {"\n\n", "bad.tiktoken: no tokens in rank file"},
  };
  for (const Case& c : cases) {
    std::string msg = error_of(c.content);
    EXPECT_NE(msg.find("[tokenizer] " + c.expect), std::string::npos) << "got: " << msg;
  }
}

TEST(TiktokenFile, VocabNeedsEveryByteAndSaneRanks) {
  // Drop byte 0x41 ('A' = "QQ==") from the table.
  std::string content;
  for (int b = 0; b < 256; ++b) {
    if (b != 0x41) content += base64_encode(std::string(1, char(b))) + " " + std::to_string(b) + "\n";
  }
  EXPECT_NE(error_of(content).find("no token for the single byte 0x41"), std::string::npos) << error_of(content);
  EXPECT_NE(error_of(byte_ranks("YWI= 900000000\n")).find("rank 900000000 is too large"), std::string::npos);
  EXPECT_EQ(error_of(byte_ranks("YWI= 256\n")), "");
}

TEST(TiktokenFile, VocabFindAndMerge) {
  Vocab v(parse_tiktoken_ranks(byte_ranks("YWI= 256\nYWJj 257\n"), "t"));  // "ab", "abc"
  EXPECT_EQ(v.size(), 258u);
  EXPECT_EQ(v.find("ab"), 256u);
  EXPECT_EQ(v.find("abc"), 257u);
  EXPECT_EQ(v.find("abcd"), kNoToken);
  EXPECT_EQ(v.merge('a', 'b'), 256u);
  EXPECT_EQ(v.merge(256, 'c'), 257u);
  EXPECT_EQ(v.merge('b', 'c'), kNoToken);  // "bc" is not a token
  EXPECT_EQ(v.merge('a', 256), kNoToken);
  EXPECT_EQ(v.bytes(257), "abc");
}

TEST(TiktokenFile, VocabFindComparesTheLengthAndEveryByte) {
  // A slot holds a token's length and first 8 bytes, zero-padded: tokens that
  // differ only by trailing NULs, or only after byte 8, must stay apart.
  std::vector<std::pair<std::string, TokenId>> tokens;
  for (unsigned b = 0; b < 256; ++b) tokens.emplace_back(std::string(1, char(b)), b);
  const std::vector<std::string> extra = {std::string("a\0", 2), std::string("a\0\0", 3), std::string(9, '\0'),
                                          "abcdefgh", std::string("abcdefgh\0", 9), "abcdefghi",
                                          "abcdefghijklmnopq", "abcdefghijklmnopr"};
  for (size_t i = 0; i < extra.size(); ++i) tokens.emplace_back(extra[i], TokenId(256 + i));
  Vocab v(tokens, "t");
  for (size_t i = 0; i < extra.size(); ++i) EXPECT_EQ(v.find(extra[i]), TokenId(256 + i)) << i;
  for (const std::string& miss : {std::string("a\0\0\0", 4), std::string(3, '\0'), std::string(10, '\0'),
                                  std::string("abcdefghj"), std::string("abcdefghijklmnops"), std::string("abcdefg")})
    EXPECT_EQ(v.find(miss), kNoToken) << miss.size();
  EXPECT_EQ(v.find(std::string_view{}), kNoToken);
  EXPECT_EQ(v.find(std::string(1, '\0')), 0u);
}

TEST(TiktokenFile, FormatRoundTrips) {
  Vocab v(parse_tiktoken_ranks(byte_ranks("YWI= 256\n"), "t"));
  std::string text = format_tiktoken_ranks(v);
  EXPECT_EQ(text, byte_ranks("YWI= 256\n"));
}

TEST(TiktokenFile, ReadErrorsNameThePath) {
  try {
    read_tiktoken_file("/nonexistent/x.tiktoken");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.tiktoken: cannot read"), std::string::npos) << e.what();
  }
}

TEST(TiktokenFile, SpecialTokenCollisionsAreRejected) {
  Vocab v(parse_tiktoken_ranks(byte_ranks(), "t"));
  EXPECT_THROW(Tokenizer(v, kPatternGpt2, {{"<|x|>", 5}}), Error);              // id of a byte token
  EXPECT_THROW(Tokenizer(v, kPatternGpt2, {{"<|x|>", 300}, {"<|y|>", 300}}), Error);
  EXPECT_THROW(Tokenizer(v, kPatternGpt2, {{"", 300}}), Error);
  EXPECT_THROW(Tokenizer(v, "(unclosed", {}), Error);
}

}  // namespace
}  // namespace ember
