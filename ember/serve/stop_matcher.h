// Stop strings (OpenAI's `stop`): generation ends as soon as the text contains
// one of them, and neither the stop string nor anything after it is returned.
//
// Text arrives in pieces, and a stop string may straddle pieces ("<|" then
// "end|>"), so text that could still turn out to be the start of a stop
// string is held back until the next piece decides it: released when it does
// not continue into a stop string, dropped when it does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ember::serve {

class StopMatcher {
 public:
  // Empty stop strings are ignored (they would match before any text).
  explicit StopMatcher(std::vector<std::string> stops = {});

  // Appends text; returns what can be released now. Once a stop string is
  // found, returns the text before it and stopped() becomes true; later
  // pushes return nothing.
  std::string push(std::string_view text);
  // The end of generation without a stop string: releases the held text.
  std::string finish();
  bool stopped() const { return stopped_; }
  // The stop string that matched (empty until stopped()).
  const std::string& matched() const { return matched_; }
  size_t held() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace ember::serve
