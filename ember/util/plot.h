// Line charts as standalone SVG files (loss and reward curves), so results
// that people would rather look at than read are drawn without any plotting
// dependency. Written atomically.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ember {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y)
};

struct PlotOptions {
  std::string title;
  std::string x_label = "step";
  std::string y_label;
  bool log_y = false;
  int width = 720, height = 420;
};

std::string render_svg_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);
void write_svg_plot(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options);

}  // namespace ember
