// Encoding and decoding: byte round trips of random (often invalid UTF-8)
// strings, scan and heap mergers agreeing, pre-tokenization tiling the text,
// special tokens, batches, and decode errors.
#include <gtest/gtest.h>

#include <random>
#include <utility>

#include "ember/core/error.h"
#include "ember/tokenizer/bpe.h"
#include "ember/tokenizer/train.h"
#include "ember/tokenizer/unicode_compat.h"
#include "tokenizer/tiktoken_data.h"

namespace ember {
namespace {

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  // A mix of arbitrary bytes, ASCII words, spaces and multi-byte UTF-8, so
  // that both valid and invalid stretches and all pattern branches occur.
  static const std::vector<std::string> atoms = {"the", " ", "  ", "\n", "\r\n", "'s", "123", "é", "中文", "😀",
                                                 "\xff", "\xc3", "\xe2\x82", "\xf0\x9f", "<|endoftext|>", "\t"};
  std::string s;
  while (s.size() < n) {
    if (rng() % 3 == 0) {
      s += static_cast<char>(rng() & 0xFF);
    } else {
      s += atoms[rng() % atoms.size()];
    }
  }
  return s;
}

const Tokenizer& small_tokenizer() {
  static const Tokenizer tok = [] {
    std::vector<std::string> texts;
    for (int i = 0; i < 50; ++i) {
      texts.push_back("the quick brown fox jumps over the lazy dog " + std::to_string(i * 37) +
                      "\nIt's 中文 text, with émoji 😀 and    spaces.\n");
    }
    return train_bpe(texts, 400, "cl100k");
  }();
  return tok;
}

TEST(TokenizerEncode, RandomBytesRoundTrip) {
  std::mt19937_64 rng(1234);
  std::vector<const Tokenizer*> toks = {&small_tokenizer()};
  if (test::have_tiktoken("cl100k_base")) toks.push_back(&test::tiktoken_encoding("cl100k_base"));
  if (test::have_tiktoken("gpt2")) toks.push_back(&test::tiktoken_encoding("gpt2"));
  for (int trial = 0; trial < 300; ++trial) {
    std::string s = random_bytes(rng, rng() % 300);
    for (const Tokenizer* tok : toks) {
      auto ids = tok->encode_ordinary(s);
      ASSERT_EQ(tok->decode(ids), s) << "trial " << trial;
      for (TokenId id : ids) ASSERT_FALSE(tok->is_special(id));
      ASSERT_EQ(tok->decode(tok->encode(s, AllowedSpecial::All())), s) << "trial " << trial;
    }
  }
}

TEST(TokenizerEncode, PiecesTileTheText) {
  std::mt19937_64 rng(99);
  for (auto [pattern, engine] : {std::pair{kPatternGpt2, Pretokenizer::Engine::automatic},
                                 {kPatternCl100k, Pretokenizer::Engine::automatic},
                                 {kPatternO200k, Pretokenizer::Engine::automatic},
                                 {kPatternGpt2, Pretokenizer::Engine::pcre2},
                                 {kPatternCl100k, Pretokenizer::Engine::pcre2},
                                 {kPatternO200k, Pretokenizer::Engine::pcre2}}) {
    Pretokenizer pre(pattern, engine);
    for (int trial = 0; trial < 100; ++trial) {
      std::string s = random_bytes(rng, rng() % 200);
      std::vector<std::string_view> pieces;
      pre.split(s, pieces);
      std::string joined;
      for (auto p : pieces) {
        ASSERT_FALSE(p.empty());
        joined += p;
      }
      ASSERT_EQ(joined, s);
      // The resumable form gives the same pieces in small steps.
      std::vector<std::string_view> stepped;
      for (size_t pos = 0; pos < s.size();) pos = pre.split_some(s, pos, stepped, 3, pre.needs_exact(s));
      ASSERT_EQ(stepped, pieces);
    }
  }
  std::vector<std::string_view> pieces;
  Pretokenizer(kPatternCl100k).split("Hello world's 12345  \n", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"Hello", " world", "'s", " ", "123", "45", "  \n"}));
}

TEST(TokenizerEncode, NewerCodePointsSelectTheExactPattern) {
  EXPECT_FALSE(has_newer_code_points("plain ascii, 中文, émoji 😀 and \xff\xfe bytes"));
  EXPECT_TRUE(has_newer_code_points("x\u180e"));                 // PCRE2-only whitespace
  EXPECT_TRUE(has_newer_code_points("abc \U000105c0"));          // Todhri, Unicode 16
  EXPECT_TRUE(has_newer_code_points("\u1c89"));                  // Cyrillic TJE, Unicode 16
  EXPECT_FALSE(has_newer_code_points("\xe1\xb2"));                // truncated sequence: skipped
  // PCRE2 runs the rewritten pattern only for such texts (the built-in
  // splitter, builtin_split_test.cpp, is exact for every text).
  Pretokenizer pre(kPatternCl100k, Pretokenizer::Engine::pcre2);
  EXPECT_FALSE(pre.needs_exact("hello world"));
  EXPECT_TRUE(pre.needs_exact("hello \u1c89"));
  // To tiktoken U+1C89 is a letter: one piece with its neighbours.
  std::vector<std::string_view> pieces;
  pre.split("a\u1c89b c", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"a\u1c89b", " c"}));
  EXPECT_EQ(adapt_pattern_for_pcre2("[a-z]+"), "[a-z]+");
  EXPECT_NE(adapt_pattern_for_pcre2(R"(\p{L}+)").find(R"([\p{L}\x{1C89}-\x{1C8A})"), std::string::npos);
}

TEST(TokenizerEncode, ScanAndHeapMergersAgree) {
  const Tokenizer* tok = &small_tokenizer();
  if (test::have_tiktoken("cl100k_base")) tok = &test::tiktoken_encoding("cl100k_base");
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s = random_bytes(rng, 1 + rng() % 120);
    std::vector<TokenId> a, b;
    bpe_merge_piece_scan(tok->vocab(), s, a);
    bpe_merge_piece_heap(tok->vocab(), s, b);
    ASSERT_EQ(a, b) << "trial " << trial;
  }
}

TEST(TokenizerEncode, SpecialTokens) {
  const Tokenizer& tok = small_tokenizer();
  const TokenId eot = tok.special_id("<|endoftext|>");
  const TokenId start = tok.special_id("<|im_start|>");
  const std::string text = "<|im_start|>hi<|endoftext|><|endoftext|>x<|im_end";
  auto ids = tok.encode(text, AllowedSpecial::All());
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids.front(), start);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), eot), 2);
  EXPECT_EQ(tok.decode(ids), text);
  // Never produced by merges, whatever the text.
  for (TokenId id : tok.encode_ordinary(text)) EXPECT_FALSE(tok.is_special(id));
  EXPECT_EQ(tok.token_bytes(eot), "<|endoftext|>");
  EXPECT_THROW(tok.special_id("<|nope|>"), Error);
}

TEST(TokenizerEncode, LongestSpecialTokenWinsAtOnePosition) {
  Vocab v = small_tokenizer().vocab();
  const TokenId base = v.end_rank();
  Tokenizer tok(v, kPatternCl100k, {{"<|a|>", base}, {"<|a|>x", base + 1}});
  EXPECT_EQ(tok.encode("<|a|>x<|a|>", AllowedSpecial::All()), (std::vector<TokenId>{base + 1, base}));
}

TEST(TokenizerEncode, BatchesMatchSingleCalls) {
  const Tokenizer& tok = small_tokenizer();
  std::mt19937_64 rng(5);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(random_bytes(rng, rng() % 500));
  auto batch = tok.encode_batch(texts);
  auto batch_special = tok.encode_batch(texts, AllowedSpecial::All());
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(batch[i], tok.encode_ordinary(texts[i]));
    EXPECT_EQ(batch_special[i], tok.encode(texts[i], AllowedSpecial::All()));
  }
  EXPECT_EQ(tok.decode_batch(batch), texts);
}

TEST(TokenizerEncode, DecodeRejectsUnknownIds) {
  const Tokenizer& tok = small_tokenizer();
  std::vector<TokenId> bad = {1, 2, static_cast<TokenId>(tok.vocab_size())};
  try {
    tok.decode(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[tokenizer] id " + std::to_string(tok.vocab_size()) + " is not in the vocabulary"),
              std::string::npos)
        << e.what();
  }
  std::vector<std::vector<TokenId>> batch = {{1}, bad};
  EXPECT_THROW(tok.decode_batch(batch), Error);
  EXPECT_EQ(tok.decode({}), "");
  EXPECT_TRUE(tok.encode_ordinary("").empty());
}

}  // namespace
}  // namespace ember
