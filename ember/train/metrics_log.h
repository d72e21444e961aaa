// Metrics as JSON Lines (one object per step, eval or sample) and the loss
// curve drawn from them. On resume the log is cut back to the checkpoint's
// step, so a resumed run's file reads like an uninterrupted one's.
#pragma once

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ember::train {

class MetricsLog {
 public:
  // Opens <path> for appending; when `keep_up_to_step` >= 0, first drops every
  // record whose "step" is larger (rewritten atomically). -1 starts afresh.
  // An empty path keeps the records in memory only (a data-parallel rank
  // other than 0, which must not write the run folder).
  MetricsLog(std::string path, int64_t keep_up_to_step);
  void write(const nlohmann::json& record);  // one line, flushed
  const std::vector<nlohmann::json>& records() const { return records_; }
  const std::string& path() const { return path_; }

  // Draws train loss and validation loss against step into an SVG.
  void plot_losses(const std::string& svg_path, const std::string& title) const;

  // The records of a metrics file, in order, without lines a crash tore (for
  // redrawing a finished run's curves); none when the file does not exist.
  static std::vector<nlohmann::json> read(const std::string& path);

 private:
  std::string path_;
  std::ofstream out_;
  std::vector<nlohmann::json> records_;
};

// The loss curve of plot_losses from any records (kind "train" with "loss",
// kind "eval" with "val_loss").
void plot_loss_curve(const std::string& svg_path, const std::string& title, const std::vector<nlohmann::json>& records);

}  // namespace ember::train
