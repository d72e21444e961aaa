// `ember eval`: the held-out evaluation of any stage's checkpoint (chat/eval.h),
// as a table or one JSON object.
#include <iostream>

#include "ember/chat/eval.h"
#include "ember/cli/commands.h"

namespace ember::cli {

void register_eval(CLI::App& app) {
  auto o = std::make_shared<chat::EvalOptions>();
  auto as_json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on held-out data: oracle-graded replies, "
                                         "conversation loss, or (reward models) pairwise accuracy");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint folder, or a run folder with `latest`")->required();
  cmd->add_option("--curriculum", o->curriculum,
                  "Folder from `ember chat-data`: its prompts_heldout.jsonl, sft_val.jsonl and "
                  "preferences_val.jsonl are the defaults of the three options below");
  cmd->add_option("--prompts", o->prompts, "Held-out prompts with grading keys (JSON Lines)");
  cmd->add_option("--conversations", o->conversations, "Held-out conversations for the loss (JSON Lines)");
  cmd->add_option("--preferences", o->preferences, "Held-out ranked responses (JSON Lines): a reward model's pairwise accuracy, or, for a language model, how "
                  "well its own mean log-probability per token ranks them (only when given by name)");
  cmd->add_option("--limit", o->limit, "Use only the first N records of each file (0: all)")->capture_default_str();
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Reply length limit")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_flag("--json", *as_json, "Print one JSON object instead of the table");
  cmd->add_option("--replies", o->replies_out,
                  "Also write every held-out prompt's reply as JSON Lines to this file: prompt, kind, reply, "
                  "correct, score (to read what the model gets wrong)");
  cmd->callback([o, as_json] {
    const nlohmann::json report = chat::evaluate_checkpoint(*o);
    if (*as_json)
      std::cout << report.dump() << std::endl;
    else
      std::cout << chat::format_eval_table(report);
  });
}

}  // namespace ember::cli
