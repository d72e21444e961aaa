// An error answered to an HTTP client in OpenAI's shape:
//   {"error": {"message": "...", "type": "...", "param": "...", "code": "..."}}
// with the HTTP status that goes with it. Thrown by request parsing and the
// handlers, caught once at the HTTP edge.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace ember::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type = "invalid_request_error", std::string param = "",
           std::string code = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}

  int status;
  std::string type;   // OpenAI's category: invalid_request_error, server_error, ...
  std::string param;  // the offending field ("" -> null)
  std::string code;   // a stable machine-readable code ("" -> null)

  // The JSON body (param and code are null when empty).
  nlohmann::json body() const;
};

// A 400 about one request field: "<field>: <what is wrong>".
[[noreturn]] void bad_field(const std::string& field, const std::string& what);

}  // namespace ember::serve
