// The text side of streaming: incremental UTF-8 (Utf8Stream), stop strings
// held back across pieces (StopMatcher), and both together over tokens
// (Detokenizer).
#include <gtest/gtest.h>

#include "ember/serve/detokenizer.h"
#include "ember/serve/stop_matcher.h"
#include "ember/serve/utf8_stream.h"
#include "serve/scripted_model.h"

namespace ember::serve {
namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

TEST(Utf8Stream, HoldsACharacterSplitAcrossPiecesUntilComplete) {
  Utf8Stream s;
  EXPECT_EQ(s.push("a\xC3"), "a");  // é = C3 A9
  EXPECT_EQ(s.pending(), 1u);
  EXPECT_EQ(s.push("\xA9"), "\xC3\xA9");
  EXPECT_EQ(s.push("\xF0\x9F"), "");  // 😀 = F0 9F 98 80
  EXPECT_EQ(s.push("\x98"), "");
  EXPECT_EQ(s.push("\x80!"), "\xF0\x9F\x98\x80!");
  EXPECT_EQ(s.finish(), "");
}

TEST(Utf8Stream, ReplacesInvalidBytesWithOneReplacementPerMaximalSubpart) {
  Utf8Stream s;
  EXPECT_EQ(s.push("\x80"), kFFFD);               // a lone continuation byte
  EXPECT_EQ(s.push("\xC0\xAF"), kFFFD + kFFFD);    // overlong: C0 is never a lead byte
  EXPECT_EQ(s.push("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);  // a surrogate: ED A0 is not allowed
  EXPECT_EQ(s.push("\xE2\x82x"), kFFFD + "x");    // cut short by an ASCII byte
  EXPECT_EQ(s.push("\xF4\x90"), kFFFD + kFFFD);    // above U+10FFFF
  EXPECT_EQ(s.push("\xE2\x82"), "");
  EXPECT_EQ(s.finish(), kFFFD);                    // truncated at the end
}

TEST(Utf8Stream, ValidatesWholeStrings) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\x80"));  // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));  // surrogate
}

TEST(StopMatcher, HoldsBackAPossibleStartAndDropsTheStopString) {
  StopMatcher m({"<|end|>"});
  EXPECT_EQ(m.push("Hello <"), "Hello ");
  EXPECT_EQ(m.held(), 1u);
  EXPECT_EQ(m.push("|en"), "");
  EXPECT_EQ(m.push("d|> and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "<|end|>");
  EXPECT_EQ(m.push("later"), "");
  EXPECT_EQ(m.finish(), "");
}

TEST(StopMatcher, ReleasesHeldTextThatDoesNotContinueIntoAStop) {
  StopMatcher m({"<|end|>"});
  EXPECT_EQ(m.push("a <|e"), "a ");
  EXPECT_EQ(m.push("x"), "<|ex");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("<|"), "");
  EXPECT_EQ(m.finish(), "<|");
}

TEST(StopMatcher, EarliestOfSeveralStopsWinsAndEmptyStopsAreIgnored) {
  StopMatcher m({"", "world", "lo w"});
  EXPECT_EQ(m.push("hello world"), "hel");
  EXPECT_EQ(m.matched(), "lo w");
  StopMatcher none;
  EXPECT_EQ(none.push("anything"), "anything");
  EXPECT_EQ(none.held(), 0u);
}

TEST(StopMatcher, MatchesAStopStringInsideOnePiece) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.push("line one\n"), "line one");
  EXPECT_EQ(m.push("\nline two"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(Detokenizer, StreamsBytesAsUtf8AndSkipsSpecialTokens) {
  const Tokenizer tok = testing::byte_tokenizer();
  Detokenizer d(tok);
  EXPECT_EQ(d.push('h'), "h");
  EXPECT_EQ(d.push(0xC3), "");
  EXPECT_EQ(d.push(0xA9), "\xC3\xA9");
  EXPECT_EQ(d.push(258), "");  // <|im_end|> adds no text
  EXPECT_EQ(d.push(0xE2), "");
  EXPECT_EQ(d.finish(), kFFFD);
}

TEST(Detokenizer, StopStringSpanningTokensEndsTheText) {
  const Tokenizer tok = testing::byte_tokenizer();
  Detokenizer d(tok, {"<s"});
  std::string text;
  for (char c : std::string("OK <script>")) text += d.push(c);
  EXPECT_EQ(text, "OK ");
  EXPECT_TRUE(d.stopped());
  EXPECT_EQ(d.finish(), "");
}

TEST(Detokenizer, TokenTextShowsPartialCharactersAsReplacement) {
  const Tokenizer tok = testing::byte_tokenizer();
  EXPECT_EQ(token_text(tok, 'a'), "a");
  EXPECT_EQ(token_text(tok, 0xC3), kFFFD);
  EXPECT_EQ(token_text(tok, 258), "<|im_end|>");
}

}  // namespace ember::serve

TEST(Detokenizer, IdsPastTheTokenizerAddNothing) {
  // A model whose vocab_size is padded beyond its tokenizer can sample such ids;
  // the server must stream nothing for them, not throw on the stepping thread.
  const Tokenizer tok = testing::byte_tokenizer();
  Detokenizer d(tok, {});
  const int64_t past = int64_t(tok.vocab_size());
  EXPECT_EQ(d.push('h'), "h");
  EXPECT_EQ(d.push(past), "");
  EXPECT_EQ(d.push(past + 1000), "");
  EXPECT_EQ(d.push('i'), "i");
  EXPECT_EQ(token_text(tok, past), "");
}
}  // namespace
