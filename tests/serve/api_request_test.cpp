// Request parsing and validation for /v1/chat/completions and /v1/completions:
// each bad input gets its status and its exact one-line message naming the field.
#include <gtest/gtest.h>

#include "ember/serve/api_error.h"
#include "ember/serve/api_request.h"

namespace ember::serve {
namespace {

// The ApiError a chat body raises ("" + status 0 when it parses).
ApiError chat_error(const std::string& body) {
  try {
    parse_chat_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "");
}

ApiError completion_error(const std::string& body) {
  try {
    parse_completion_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "");
}

const std::string kUser = R"("messages": [{"role": "user", "content": "hi"}])";

std::string chat(const std::string& extra) { return R"({"model": "m", )" + kUser + (extra.empty() ? "" : ", " + extra) + "}"; }

void expect_400(const ApiError& e, const std::string& message, const std::string& param) {
  EXPECT_EQ(e.status, 400) << e.what();
  EXPECT_EQ(std::string(e.what()), message);
  EXPECT_EQ(e.param, param);
  EXPECT_EQ(e.type, "invalid_request_error");
}

TEST(ApiRequest, ParsesAFullChatRequest) {
  const ChatRequest r = parse_chat_request(R"({
    "model": "m", "user": "ignored", "some_future_field": {"x": 1},
    "messages": [{"role": "developer", "content": "Be brief."},
                 {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
                 {"role": "assistant", "content": "Hello."},
                 {"role": "user", "content": "Again?", "name": "bob"}],
    "temperature": 0, "top_p": 0.5, "max_tokens": 5, "max_completion_tokens": 7, "n": 1,
    "stop": ["a", "b"], "seed": -1, "stream": true, "stream_options": {"include_usage": true},
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "logprobs": true, "top_logprobs": 0})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0], (chat::Message{chat::Role::system, "Be brief."}));
  EXPECT_EQ(r.messages[1], (chat::Message{chat::Role::user, "Hi there"}));
  EXPECT_EQ(r.messages[2], (chat::Message{chat::Role::assistant, "Hello."}));
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_EQ(r.sampling.top_p, 0.5);
  EXPECT_EQ(r.sampling.presence_penalty, 0.5);
  EXPECT_EQ(r.sampling.frequency_penalty, -0.5);
  EXPECT_EQ(r.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.seed, uint64_t(-1));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.logprobs);
}

TEST(ApiRequest, DefaultsWhenOptionalFieldsAreAbsentOrNull) {
  const ChatRequest r = parse_chat_request(chat(R"("temperature": null, "stop": null, "stream_options": null)"));
  EXPECT_EQ(r.sampling.temperature, 1.0);
  EXPECT_EQ(r.sampling.top_p, 1.0);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(parse_chat_request(chat(R"("stop": "END")")).stop, std::vector<std::string>{"END"});
}

TEST(ApiRequest, RejectsBodiesThatAreNotJsonObjects) {
  ApiError e = chat_error("{\"model\": ");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_json");
  EXPECT_EQ(std::string(e.what()).rfind("the request body is not valid JSON: parse error at line 1, column 11", 0), 0u)
      << e.what();
  e = chat_error("[1, 2]");
  EXPECT_EQ(std::string(e.what()), "the request body must be a JSON object, got array");
  e = chat_error("{\"model\": \"m\xFF\"}");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_utf8");
  EXPECT_EQ(std::string(e.what()), "the request body is not valid UTF-8");
}

// Found by fuzzing (tests/fuzz/api_request_fuzz.cpp): nlohmann reports a number beyond
// double's range as out_of_range, not parse_error; it escaped as a 500 "internal error".
TEST(ApiRequest, RejectsNumbersBeyondDoubleAsInvalidJson) {
  for (const std::string& body : {chat(R"("temperature": 1e400)"), std::string("[11e400"),
                                  std::string(R"({"model": "m", "prompt": "x", "seed": -1e999})")}) {
    for (const ApiError& e : {chat_error(body), completion_error(body)}) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_EQ(e.code, "invalid_json") << body;
      EXPECT_EQ(e.type, "invalid_request_error") << body;
    }
  }
  EXPECT_EQ(std::string(chat_error(chat(R"("temperature": 1e400)")).what()),
            "the request body is not valid JSON: number overflow parsing '1e400'");
  EXPECT_EQ(std::string(completion_error(R"({"model": "m", "prompt": "x", "seed": -1e999})").what()),
            "the request body is not valid JSON: number overflow parsing '-1e999'");
}

TEST(ApiRequest, NamesMissingAndMistypedFields) {
  expect_400(chat_error(R"({)" + kUser + "}"), "model: is required", "model");
  expect_400(chat_error(R"({"model": 3, )" + kUser + "}"), "model: expected a string, got integer", "model");
  expect_400(chat_error(R"({"model": "m"})"), "messages: is required", "messages");
  expect_400(chat_error(R"({"model": "m", "messages": {}})"), "messages: expected an array, got object", "messages");
  expect_400(chat_error(R"({"model": "m", "messages": []})"), "messages: must contain at least one message", "messages");
  expect_400(chat_error(R"({"model": "m", "messages": ["hi"]})"), "messages[0]: expected an object, got string",
             "messages[0]");
  expect_400(chat_error(R"({"model": "m", "messages": [{"content": "hi"}]})"), "messages[0].role: is required",
             "messages[0].role");
  expect_400(chat_error(R"({"model": "m", "messages": [{"role": "user"}]})"), "messages[0].content: is required",
             "messages[0].content");
  expect_400(chat_error(R"({"model": "m", "messages": [{"role": "user", "content": 5}]})"),
             "messages[0].content: expected a string or an array of text parts, got integer", "messages[0].content");
  expect_400(chat_error(R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"),
             "messages[0].content[0].type: only \"text\" parts are supported, got \"image_url\"",
             "messages[0].content[0].type");
  expect_400(chat_error(R"({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})"),
             "messages[0].role: unknown role \"wizard\" (expected system, developer, user or assistant)",
             "messages[0].role");
  expect_400(chat_error(R"({"model": "m", "messages": [{"role": "tool", "content": "x"}]})"),
             "messages[0].role: \"tool\" messages are not supported (this server has no tool calling)",
             "messages[0].role");
  expect_400(chat_error(R"({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]})"),
             "messages[1].role: a system message may only be the first message", "messages[1].role");
  expect_400(chat_error(R"({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]})"),
             "messages: the last message must not be the assistant's (there is nothing to reply to)", "messages");
}

TEST(ApiRequest, ChecksSamplingRanges) {
  expect_400(chat_error(chat(R"("temperature": "hot")")), "temperature: expected a number, got string", "temperature");
  expect_400(chat_error(chat(R"("temperature": 2.5)")), "temperature: must be in [0, 2], got 2.5", "temperature");
  expect_400(chat_error(chat(R"("top_p": 0)")), "top_p: must be in (0, 1], got 0", "top_p");
  expect_400(chat_error(chat(R"("presence_penalty": -3)")), "presence_penalty: must be in [-2, 2], got -3",
             "presence_penalty");
  expect_400(chat_error(chat(R"("frequency_penalty": true)")), "frequency_penalty: expected a number, got boolean",
             "frequency_penalty");
  expect_400(chat_error(chat(R"("max_tokens": -5)")), "max_tokens: must be >= 1, got -5", "max_tokens");
  expect_400(chat_error(chat(R"("max_tokens": 0)")), "max_tokens: must be >= 1, got 0", "max_tokens");
  expect_400(chat_error(chat(R"("max_tokens": 1.5)")), "max_tokens: expected an integer, got number", "max_tokens");
  expect_400(chat_error(chat(R"("max_completion_tokens": "9")")), "max_completion_tokens: expected an integer, got string",
             "max_completion_tokens");
  // A maximum beyond int64 is taken as "no limit" (clamped to the context later).
  EXPECT_EQ(parse_chat_request(chat(R"("max_tokens": 18446744073709551615)")).max_tokens,
            std::numeric_limits<int64_t>::max());
  expect_400(chat_error(chat(R"("n": 2)")), "n: only n=1 is supported, got 2", "n");
  expect_400(chat_error(chat(R"("seed": "x")")), "seed: expected an integer, got string", "seed");
  expect_400(chat_error(chat(R"("stream": "yes")")), "stream: expected a boolean, got string", "stream");
  expect_400(chat_error(chat(R"("stream_options": 1)")), "stream_options: expected an object, got integer",
             "stream_options");
  expect_400(chat_error(chat(R"("stream_options": {"include_usage": 1})")),
             "stream_options.include_usage: expected a boolean, got integer", "stream_options.include_usage");
  expect_400(chat_error(chat(R"("logprobs": 1)")), "logprobs: expected a boolean, got integer", "logprobs");
  expect_400(chat_error(chat(R"("top_logprobs": 3)")),
             "top_logprobs: only 0 is supported (the engine reports the chosen token's logprob), got 3", "top_logprobs");
  expect_400(chat_error(chat(R"("tools": [{"type": "function"}])")), "tools: tool calling is not supported", "tools");
}

TEST(ApiRequest, ChecksStopStrings) {
  expect_400(chat_error(chat(R"("stop": 5)")), "stop: expected a string or an array of strings, got integer", "stop");
  expect_400(chat_error(chat(R"("stop": ["a", "b", "c", "d", "e"])")), "stop: at most 4 stop strings, got 5", "stop");
  expect_400(chat_error(chat(R"("stop": ["a", 1])")), "stop[1]: expected a string, got integer", "stop[1]");
  expect_400(chat_error(chat(R"("stop": "")")), "stop: must not be empty", "stop");
  expect_400(chat_error(chat(R"("stop": ["a", ""])")), "stop[1]: must not be empty", "stop[1]");
}

TEST(ApiRequest, ParsesCompletions) {
  CompletionRequest r = parse_completion_request(R"({"model": "m", "prompt": "Once upon", "logprobs": 0})");
  EXPECT_EQ(r.prompt, "Once upon");
  EXPECT_EQ(r.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(parse_completion_request(R"({"model": "m", "prompt": ["a"]})").prompt, "a");
  expect_400(completion_error(R"({"model": "m"})"), "prompt: is required", "prompt");
  expect_400(completion_error(R"({"model": "m", "prompt": [1, 2]})"),
             "prompt: expected a string (or an array of one string), got array", "prompt");
  expect_400(completion_error(R"({"model": "m", "prompt": "x", "logprobs": 2})"),
             "logprobs: only 0 is supported (the chosen tokens' logprobs), got 2", "logprobs");
  expect_400(completion_error(R"({"model": "m", "prompt": "x", "echo": true})"), "echo: echo is not supported", "echo");
  expect_400(completion_error(R"({"model": "m", "prompt": "x", "best_of": 3})"), "best_of: only best_of=1 is supported, got 3",
             "best_of");
}

TEST(ApiRequest, ModelAndContextChecks) {
  EXPECT_NO_THROW(check_model("m", "m"));
  try {
    check_model("gpt-4", "m");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 404);
    EXPECT_EQ(e.code, "model_not_found");
    EXPECT_EQ(std::string(e.what()), "model \"gpt-4\" does not exist; this server serves \"m\"");
  }
  EXPECT_NO_THROW(check_prompt_fits(127, 128, "messages"));
  try {
    check_prompt_fits(128, 128, "messages");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "context_length_exceeded");
    EXPECT_EQ(std::string(e.what()),
              "messages: the prompt is 128 tokens; the model's context is 128 tokens and at least one must be left for "
              "the reply");
  }
}

TEST(ApiRequest, ErrorBodyHasOpenAIShape) {
  const ApiError e(404, "nope", "invalid_request_error", "model", "model_not_found");
  EXPECT_EQ(e.body(), nlohmann::json::parse(R"({"error": {"message": "nope", "type": "invalid_request_error",
                                                           "param": "model", "code": "model_not_found"}})"));
  EXPECT_EQ(ApiError(500, "boom", "server_error").body(),
            nlohmann::json::parse(R"({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}})"));
}

}  // namespace
}  // namespace ember::serve
