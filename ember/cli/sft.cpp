// `ember sft` (supervised fine-tuning, chat/sft.h) and `ember chat-data` (the
// built-in curriculum, chat/curriculum.h). sft exits 130/143 when SIGINT/SIGTERM
// stopped it (after writing a checkpoint; continue with --resume).
#include <cstdlib>
#include <iostream>

#include "ember/chat/curriculum.h"
#include "ember/chat/sft.h"
#include "ember/cli/commands.h"
#include "ember/dist/communicator.h"
#include "ember/cli/finetune_options.h"

namespace ember::cli {

void register_sft(CLI::App& app) {
  {
    auto out = std::make_shared<std::string>();
    auto preset = std::make_shared<std::string>("default");
    auto seed = std::make_shared<uint64_t>(1);
    auto* cmd = app.add_subcommand("chat-data", "Write the built-in chat curriculum (pretraining text, SFT, "
                                                "preferences, RL prompts, held-out prompts) as text and JSON Lines");
    cmd->add_option("--out", *out, "Folder to write into")->required();
    cmd->add_option("--preset", *preset, "Size: tiny, default, small")->capture_default_str();
    cmd->add_option("--seed", *seed, "Random seed (same seed, same files)")->capture_default_str();
    cmd->callback([out, preset, seed] {
      const auto files = chat::write_curriculum(*out, chat::curriculum_preset(*preset), *seed);
      for (const auto& f : files) std::cout << *out << "/" << f << "\n";
    });
  }
  auto o = std::make_shared<chat::SftOptions>();
  auto* cmd = app.add_subcommand("sft", "Supervised fine-tuning of a pretrained checkpoint on conversations");
  cmd->add_option("--init", o->init, "Pretrained checkpoint (folder with trainer.json, or a run folder)")->required();
  cmd->add_option("--data", o->data, "Training conversations (JSON Lines, {\"messages\": [...]})")->required();
  cmd->add_option("--val", o->val_data, "Held-out conversations for the validation loss");
  cmd->add_option("--prompts", o->prompts, "Held-out prompts with grading keys (oracle evaluation)");
  cmd->add_option("--out", o->out_dir, "Run folder: checkpoints, metrics.jsonl, loss.svg")->required();
  cmd->add_option("--steps", o->steps, "Optimizer steps")->capture_default_str();
  cmd->add_option("--batch", o->batch_size, "Packed rows per step, over all ranks under mpirun (must divide by the rank count)")->capture_default_str();
  cmd->add_option("--seq-len", o->seq_len, "Tokens per packed row (default: block_size)");
  add_finetune_options(cmd, *o);
  cmd->add_option("--eval-every", o->eval_every, "Steps between evaluations (0: only at the end)")->capture_default_str();
  cmd->add_option("--eval-prompts", o->eval_prompts, "Held-out prompts per evaluation (0: all)")->capture_default_str();
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Reply length limit in evaluation")->capture_default_str();
  add_resume_options(cmd, *o);
  cmd->callback([o] {
    const chat::SftResult r = chat::sft(*o);
    if (r.signal != 0) std::exit(128 + r.signal);
    if (dist::world()->rank() != 0) return;  // under mpirun, rank 0 reports
    std::cout << (r.interrupted ? "stopped" : "done") << ": step " << r.step << ", train loss " << r.train_loss << ", val loss " << r.val_loss_before
              << " -> " << r.val_loss;
    if (!o->prompts.empty())
      std::cout << ", oracle accuracy " << r.oracle_before.accuracy << " -> " << r.oracle.accuracy;
    std::cout << "; checkpoint " << r.checkpoint << "\n";
  });
}

}  // namespace ember::cli
