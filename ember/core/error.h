// ember::Error and the checking helpers every layer uses to report bad input.
//
// Messages name the op or file first, in brackets, then the offending values:
//   [matmul] shapes [2, 3] and [4, 5] do not align (3 != 4)
// so that a user can act on one line without a stack trace.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ember {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values into one string.
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// Throws ember::Error("[where] " + parts...) .
template <typename... Args>
[[noreturn]] void fail(const std::string& where, Args&&... parts) {
  throw Error(str_cat("[", where, "] ", std::forward<Args>(parts)...));
}

}  // namespace ember

// EMBER_CHECK(cond, "op", parts...) throws ember::Error when cond is false.
#define EMBER_CHECK(cond, where, ...)            \
  do {                                           \
    if (!(cond)) ::ember::fail(where, __VA_ARGS__); \
  } while (0)
