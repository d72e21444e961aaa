// The built-in corpus: deterministic for a seed, the requested size, and
// statements that are true (arithmetic and counting add up).
#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "data/data_test_util.h"
#include "ember/data/prepare.h"

namespace ember::data {
namespace {

TEST(BuiltinCorpus, DeterministicAndSized) {
  const std::string a = builtin_corpus(100'000, 1);
  EXPECT_EQ(a, builtin_corpus(100'000, 1));
  EXPECT_NE(a, builtin_corpus(100'000, 2));
  EXPECT_GE(a.size(), 100'000u);
  EXPECT_LT(a.size(), 102'000u);
  // A longer corpus starts with the shorter one (generation is sequential).
  EXPECT_EQ(builtin_corpus(200'000, 1).substr(0, a.size()), a);
}

TEST(BuiltinCorpus, DocumentsAndVariety) {
  const std::string text = builtin_corpus(300'000, 5);
  const auto docs = split_documents(text, false);
  EXPECT_GT(docs.size(), 300u);
  for (const char* needle : {" plus ", " minus ", " times ", "Once upon a time", "Let us count.", " is bigger than ",
                             "Where is my ", " lives in ", " gives ", " kilometres long", " = "}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
  }
  for (unsigned char c : text) EXPECT_LT(c, 0x80);  // plain ASCII English
}

TEST(BuiltinCorpus, DigitArithmeticAndTownSumsAreCorrect) {
  const std::string text = builtin_corpus(200'000, 4);
  const std::regex eq(R"((\d+) ([-+x]) (\d+) = (\d+)\n)");
  int checked = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), eq), end; it != end; ++it, ++checked) {
    const long a = std::stol((*it)[1]), b = std::stol((*it)[3]), r = std::stol((*it)[4]);
    const char op = std::string((*it)[2])[0];
    EXPECT_EQ(r, op == '+' ? a + b : op == '-' ? a - b : a * b) << it->str();
  }
  EXPECT_GT(checked, 100);
  const std::regex sells(R"(sells (\d+) [a-z ]+ for (\d+) dollars each, which makes (\d+) dollars)");
  checked = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), sells), end; it != end; ++it, ++checked) {
    EXPECT_EQ(std::stol((*it)[1]) * std::stol((*it)[2]), std::stol((*it)[3])) << it->str();
  }
  EXPECT_GT(checked, 10);
}

TEST(BuiltinCorpus, ArithmeticIsCorrect) {
  std::map<std::string, int> value;
  for (int n = 0; n <= 999; ++n) value[number_words(n)] = n;
  EXPECT_EQ(number_words(0), "zero");
  EXPECT_EQ(number_words(21), "twenty-one");
  EXPECT_EQ(number_words(144), "one hundred and forty-four");
  EXPECT_EQ(number_words(700), "seven hundred");
  EXPECT_THROW(number_words(1000), Error);
  const std::string text = builtin_corpus(200'000, 9);
  const std::regex sum(R"(([A-Z][a-z-]*(?: hundred(?: and [a-z-]+)?)?) (plus|minus|times) ([a-z-]+(?: hundred(?: and [a-z-]+)?)?) is ([a-z-]+(?: hundred(?: and [a-z-]+)?)?)\.)");
  int checked = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), sum), end; it != end; ++it) {
    std::string x = (*it)[1];
    x[0] = static_cast<char>(x[0] - 'A' + 'a');
    ASSERT_TRUE(value.count(x) && value.count((*it)[3]) && value.count((*it)[4])) << it->str();
    const int a = value[x], b = value[(*it)[3]], r = value[(*it)[4]];
    const std::string op = (*it)[2];
    EXPECT_EQ(r, op == "plus" ? a + b : op == "minus" ? a - b : a * b) << it->str();
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

}  // namespace
}  // namespace ember::data
