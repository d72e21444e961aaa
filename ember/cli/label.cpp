// `ember label`: sample the policy's replies to prompts with grading keys and
// rank them with the curriculum's oracle into preference records
// (chat/labelling.h), the comparisons a reward model and DPO train on.
#include <iostream>

#include "ember/chat/labelling.h"
#include "ember/cli/commands.h"

namespace ember::cli {

void register_label(CLI::App& app) {
  auto o = std::make_shared<chat::LabelOptions>();
  auto* cmd = app.add_subcommand(
      "label", "Collect comparisons: sample a policy's replies to graded prompts and rank them with the "
               "curriculum's oracle (the labeller), written as preference records for `ember reward` and `ember dpo`");
  cmd->add_option("--policy", o->policy, "Checkpoint that samples the replies (normally SFT's), or a run folder")
      ->required();
  cmd->add_option("--prompts", o->prompts,
                  "Prompts with grading keys (JSON Lines with \"grade\" and optionally \"reference\", "
                  "e.g. a curriculum's prompts_rl.jsonl)")
      ->required();
  cmd->add_option("--out", o->out, "Preferences file to write (JSON Lines, ranked lists best first)")->required();
  cmd->add_option("--include", o->include,
                  "Preference files whose records are copied first, unchanged (e.g. the curriculum's "
                  "preferences_train.jsonl)");
  cmd->add_option("--samples", o->samples, "Replies sampled per prompt")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "Sampling temperature (> 0)")->capture_default_str();
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Reply length limit")->capture_default_str();
  cmd->add_option("--limit", o->limit, "Label only the first N prompts (0: all)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Sampling seed (request i uses seed + i)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_flag("--quiet", o->quiet, "No progress bar; print only the summary line");
  cmd->add_flag("--no-reference{false}", o->with_reference,
                "Leave the prompts' reference replies out: each list ranks the policy's own replies only (to judge "
                "a reward model on the choices PPO asks of it)");
  cmd->add_flag("--every-pair", o->every_pair,
                "Besides each prompt's ranked list (one reply per grade), write a two-reply record for every other "
                "pair of distinct replies that grade differently (e.g. another right sample against each wrong one)");
  cmd->callback([o] {
    const chat::LabelResult r = chat::label_policy_samples(*o);
    std::cout << r.to_json().dump() << std::endl;
  });
}

}  // namespace ember::cli
