// OpenAI-style API errors (see api_error.h).
#include "ember/serve/api_error.h"

namespace ember::serve {

nlohmann::json ApiError::body() const {
  nlohmann::json e = {{"message", what()}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return {{"error", e}};
}

void bad_field(const std::string& field, const std::string& what) {
  throw ApiError(400, field + ": " + what, "invalid_request_error", field);
}

}  // namespace ember::serve
