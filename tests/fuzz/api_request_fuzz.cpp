// libFuzzer target for the OpenAI-compatible request parser
// (ember/serve/api_request.h): ANY request body must either parse into a
// request or throw serve::ApiError, never crash or throw anything else, and
// the error must be answerable: a 4xx status and a JSON body with a message.
// What parses keeps the documented bounds (temperature in [0, 2], top_p in
// (0, 1], penalties in [-2, 2], max_tokens >= 1, at most 4 non-empty stop
// strings, a non-empty conversation that does not end with the assistant).
// Run by scripts/fuzz.sh with tests/fuzz/api_request.dict; the corpus
// tests/fuzz/corpus/api_request/ is replayed by CTest (fuzz_target.h).
#include <cstdlib>
#include <string>
#include <string_view>

#include "ember/serve/api_error.h"
#include "ember/serve/api_request.h"
#include "fuzz/fuzz_target.h"

namespace {

using namespace ember::serve;

void check_error(const ApiError& e) {
  if (e.status < 400 || e.status > 499) std::abort();
  // As the server sends it (serve::dump_json: invalid UTF-8 in a message, e.g. a
  // parse error quoting half a character, becomes U+FFFD instead of throwing).
  const std::string sent = e.body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (nlohmann::json::parse(sent).at("error").at("message").get<std::string>().empty()) std::abort();
}

void check_sampling(const SamplingRequest& r) {
  const auto& s = r.sampling;
  if (!(s.temperature >= 0 && s.temperature <= 2)) std::abort();
  if (!(s.top_p > 0 && s.top_p <= 1)) std::abort();
  if (!(s.presence_penalty >= -2 && s.presence_penalty <= 2)) std::abort();
  if (!(s.frequency_penalty >= -2 && s.frequency_penalty <= 2)) std::abort();
  if (r.max_tokens && *r.max_tokens < 1) std::abort();
  if (r.stop.size() > 4) std::abort();
  for (const std::string& stop : r.stop)
    if (stop.empty()) std::abort();
}

}  // namespace

EMBER_FUZZ_TARGET(api_request) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    const ChatRequest r = parse_chat_request(body);
    check_sampling(r);
    if (r.messages.empty() || r.messages.back().role == ember::chat::Role::assistant) std::abort();
  } catch (const ApiError& e) {
    check_error(e);
  }
  try {
    const CompletionRequest r = parse_completion_request(body);
    check_sampling(r);
    if (!r.max_tokens) std::abort();  // defaults to 16
  } catch (const ApiError& e) {
    check_error(e);
  }
  return 0;
}
