// The JSON the OpenAI-compatible endpoints answer with, and server-sent
// events (SSE) framing for streams. Pure functions of their inputs, so the
// exact shapes are unit-tested without a server.
//
// Streams (stream: true) are `text/event-stream`: one `data: <json>\n\n` event
// per chunk, then `data: [DONE]\n\n`. For chat: a first chunk carrying the
// role, content chunks, a chunk with the finish_reason and an empty delta,
// then (stream_options.include_usage) a chunk with empty choices and the
// usage; with include_usage every other chunk carries "usage": null.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ember/serve/generation.h"

namespace ember::serve {

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
  nlohmann::json to_json() const;  // with total_tokens
};

// What every response and chunk of one request shares.
struct ResponseHeader {
  std::string id;     // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

// A random id with the given prefix ("chatcmpl-" + 24 hex digits).
std::string new_response_id(const std::string& prefix);

// Chat: logprobs.content entries; null when not asked for.
nlohmann::json chat_logprobs(const std::vector<TokenLogprob>& tokens);

nlohmann::json chat_completion(const ResponseHeader& h, const std::string& text, const std::string& finish_reason,
                               const Usage& usage, const std::optional<std::vector<TokenLogprob>>& logprobs);

// One chunk; `delta` is e.g. {"role": "assistant", "content": ""} or {"content": "Hi"};
// finish_reason empty -> null. `usage_null` adds "usage": null (include_usage streams).
nlohmann::json chat_chunk(const ResponseHeader& h, const nlohmann::json& delta, const std::string& finish_reason,
                          const std::optional<std::vector<TokenLogprob>>& logprobs, bool usage_null);
// The closing usage chunk: "choices": [] and the usage.
nlohmann::json usage_chunk(const ResponseHeader& h, const std::string& object, const Usage& usage);

// Legacy completions (object "text_completion"); logprobs in the legacy shape
// {"tokens", "token_logprobs", "top_logprobs": null, "text_offset"}.
nlohmann::json completion(const ResponseHeader& h, const std::string& text, const std::string& finish_reason,
                          const std::optional<Usage>& usage, const std::optional<std::vector<TokenLogprob>>& logprobs,
                          size_t text_offset = 0);

// GET /v1/models and /v1/models/{id}.
nlohmann::json model_object(const std::string& model, int64_t created);
nlohmann::json model_list(const std::string& model, int64_t created);

// "data: <json>\n\n" (invalid UTF-8, which cannot happen here, would become U+FFFD rather than throw).
std::string sse_event(const nlohmann::json& payload);
// "data: [DONE]\n\n"
std::string sse_done();
// A comment line that keeps the connection busy and reveals a vanished client.
std::string sse_keepalive();

// JSON text for a response body (never throws on bad UTF-8).
std::string dump_json(const nlohmann::json& j);

}  // namespace ember::serve
