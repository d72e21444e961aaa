// Request parsing and validation for the OpenAI-compatible endpoints (see api_request.h).
#include "ember/serve/api_request.h"

#include <limits>
#include <sstream>

#include "ember/serve/api_error.h"
#include "ember/serve/utf8_stream.h"

namespace ember::serve {
namespace {

using nlohmann::json;

std::string type_of(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();  // string, boolean, array, object, null
}

// The value of an optional field, or null when absent or explicitly null.
const json* field(const json& obj, const char* name) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> number_in(const json& obj, const char* name, double lo, double hi, bool lo_open = false) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad_field(name, "expected a number, got " + type_of(*v));
  const double x = v->get<double>();
  const bool below = lo_open ? !(x > lo) : !(x >= lo);
  if (below || !(x <= hi)) {
    std::ostringstream msg;
    msg << "must be in " << (lo_open ? "(" : "[") << lo << ", " << hi << "], got " << x;
    bad_field(name, msg.str());
  }
  return x;
}

std::optional<int64_t> integer(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad_field(name, "expected an integer, got " + type_of(*v));
  // Beyond int64 only as a huge unsigned: a maximum that large means "no limit".
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    return std::numeric_limits<int64_t>::max();
  return v->get<int64_t>();
}

std::optional<bool> boolean(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad_field(name, "expected a boolean, got " + type_of(*v));
  return v->get<bool>();
}

std::string required_string(const json& obj, const std::string& name, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) bad_field(name, "is required");
  if (!it->is_string()) bad_field(name, "expected a string, got " + type_of(*it));
  return it->get<std::string>();
}

void parse_common(const json& j, SamplingRequest& r) {
  r.model = required_string(j, "model", "model");
  if (auto t = number_in(j, "temperature", 0, 2)) r.sampling.temperature = *t;
  if (auto p = number_in(j, "top_p", 0, 1, /*lo_open=*/true)) r.sampling.top_p = *p;
  if (auto p = number_in(j, "presence_penalty", -2, 2)) r.sampling.presence_penalty = *p;
  if (auto p = number_in(j, "frequency_penalty", -2, 2)) r.sampling.frequency_penalty = *p;
  // OpenAI renamed max_tokens to max_completion_tokens for chat; the newer name wins.
  for (const char* name : {"max_tokens", "max_completion_tokens"})
    if (auto m = integer(j, name)) {
      if (*m < 1) bad_field(name, "must be >= 1, got " + std::to_string(*m));
      r.max_tokens = *m;
    }
  if (auto n = integer(j, "n"); n && *n != 1) bad_field("n", "only n=1 is supported, got " + std::to_string(*n));
  if (const json* s = field(j, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > 4) bad_field("stop", "at most 4 stop strings, got " + std::to_string(s->size()));
      for (size_t i = 0; i < s->size(); ++i) {
        const std::string name = "stop[" + std::to_string(i) + "]";
        if (!(*s)[i].is_string()) bad_field(name, "expected a string, got " + type_of((*s)[i]));
        r.stop.push_back((*s)[i].get<std::string>());
      }
    } else {
      bad_field("stop", "expected a string or an array of strings, got " + type_of(*s));
    }
    for (size_t i = 0; i < r.stop.size(); ++i)
      if (r.stop[i].empty()) bad_field(s->is_string() ? "stop" : "stop[" + std::to_string(i) + "]", "must not be empty");
  }
  if (auto seed = integer(j, "seed")) r.seed = uint64_t(*seed);
  if (auto s = boolean(j, "stream")) r.stream = *s;
  if (const json* o = field(j, "stream_options")) {
    if (!o->is_object()) bad_field("stream_options", "expected an object, got " + type_of(*o));
    if (const json* u = field(*o, "include_usage")) {
      if (!u->is_boolean()) bad_field("stream_options.include_usage", "expected a boolean, got " + type_of(*u));
      r.include_usage = u->get<bool>();
    }
  }
}

std::string message_content(const json& m, const std::string& where) {
  const auto it = m.find("content");
  if (it == m.end() || it->is_null()) bad_field(where + ".content", "is required");
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array())
    bad_field(where + ".content", "expected a string or an array of text parts, got " + type_of(*it));
  std::string text;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& part = (*it)[i];
    const std::string at = where + ".content[" + std::to_string(i) + "]";
    if (!part.is_object()) bad_field(at, "expected an object, got " + type_of(part));
    const std::string type = required_string(part, at + ".type", "type");
    if (type != "text") bad_field(at + ".type", "only \"text\" parts are supported, got \"" + type + "\"");
    text += required_string(part, at + ".text", "text");
  }
  return text;
}

}  // namespace

json parse_body(std::string_view body) {
  if (!is_valid_utf8(body)) throw ApiError(400, "the request body is not valid UTF-8", "invalid_request_error", "", "invalid_utf8");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    // A syntax error (parse_error) or a number beyond double's range such as 1e400
    // (out_of_range.406). nlohmann prefixes "[json.exception.parse_error.101] "; the
    // rest says where and why.
    std::string what = e.what();
    if (const size_t p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    throw ApiError(400, "the request body is not valid JSON: " + what, "invalid_request_error", "", "invalid_json");
  }
  if (!j.is_object())
    throw ApiError(400, "the request body must be a JSON object, got " + type_of(j), "invalid_request_error", "",
                   "invalid_json");
  return j;
}

ChatRequest parse_chat_request(std::string_view body) {
  const json j = parse_body(body);
  ChatRequest r;
  parse_common(j, r);
  const auto it = j.find("messages");
  if (it == j.end()) bad_field("messages", "is required");
  if (!it->is_array()) bad_field("messages", "expected an array, got " + type_of(*it));
  if (it->empty()) bad_field("messages", "must contain at least one message");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad_field(where, "expected an object, got " + type_of(m));
    const std::string role = required_string(m, where + ".role", "role");
    chat::Message msg;
    if (role == "system" || role == "developer")
      msg.role = chat::Role::system;
    else if (role == "user")
      msg.role = chat::Role::user;
    else if (role == "assistant")
      msg.role = chat::Role::assistant;
    else if (role == "tool" || role == "function")
      bad_field(where + ".role", "\"" + role + "\" messages are not supported (this server has no tool calling)");
    else
      bad_field(where + ".role", "unknown role \"" + role + "\" (expected system, developer, user or assistant)");
    if (msg.role == chat::Role::system && i > 0)
      bad_field(where + ".role", "a system message may only be the first message");
    msg.content = message_content(m, where);
    r.messages.push_back(std::move(msg));
  }
  if (r.messages.back().role == chat::Role::assistant)
    bad_field("messages", "the last message must not be the assistant's (there is nothing to reply to)");
  if (const json* lp = field(j, "logprobs")) {
    if (!lp->is_boolean()) bad_field("logprobs", "expected a boolean, got " + type_of(*lp));
    r.logprobs = lp->get<bool>();
  }
  if (auto k = integer(j, "top_logprobs"); k && *k != 0)
    bad_field("top_logprobs", "only 0 is supported (the engine reports the chosen token's logprob), got " +
                                  std::to_string(*k));
  if (const json* tools = field(j, "tools"); tools && !(tools->is_array() && tools->empty()))
    bad_field("tools", "tool calling is not supported");
  return r;
}

CompletionRequest parse_completion_request(std::string_view body) {
  const json j = parse_body(body);
  CompletionRequest r;
  parse_common(j, r);
  if (!r.max_tokens) r.max_tokens = 16;
  const auto it = j.find("prompt");
  if (it == j.end()) bad_field("prompt", "is required");
  if (it->is_string())
    r.prompt = it->get<std::string>();
  else if (it->is_array() && it->size() == 1 && (*it)[0].is_string())
    r.prompt = (*it)[0].get<std::string>();
  else
    bad_field("prompt", "expected a string (or an array of one string), got " + type_of(*it));
  if (const json* lp = field(j, "logprobs")) {
    if (!lp->is_number_integer()) bad_field("logprobs", "expected an integer, got " + type_of(*lp));
    if (lp->get<int64_t>() != 0)
      bad_field("logprobs", "only 0 is supported (the chosen tokens' logprobs), got " + lp->dump());
    r.logprobs = true;
  }
  if (auto echo = boolean(j, "echo"); echo && *echo) bad_field("echo", "echo is not supported");
  if (field(j, "suffix")) bad_field("suffix", "suffix (insertion) is not supported");
  if (auto b = integer(j, "best_of"); b && *b != 1) bad_field("best_of", "only best_of=1 is supported, got " + std::to_string(*b));
  return r;
}

void check_model(const std::string& requested, const std::string& served) {
  if (requested != served)
    throw ApiError(404, "model \"" + requested + "\" does not exist; this server serves \"" + served + "\"",
                   "invalid_request_error", "model", "model_not_found");
}

void check_prompt_fits(int64_t prompt_tokens, int64_t context, const std::string& field) {
  if (prompt_tokens >= context)
    throw ApiError(400,
                   field + ": the prompt is " + std::to_string(prompt_tokens) + " tokens; the model's context is " +
                       std::to_string(context) + " tokens and at least one must be left for the reply",
                   "invalid_request_error", field, "context_length_exceeded");
}

}  // namespace ember::serve
