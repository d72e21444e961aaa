// The terminal chat loop (see terminal_chat.h).
#include "ember/serve/terminal_chat.h"

#include <istream>
#include <ostream>
#include <sstream>

#include "ember/core/error.h"
#include "ember/serve/generation.h"

namespace ember::serve {
namespace {

const char* const kHelp =
    "* commands: /reset (new conversation), /system TEXT (set the system prompt and reset),\n"
    "*   /temp X (temperature, 0..2), /top-p X (0 < X <= 1), /max N (reply tokens), /help, /quit\n";

// Parses the whole of `s` as a number; false when anything is left over.
template <class T>
bool parse_all(const std::string& s, T& out) {
  std::istringstream in(s);
  in >> out;
  return !in.fail() && (in >> std::ws).eof();
}

}  // namespace

void run_terminal_chat(const ServedModel& model, infer::Engine& engine, std::istream& in, std::ostream& out,
                       TerminalChatOptions o) {
  chat::Conversation conversation;
  uint64_t replies = 0;
  auto reset = [&] {
    conversation.clear();
    if (!o.system.empty()) conversation.push_back({chat::Role::system, o.system});
  };
  reset();
  std::string line;
  while (true) {
    if (o.interactive) out << "> " << std::flush;
    if (!std::getline(in, line)) break;
    if (line.empty()) continue;
    if (line[0] == '/') {
      const size_t space = line.find(' ');
      const std::string cmd = line.substr(0, space);
      const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
      if (cmd == "/quit" || cmd == "/exit") break;
      if (cmd == "/help") {
        out << kHelp;
      } else if (cmd == "/reset") {
        reset();
        out << "* new conversation\n";
      } else if (cmd == "/system") {
        o.system = arg;
        reset();
        out << (arg.empty() ? "* system prompt cleared; new conversation\n" : "* system prompt set; new conversation\n");
      } else if (cmd == "/temp") {
        double t;
        if (parse_all(arg, t) && t >= 0 && t <= 2) {
          o.temperature = t;
          out << "* temperature " << t << "\n";
        } else {
          out << "* error: /temp needs a number in [0, 2], got '" << arg << "'\n";
        }
      } else if (cmd == "/top-p") {
        double p;
        if (parse_all(arg, p) && p > 0 && p <= 1) {
          o.top_p = p;
          out << "* top-p " << p << "\n";
        } else {
          out << "* error: /top-p needs a number in (0, 1], got '" << arg << "'\n";
        }
      } else if (cmd == "/max") {
        int64_t n;
        if (parse_all(arg, n) && n >= 1) {
          o.max_tokens = n;
          out << "* max tokens " << n << "\n";
        } else {
          out << "* error: /max needs a whole number >= 1, got '" << arg << "'\n";
        }
      } else {
        out << "* error: unknown command " << cmd << " (/help lists them)\n";
      }
      out << std::flush;
      continue;
    }
    conversation.push_back({chat::Role::user, line});
    GenerationRequest g;
    g.prompt = model.chat_template->render_prompt(conversation);
    const int64_t room = model.context() - int64_t(g.prompt.size());
    if (room < 1) {
      conversation.pop_back();
      out << "* error: the conversation (" << g.prompt.size() << " tokens) no longer fits the model's context of "
          << model.context() << " tokens; /reset to start over\n"
          << std::flush;
      continue;
    }
    g.sampling.temperature = o.temperature;
    g.sampling.top_p = o.top_p;
    g.max_tokens = std::min(o.max_tokens, room);
    g.stop_tokens = model.chat_stop_tokens();
    g.seed = o.seed + replies++;
    Generation gen(engine, model.tokenizer, std::move(g));
    std::string reply;
    std::optional<Delta> d;
    while (true) {
      d = gen.next(std::chrono::milliseconds(100));
      if (o.interrupt && o.interrupt->exchange(false)) gen.cancel();
      if (!d) continue;
      out << d->text << std::flush;
      reply += d->text;
      if (d->finished) break;
    }
    out << "\n";
    if (d->finish_reason == "length") out << "* (reply cut at the token limit; /max N raises it)\n";
    if (d->finish_reason == "cancelled") out << "* (stopped)\n";
    if (d->finish_reason == "error") out << "* error: generation failed: " << d->error << "\n";
    out << std::flush;
    conversation.push_back({chat::Role::assistant, reply});
  }
}

}  // namespace ember::serve
