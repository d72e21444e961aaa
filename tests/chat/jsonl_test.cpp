// Chat JSON Lines files: the three record kinds read back what was written, and
// every malformed line is an error naming file and line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ember/chat/jsonl.h"
#include "ember/core/error.h"

namespace ember::chat {
namespace {

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/ember_jsonl_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatJsonl, ConversationsRoundTrip) {
  const Conversation c = {{Role::system, "s"}, {Role::user, "q \"quoted\"\n"}, {Role::assistant, "a"}};
  const std::string path = ::testing::TempDir() + "/ember_jsonl_rt.jsonl";
  write_jsonl(path, {conversation_to_json(c), conversation_to_json(c)});
  const auto back = read_conversations(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0], c);
}

TEST(ChatJsonl, PreferencesBothForms) {
  const std::string path = write_file("prefs.jsonl",
                                      R"({"prompt": "q1", "chosen": "good", "rejected": "bad"})"
                                      "\n\n"
                                      R"({"prompt": [{"role": "user", "content": "q2"}], "responses": ["a", "b", "c"]})"
                                      "\n");
  const auto p = read_preferences(path);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].responses, (std::vector<std::string>{"good", "bad"}));
  EXPECT_EQ(p[1].prompt.back().content, "q2");
  EXPECT_EQ(p[1].responses.size(), 3u);
}

TEST(ChatJsonl, PreferenceKindAndLabelsRoundTrip) {
  PreferenceRecord r;
  r.prompt = {{Role::user, "How old is Ana?"}};
  r.responses = {"Ana is 30 years old.", "Ana is 31 years old.", "What a stupid question."};
  r.kind = "fact";
  r.labels = {"ideal", "wrong", "rude"};
  const std::string path = ::testing::TempDir() + "/ember_jsonl_labels.jsonl";
  PreferenceRecord plain = r;
  plain.kind.clear(), plain.labels.clear();
  write_jsonl(path, {preference_to_json(r), preference_to_json(plain)});
  const auto back = read_preferences(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].kind, "fact");
  EXPECT_EQ(back[0].labels, r.labels);
  EXPECT_EQ(back[0].responses, r.responses);
  EXPECT_TRUE(back[1].kind.empty());
  EXPECT_TRUE(back[1].labels.empty());

  const std::string bad = write_file("badlabels.jsonl", R"({"prompt": "q", "chosen": "a", "rejected": "b", "labels": ["x"]})" "\n");
  EXPECT_NE(error_of([&] { read_preferences(bad); }).find(bad + ":1: \"labels\" must be an array of 2 strings"),
            std::string::npos);
  const std::string bad_kind = write_file("badkind.jsonl", R"({"prompt": "q", "chosen": "a", "rejected": "b", "kind": 3})" "\n");
  EXPECT_NE(error_of([&] { read_preferences(bad_kind); }).find(bad_kind + ":1: \"kind\" must be a string"),
            std::string::npos);
}

TEST(ChatJsonl, PromptsKeepExtraFields) {
  const std::string path = write_file("prompts.jsonl", R"({"prompt": "q", "grade": {"kind": "refuse"}})" "\n");
  const auto p = read_prompts(path);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].meta.at("grade").at("kind"), "refuse");
  EXPECT_FALSE(p[0].meta.contains("prompt"));
}

TEST(ChatJsonl, MalformedLinesNameFileAndLine) {
  const std::string good = R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})";
  struct Case {
    std::string line, expect;
  };
  const std::vector<Case> cases = {
      {"{not json", "not valid JSON"},
      {"[1, 2]", "expected a JSON object"},
      {R"({"msgs": []})", "missing \"messages\""},
      {R"({"messages": [{"role": "robot", "content": "x"}]})", "unknown role \"robot\""},
      {R"({"messages": [{"role": "user", "content": 3}]})", "\"content\" must be a string"},
      {R"({"messages": [{"role": "user", "content": "q"}]})", "no assistant message"},
  };
  for (const auto& c : cases) {
    const std::string path = write_file("bad.jsonl", good + "\n" + good + "\n" + c.line + "\n");
    const std::string err = error_of([&] { read_conversations(path); });
    EXPECT_NE(err.find(path + ":3"), std::string::npos) << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
  }
  const std::string prefs = write_file("badprefs.jsonl", R"({"prompt": "q", "responses": ["only one"]})" "\n");
  EXPECT_NE(error_of([&] { read_preferences(prefs); }).find(prefs + ":1: \"responses\" needs at least 2"),
            std::string::npos);
  const std::string prompts = write_file("badprompts.jsonl", "\n" R"({"prompt": 5})" "\n");
  EXPECT_NE(error_of([&] { read_prompts(prompts); }).find(prompts + ":2"), std::string::npos);
  EXPECT_NE(error_of([&] { read_conversations("/nonexistent/x.jsonl"); }).find("cannot open /nonexistent/x.jsonl"),
            std::string::npos);
}

}  // namespace
}  // namespace ember::chat
