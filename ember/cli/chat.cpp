// `ember chat`: talk to a chat checkpoint in the terminal (ember/serve/terminal_chat.h).
// Ctrl-C stops the reply being generated; at the prompt it quits.
#include <omp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/serve/served_model.h"
#include "ember/serve/terminal_chat.h"

namespace ember::cli {
namespace {

std::atomic<bool> g_interrupt{false};

extern "C" void on_sigint(int) { g_interrupt = true; }

struct ChatCliOptions {
  std::string checkpoint;
  serve::TerminalChatOptions chat;
  int threads = 0;
};

void run_chat(ChatCliOptions o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  if (!(o.chat.temperature >= 0 && o.chat.temperature <= 2))
    fail("chat", "--temperature must be in [0, 2], got ", o.chat.temperature);
  if (!(o.chat.top_p > 0 && o.chat.top_p <= 1)) fail("chat", "--top-p must be in (0, 1], got ", o.chat.top_p);
  if (o.chat.max_tokens < 1) fail("chat", "--max-tokens must be >= 1, got ", o.chat.max_tokens);
  const auto model = serve::ServedModel::load(o.checkpoint, "chat");
  infer::EngineOptions eo;
  eo.max_slots = 1;
  eo.sample_vocab = model->sample_vocab();
  infer::Engine engine(model->weights, eo);
  engine.start();
  o.chat.interactive = isatty(STDIN_FILENO);
  if (o.chat.interactive) {
    // No SA_RESTART: Ctrl-C at the prompt interrupts the read, which ends the chat.
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    o.chat.interrupt = &g_interrupt;
    std::cout << "chatting with " << model->checkpoint.dir << " (/help for commands, /quit or Ctrl-D to leave)\n";
  }
  serve::run_terminal_chat(*model, engine, std::cin, std::cout, o.chat);
  engine.stop();
}

}  // namespace

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatCliOptions>();
  auto* cmd = app.add_subcommand("chat", "Chat with a checkpoint in the terminal (reads stdin line by line)");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint folder (sft, dpo, ppo or pretrain) or its run folder")
      ->required();
  cmd->add_option("--system", o->chat.system, "System prompt");
  cmd->add_option("--temperature", o->chat.temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-p", o->chat.top_p, "Nucleus sampling threshold")->capture_default_str();
  cmd->add_option("--max-tokens", o->chat.max_tokens, "Longest reply in tokens")->capture_default_str();
  cmd->add_option("--seed", o->chat.seed, "Random seed (reply i uses seed + i)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->callback([o] { run_chat(*o); });
}

}  // namespace ember::cli
