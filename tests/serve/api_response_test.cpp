// Response bodies and server-sent events of the OpenAI-compatible API: exact
// shapes of completions, chunks and the SSE framing.
#include <gtest/gtest.h>

#include "ember/serve/api_response.h"

namespace ember::serve {
namespace {

using nlohmann::json;

const ResponseHeader kHeader{"chatcmpl-1", 1700000000, "m"};

TEST(ApiResponse, SseFraming) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_event(json{{"t", "line\nbreak"}}), "data: {\"t\":\"line\\nbreak\"}\n\n");  // one line per event
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  EXPECT_EQ(sse_keepalive(), ": keep-alive\n\n");
}

TEST(ApiResponse, ChatCompletion) {
  const json j = chat_completion(kHeader, "Hi.", "stop", {5, 2}, std::nullopt);
  EXPECT_EQ(j, json::parse(R"({"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
    "system_fingerprint": null,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "logprobs": null, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})"));
  const json lp = chat_completion(kHeader, "a", "length", {1, 1}, std::vector<TokenLogprob>{{"a", {97}, -0.5}});
  EXPECT_EQ(lp["choices"][0]["logprobs"],
            json::parse(R"({"content": [{"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": []}]})"));
}

TEST(ApiResponse, ChatChunks) {
  EXPECT_EQ(chat_chunk(kHeader, {{"role", "assistant"}, {"content", ""}}, "", std::nullopt, false),
            json::parse(R"({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m",
              "system_fingerprint": null,
              "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]})"));
  const json last = chat_chunk(kHeader, json::object(), "length", std::nullopt, true);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_TRUE(last.contains("usage") && last["usage"].is_null());
  EXPECT_EQ(usage_chunk(kHeader, "chat.completion.chunk", {3, 4}),
            json::parse(R"({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m",
              "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})"));
}

TEST(ApiResponse, LegacyCompletionWithLogprobs) {
  const std::vector<TokenLogprob> lp = {{"ab", {97, 98}, -1.0}, {"c", {99}, -2.0}};
  const json j = completion({"cmpl-1", 1, "m"}, "abc", "length", Usage{2, 2}, lp, 10);
  EXPECT_EQ(j, json::parse(R"({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
    "system_fingerprint": null,
    "choices": [{"index": 0, "text": "abc", "finish_reason": "length",
                 "logprobs": {"tokens": ["ab", "c"], "token_logprobs": [-1.0, -2.0], "top_logprobs": null,
                              "text_offset": [10, 12]}}],
    "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}})"));
}

TEST(ApiResponse, ModelsAndIds) {
  EXPECT_EQ(model_list("m", 5), json::parse(R"({"object": "list",
    "data": [{"id": "m", "object": "model", "created": 5, "owned_by": "ember"}]})"));
  const std::string id = new_response_id("chatcmpl-");
  EXPECT_EQ(id.size(), 9u + 24u);
  EXPECT_EQ(id.rfind("chatcmpl-", 0), 0u);
  EXPECT_NE(id, new_response_id("chatcmpl-"));
}

}  // namespace
}  // namespace ember::serve
