// Response bodies and SSE framing for the OpenAI-compatible API (see api_response.h).
#include "ember/serve/api_response.h"

#include <random>

namespace ember::serve {

using nlohmann::json;

json Usage::to_json() const {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

std::string new_response_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += hex[rng() % 16];
  return id;
}

json chat_logprobs(const std::vector<TokenLogprob>& tokens) {
  json content = json::array();
  for (const auto& t : tokens)
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", t.bytes}, {"top_logprobs", json::array()}});
  return {{"content", content}};
}

json chat_completion(const ResponseHeader& h, const std::string& text, const std::string& finish_reason,
                     const Usage& usage, const std::optional<std::vector<TokenLogprob>>& logprobs) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", text}}},
                 {"logprobs", logprobs ? chat_logprobs(*logprobs) : json(nullptr)},
                 {"finish_reason", finish_reason}};
  return {{"id", h.id},           {"object", "chat.completion"}, {"created", h.created},
          {"model", h.model},     {"choices", json::array({choice})}, {"usage", usage.to_json()},
          {"system_fingerprint", nullptr}};
}

json chat_chunk(const ResponseHeader& h, const json& delta, const std::string& finish_reason,
                const std::optional<std::vector<TokenLogprob>>& logprobs, bool usage_null) {
  json choice = {{"index", 0},
                 {"delta", delta},
                 {"logprobs", logprobs ? chat_logprobs(*logprobs) : json(nullptr)},
                 {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  json chunk = {{"id", h.id},       {"object", "chat.completion.chunk"}, {"created", h.created},
                {"model", h.model}, {"choices", json::array({choice})},  {"system_fingerprint", nullptr}};
  if (usage_null) chunk["usage"] = nullptr;
  return chunk;
}

json usage_chunk(const ResponseHeader& h, const std::string& object, const Usage& usage) {
  return {{"id", h.id},       {"object", object},         {"created", h.created},
          {"model", h.model}, {"choices", json::array()}, {"usage", usage.to_json()}};
}

json completion(const ResponseHeader& h, const std::string& text, const std::string& finish_reason,
                const std::optional<Usage>& usage, const std::optional<std::vector<TokenLogprob>>& logprobs,
                size_t text_offset) {
  json lp = nullptr;
  if (logprobs) {
    json tokens = json::array(), values = json::array(), offsets = json::array();
    size_t offset = text_offset;
    for (const auto& t : *logprobs) {
      tokens.push_back(t.token);
      values.push_back(t.logprob);
      offsets.push_back(offset);
      offset += t.bytes.size();
    }
    lp = {{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", nullptr}, {"text_offset", offsets}};
  }
  json choice = {{"index", 0},
                 {"text", text},
                 {"logprobs", lp},
                 {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  json out = {{"id", h.id},       {"object", "text_completion"},        {"created", h.created},
              {"model", h.model}, {"choices", json::array({choice})}, {"system_fingerprint", nullptr}};
  if (usage) out["usage"] = usage->to_json();
  return out;
}

json model_object(const std::string& model, int64_t created) {
  return {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "ember"}};
}

json model_list(const std::string& model, int64_t created) {
  return {{"object", "list"}, {"data", json::array({model_object(model, created)})}};
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& payload) { return "data: " + dump_json(payload) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

std::string sse_keepalive() { return ": keep-alive\n\n"; }

}  // namespace ember::serve
