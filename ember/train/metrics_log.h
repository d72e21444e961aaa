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

 private:
  std::string path_;
  std::ofstream out_;
  std::vector<nlohmann::json> records_;
};

}  // namespace ember::train
