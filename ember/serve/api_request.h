// Reading and validating the JSON bodies of the OpenAI-compatible endpoints
// (POST /v1/chat/completions, POST /v1/completions). Every problem becomes an
// ApiError (400 unless said otherwise) whose message names the field and what
// is wrong with it: "temperature: expected a number, got string". Fields this
// server does not know are ignored, as OpenAI-compatible servers usually do;
// fields it knows but cannot honour (n > 1, top_logprobs > 0, tools) are
// refused rather than silently ignored.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/chat/template.h"
#include "ember/infer/sampler.h"

namespace ember::serve {

// Fields shared by both endpoints.
struct SamplingRequest {
  std::string model;
  infer::SamplingParams sampling;     // temperature, top_p, presence/frequency penalties
  std::optional<int64_t> max_tokens;  // >= 1 when set (huge values are clamped later)
  std::vector<std::string> stop;      // 0..4 non-empty stop strings
  std::optional<uint64_t> seed;       // a negative JSON seed wraps around (still reproducible)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;       // report the chosen tokens' log-probabilities
};

struct ChatRequest : SamplingRequest {
  chat::Conversation messages;  // "developer" messages become system messages
};

struct CompletionRequest : SamplingRequest {
  std::string prompt;
};

// The body as a JSON object: 400 when it is not valid UTF-8, not JSON, or not an object.
nlohmann::json parse_body(std::string_view body);

ChatRequest parse_chat_request(std::string_view body);
// /v1/completions: max_tokens defaults to 16, as OpenAI's does.
CompletionRequest parse_completion_request(std::string_view body);

// 404 (code model_not_found) unless `requested` is the model this server serves.
void check_model(const std::string& requested, const std::string& served);

// 400 (code context_length_exceeded) unless at least one token of the context
// is left after a prompt of `prompt_tokens`.
void check_prompt_fits(int64_t prompt_tokens, int64_t context, const std::string& field);

}  // namespace ember::serve
