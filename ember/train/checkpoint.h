// Training checkpoints: one folder per saved step inside a run folder, and a
// `latest` link that names the newest complete one.
//
//   <run>/ckpt-00000400/model.safetensors       the model's state_dict
//                      /optimizer.safetensors   the optimizer's state_dict
//                      /trainer.json            step, config, RNG and data position, ...
//                      /tokenizer/              (optional) copied so the folder stands alone
//   <run>/latest -> ckpt-00000400
//
// A checkpoint is assembled in a temporary folder, every file fsynced, then
// renamed into place, and only then does `latest` move (a symlink replaced by
// rename). A crash at any point leaves the previous checkpoint intact and
// `latest` pointing at a complete folder.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/random.h"
#include "ember/io/safetensors.h"
#include "ember/nn/module.h"
#include "ember/optim/optimizer.h"

namespace ember::train {

struct CheckpointSave {
  const nn::Module* model = nullptr;
  const optim::Optimizer* optimizer = nullptr;  // may be null (weights-only checkpoints)
  nlohmann::json trainer;                       // written as trainer.json
  // Folders copied in: (source folder, name inside the checkpoint), e.g. the
  // tokenizer as "tokenizer", so a checkpoint folder stands alone.
  std::vector<std::pair<std::string, std::string>> copy_dirs;
  // Instead of `optimizer`: its state_dict made elsewhere (ZeRO-1 gathers the
  // shards into optim::AdamW's layout), saved with the name `optimizer_name`.
  const TensorMap* optimizer_state = nullptr;
  std::string optimizer_name = {};
  // Instead of model->state_dict(): the model's state made elsewhere (a
  // tensor-parallel model's gathered to the single-process layout).
  const TensorMap* model_state = nullptr;
};

// Writes <run_dir>/ckpt-<step>, points <run_dir>/latest at it and removes all
// but the newest `keep_last` checkpoints (0 keeps all). Returns the folder.
std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointSave& what, int keep_last = 3);

// Resolves a user's --checkpoint argument: a checkpoint folder itself (holds
// trainer.json) or a run folder (holds `latest`). Error names the path and
// what was looked for.
std::string resolve_checkpoint(const std::string& path);

// Whether `run_dir` holds a resumable checkpoint (a valid `latest`).
bool has_checkpoint(const std::string& run_dir);

nlohmann::json read_trainer_json(const std::string& checkpoint_dir);

// What --resume restores from a checkpoint folder whose trainer.json is
// `trainer`: the model's weights, the optimizer's state, the generator's
// position (trainer["rng"]). Returns the step it was saved at (trainer["step"]).
// The data position is the trainer's own (its loader's state in trainer.json).
int64_t restore_checkpoint(const std::string& checkpoint_dir, const nlohmann::json& trainer, nn::Module& model,
                           optim::Optimizer& optimizer, Generator& gen);
// The same with the optimizer's state handed to `load_optimizer` (memory-mapped,
// valid during the call), for an optimizer that is not an optim::Optimizer.
int64_t restore_checkpoint(const std::string& checkpoint_dir, const nlohmann::json& trainer, nn::Module& model,
                           const std::function<void(const TensorMap&)>& load_optimizer, Generator& gen);

// Copies a folder tree file by file, each file written durably (how a
// checkpoint takes in its tokenizer); `to` is created.
void copy_folder(const std::string& from, const std::string& to);
// fsyncs a folder, so that the names just created or renamed in it survive a crash.
void sync_folder(const std::string& dir);

}  // namespace ember::train
