// `ember speedrun`: the whole recipe in one command (chat/speedrun.h), ending
// with the report card and the chat model.
#include <unistd.h>

#include <iostream>

#include "ember/chat/speedrun.h"
#include "ember/cli/commands.h"

namespace ember::cli {

void register_speedrun(CLI::App& app) {
  auto o = std::make_shared<chat::SpeedrunOptions>();
  auto* cmd = app.add_subcommand(
      "speedrun",
      "The whole ChatGPT recipe on built-in data: curriculum, tokenizer, pretraining, SFT, reward model, PPO and "
      "DPO, evaluation of every stage, report.md/report.json, and the chat model in <out>/chat. SIGINT/SIGTERM "
      "stop a training stage with a checkpoint (exit 130/143); rerun the same command to continue: finished "
      "stages are skipped and an unfinished training stage (pretrain, sft, reward, ppo, dpo) resumes from its "
      "latest checkpoint, with the same figures as an uninterrupted run. Delete a stage's folder to redo it.");
  cmd->add_option("--preset", o->preset, "Sizes and hyper-parameters: default (about 18 minutes on a quiet 2-core host) or tiny (seconds, for tests)")
      ->capture_default_str();
  cmd->add_option("--out", o->out_dir, "Folder for every stage, the report and the chat model")->required();
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same report numbers)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_flag("--quiet", o->quiet, "Only stage banners, no progress bars");
  cmd->add_option("--set", o->overrides,
                  "Change one preset setting, stage.key=value (repeatable; e.g. --set pretrain.steps=1200 --set "
                  "model.n_embd=384); the folder's speedrun.json and report.json record the settings used");
  auto chat_mode = std::make_shared<std::string>("auto");
  auto port = std::make_shared<int>(8080);
  cmd->add_option("--chat", *chat_mode,
                  "What follows the run: serve (the web chat page and OpenAI API on --port), terminal "
                  "(`ember chat`), none; auto: serve when run from a terminal, else none")
      ->check(CLI::IsMember({"auto", "serve", "terminal", "none"}))
      ->capture_default_str();
  cmd->add_option("--port", *port, "Port for --chat serve (127.0.0.1)")->capture_default_str();
  cmd->callback([o, chat_mode, port] {
    const chat::SpeedrunResult r = chat::speedrun(*o);
    if (r.interrupted) std::exit(r.signal > 0 ? 128 + r.signal : 130);
    std::cout << "\nreport card: " << r.report_md << "\nchat model:  " << r.chat_checkpoint << std::endl;
    std::string mode = *chat_mode;
    if (mode == "auto") mode = ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO) ? "serve" : "none";
    if (mode == "none") return;
    // Hand over to the chat front end by becoming `ember serve` / `ember chat`
    // on the final checkpoint (same binary), so signals and shutdown behave
    // exactly as when those commands are run by hand.
    const std::string port_s = std::to_string(*port), threads = std::to_string(o->threads);
    std::vector<std::string> args = {"ember", mode == "serve" ? "serve" : "chat", "--checkpoint", r.chat_checkpoint};
    if (mode == "serve") args.insert(args.end(), {"--port", port_s});
    if (o->threads > 0) args.insert(args.end(), {"--threads", threads});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string where = *port == 0 ? "the address printed below" : "http://127.0.0.1:" + port_s + "/";
    std::cout << (mode == "serve" ? "\nopen the chat page at " + where + " (Ctrl-C stops the server)"
                                  : "\nchatting in the terminal (/help lists the commands)")
              << std::endl;
    ::execv("/proc/self/exe", argv.data());
    std::perror("ember speedrun: cannot start the chat");
    std::exit(1);
  });
}

}  // namespace ember::cli
