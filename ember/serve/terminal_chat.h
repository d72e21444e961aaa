// `ember chat`: a multi-turn conversation in the terminal, the reply streamed
// as it is generated. Reads lines from any stream, so it works the same when
// stdin is a pipe (tests) as at a terminal (then with a "> " prompt).
//
// Commands: /reset, /system TEXT, /temp X, /top-p X, /max N, /help, /quit.
// Command feedback lines start with "* ", so a script can tell them from replies.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "ember/infer/engine.h"
#include "ember/serve/served_model.h"

namespace ember::serve {

struct TerminalChatOptions {
  std::string system;  // system prompt ("" = none)
  double temperature = 0.7;
  double top_p = 0.95;
  int64_t max_tokens = 256;
  uint64_t seed = 1;   // reply i uses seed + i: a session replays exactly
  bool interactive = false;  // print the "> " prompt
  // Set (e.g. by a SIGINT handler) to stop the reply being generated.
  std::atomic<bool>* interrupt = nullptr;
};

// Runs the chat loop until /quit or the end of `in`. The engine must be started.
void run_terminal_chat(const ServedModel& model, infer::Engine& engine, std::istream& in, std::ostream& out,
                       TerminalChatOptions options);

}  // namespace ember::serve
