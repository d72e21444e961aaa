// Checkpoint folders written atomically (see checkpoint.h).
#include "ember/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"
#include "ember/nn/module_io.h"

namespace ember::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPrefix = "ckpt-";

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%08lld", kPrefix, static_cast<long long>(step));
  return buf;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("checkpoint", "cannot open folder ", dir.string(), " to sync it");
  ::fsync(fd);
  ::close(fd);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("checkpoint", "cannot read ", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Copies a folder tree file by file, each file written durably.
void copy_tree(const fs::path& from, const fs::path& to) {
  if (!fs::is_directory(from)) fail("checkpoint", "cannot copy ", from.string(), " into the checkpoint: not a folder");
  fs::create_directories(to);
  for (const auto& entry : fs::directory_iterator(from)) {
    fs::path target = to / entry.path().filename();
    if (entry.is_directory()) copy_tree(entry.path(), target);
    else if (entry.is_regular_file()) write_file_atomic(target.string(), read_file(entry.path()));
  }
  fsync_dir(to);
}

// Checkpoint folders in the run folder, oldest first (names sort by step).
std::vector<fs::path> list_checkpoints(const fs::path& run) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind(kPrefix, 0) == 0) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointSave& what, int keep_last) {
  if (what.model == nullptr && what.model_state == nullptr) fail("checkpoint", "no model to save");
  const fs::path run(run_dir);
  fs::create_directories(run);
  const std::string name = checkpoint_name(step);
  const fs::path final_dir = run / name;
  const fs::path tmp_dir = run / ("." + name + ".tmp." + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  fs::create_directories(tmp_dir);
  try {
    if (what.model_state != nullptr)
      save_safetensors((tmp_dir / "model.safetensors").string(), *what.model_state, {{"format", "pt"}});
    else
      nn::save_module(*what.model, (tmp_dir / "model.safetensors").string(), {{"format", "pt"}});
    if (what.optimizer != nullptr)
      save_safetensors((tmp_dir / "optimizer.safetensors").string(), what.optimizer->state_dict(),
                       {{"optimizer", what.optimizer->name()}});
    else if (what.optimizer_state != nullptr)
      save_safetensors((tmp_dir / "optimizer.safetensors").string(), *what.optimizer_state,
                       {{"optimizer", what.optimizer_name}});
    write_file_atomic((tmp_dir / "trainer.json").string(), what.trainer.dump(2) + "\n");
    for (const auto& [source, name] : what.copy_dirs) copy_tree(source, tmp_dir / name);
    fsync_dir(tmp_dir);
    // A folder cannot be renamed over a non-empty one: move an older copy of the
    // same step (a rerun after resume) aside first.
    if (fs::exists(final_dir)) {
      const fs::path old = run / ("." + name + ".old." + std::to_string(::getpid()));
      fs::rename(final_dir, old);
      fs::remove_all(old, ec);
    }
    fs::rename(tmp_dir, final_dir);
    // Publish: a new symlink renamed over `latest` is atomic.
    const fs::path link_tmp = run / (".latest.tmp." + std::to_string(::getpid()));
    fs::remove(link_tmp, ec);
    fs::create_directory_symlink(name, link_tmp);
    fs::rename(link_tmp, run / "latest");
    fsync_dir(run);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp_dir, ec);
    fail("checkpoint", "cannot write ", final_dir.string(), ": ", e.what());
  } catch (...) {
    fs::remove_all(tmp_dir, ec);
    throw;
  }
  if (keep_last > 0) {
    std::vector<fs::path> all = list_checkpoints(run);
    for (size_t i = 0; i + size_t(keep_last) < all.size(); ++i)
      if (all[i].filename() != name) fs::remove_all(all[i], ec);
  }
  return final_dir.string();
}

bool has_checkpoint(const std::string& run_dir) {
  std::error_code ec;
  return fs::exists(fs::path(run_dir) / "latest" / "trainer.json", ec);
}

std::string resolve_checkpoint(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) fail("checkpoint", path, ": no such folder");
  if (fs::exists(p / "trainer.json", ec)) return p.string();
  if (fs::exists(p / "latest", ec)) {
    fs::path target = fs::canonical(p / "latest", ec);
    if (ec || !fs::exists(target / "trainer.json"))
      fail("checkpoint", path, "/latest does not name a complete checkpoint (no trainer.json)");
    return target.string();
  }
  fail("checkpoint", path, " is not a checkpoint: expected trainer.json (a checkpoint folder) or latest (a run folder)");
}

void copy_folder(const std::string& from, const std::string& to) { copy_tree(from, to); }

void sync_folder(const std::string& dir) { fsync_dir(dir); }

nlohmann::json read_trainer_json(const std::string& checkpoint_dir) {
  const std::string path = checkpoint_dir + "/trainer.json";
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint", path, ": not valid JSON (", e.what(), ")");
  }
}

int64_t restore_checkpoint(const std::string& checkpoint_dir, const nlohmann::json& trainer, nn::Module& model,
                           optim::Optimizer& optimizer, Generator& gen) {
  return restore_checkpoint(
      checkpoint_dir, trainer, model, [&](const TensorMap& state) { optimizer.load_state_dict(state); }, gen);
}

int64_t restore_checkpoint(const std::string& checkpoint_dir, const nlohmann::json& trainer, nn::Module& model,
                           const std::function<void(const TensorMap&)>& load_optimizer, Generator& gen) {
  nn::load_module(model, checkpoint_dir + "/model.safetensors");
  // Mapped, not read: a sharded optimizer copies only its own part.
  load_optimizer(load_safetensors(checkpoint_dir + "/optimizer.safetensors", LoadMode::mmap).tensors);
  gen.set_state({trainer.at("rng").at("seed").get<uint64_t>(), trainer.at("rng").at("offset").get<uint64_t>()});
  return trainer.at("step").get<int64_t>();
}

}  // namespace ember::train
