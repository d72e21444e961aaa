// JSON Lines metrics and loss plots (see metrics_log.h).
#include "ember/train/metrics_log.h"

#include <sstream>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"
#include "ember/util/plot.h"

namespace ember::train {

MetricsLog::MetricsLog(std::string path, int64_t keep_up_to_step) : path_(std::move(path)) {
  if (path_.empty()) return;
  if (keep_up_to_step >= 0) {
    std::string kept;
    for (nlohmann::json& j : read(path_)) {  // read() drops a line torn by a crash
      if (j.value("step", int64_t(0)) > keep_up_to_step) continue;
      kept += j.dump() + "\n";
      records_.push_back(std::move(j));
    }
    write_file_atomic(path_, kept);
  } else {
    write_file_atomic(path_, "");
  }
  out_.open(path_, std::ios::app);
  if (!out_) fail("metrics", "cannot open ", path_, " for writing");
}

void MetricsLog::write(const nlohmann::json& record) {
  if (!path_.empty()) {
    // A text field (a sample cut after a token that ends mid-character) may
    // not be valid UTF-8: it is logged with U+FFFD instead of failing the run.
    out_ << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    out_.flush();
  }
  records_.push_back(record);
}

void MetricsLog::plot_losses(const std::string& svg_path, const std::string& title) const {
  plot_loss_curve(svg_path, title, records_);
}

std::vector<nlohmann::json> MetricsLog::read(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) records.push_back(std::move(j));
  }
  return records;
}

void plot_loss_curve(const std::string& svg_path, const std::string& title, const std::vector<nlohmann::json>& records) {
  PlotSeries train{"train loss", {}}, val{"validation loss", {}};
  for (const auto& r : records) {
    const std::string kind = r.value("kind", "");
    if (kind == "train" && r.contains("loss")) train.points.emplace_back(r["step"].get<double>(), r["loss"].get<double>());
    if (kind == "eval" && r.contains("val_loss"))
      val.points.emplace_back(r["step"].get<double>(), r["val_loss"].get<double>());
  }
  std::vector<PlotSeries> series{train};
  if (!val.points.empty()) series.push_back(val);
  write_svg_plot(svg_path, series, {title, "step", "cross-entropy (nats, log scale)", true});
}

}  // namespace ember::train
