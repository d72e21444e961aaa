// SVG line-chart rendering: axes with "nice" ticks, one polyline per series, a legend.
#include "ember/util/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "ember/io/atomic_file.h"

namespace ember {
namespace {

const char* kColors[] = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Tick step of 1, 2 or 5 times a power of ten giving about `target` ticks.
double nice_step(double span, int target) {
  if (!(span > 0)) return 1;
  double raw = span / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

}  // namespace

std::string render_svg_plot(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  auto ty = [&](double y) { return o.log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, ty(y)), y1 = std::max(y1, ty(y));
    }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const double L = 70, R = 20, T = 40, B = 50;
  double W = o.width - L - R, H = o.height - T - B;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * W; };
  auto py = [&](double y) { return T + H - (y - y0) / (y1 - y0) * H; };

  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << o.width << "\" height=\"" << o.height
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  os << "<text x=\"" << o.width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape_xml(o.title)
     << "</text>\n";
  double xs = nice_step(x1 - x0, 8), ys = nice_step(y1 - y0, 6);
  for (double x = std::ceil(x0 / xs) * xs; x <= x1 + 1e-9; x += xs) {
    os << "<line x1=\"" << px(x) << "\" y1=\"" << T << "\" x2=\"" << px(x) << "\" y2=\"" << T + H
       << "\" stroke=\"#eee\"/><text x=\"" << px(x) << "\" y=\"" << T + H + 16 << "\" text-anchor=\"middle\">" << fmt(x)
       << "</text>\n";
  }
  for (double y = std::ceil(y0 / ys) * ys; y <= y1 + 1e-9; y += ys) {
    std::string label = o.log_y ? fmt(std::pow(10.0, y)) : fmt(y);
    os << "<line x1=\"" << L << "\" y1=\"" << py(y) << "\" x2=\"" << L + W << "\" y2=\"" << py(y)
       << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">" << label
       << "</text>\n";
  }
  os << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W << "\" height=\"" << H
     << "\" fill=\"none\" stroke=\"#333\"/>\n";
  os << "<text x=\"" << L + W / 2 << "\" y=\"" << o.height - 10 << "\" text-anchor=\"middle\">" << escape_xml(o.x_label)
     << "</text>\n";
  os << "<text transform=\"translate(16," << T + H / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
     << escape_xml(o.y_label) << "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % (sizeof kColors / sizeof *kColors)];
    os << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.8\" points=\"";
    for (auto [x, y] : series[i].points)
      if (std::isfinite(x) && std::isfinite(y)) os << px(x) << "," << py(ty(y)) << " ";
    os << "\"/>\n";
    os << "<text x=\"" << L + W - 8 << "\" y=\"" << T + 16 + 16 * double(i) << "\" text-anchor=\"end\" fill=\"" << color
       << "\">" << escape_xml(series[i].name) << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

void write_svg_plot(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  write_file_atomic(path, render_svg_plot(series, options));
}

}  // namespace ember
