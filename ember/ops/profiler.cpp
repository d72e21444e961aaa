// Flat per-primitive profile (see profiler.h).
#include "ember/ops/profiler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <vector>

namespace ember::profiler {
namespace {

struct Row {
  double seconds = 0;
  int64_t calls = 0;
};

struct Profile {
  std::mutex mutex;
  std::map<std::string, Row> rows;
  ~Profile() {
    // Printed when the process ends, so any program can be profiled unchanged.
    std::string table = report();
    if (!table.empty()) std::cerr << table;
  }
};

Profile& profile() {
  static Profile p;
  return p;
}

const char* mode() {
  static const char* m = std::getenv("EMBER_PROFILE");
  return m;
}

}  // namespace

bool enabled() {
  static const bool on = mode() != nullptr && *mode() != '\0' && std::strcmp(mode(), "0") != 0;
  return on;
}

bool by_shape() {
  static const bool on = enabled() && std::strcmp(mode(), "shapes") == 0;
  return on;
}

void record(const std::string& key, double seconds) {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mutex);
  Row& r = p.rows[key];
  r.seconds += seconds;
  r.calls += 1;
}

std::string report() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (p.rows.empty()) return "";
  std::vector<std::pair<std::string, Row>> rows(p.rows.begin(), p.rows.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& [k, r] : rows) total += r.seconds;
  std::string out = "ember profile (EMBER_PROFILE): kernel time per primitive\n";
  char line[512];
  std::snprintf(line, sizeof line, "%12s %7s %10s %9s  %s\n", "total ms", "share", "calls", "us/call", "primitive");
  out += line;
  for (const auto& [k, r] : rows) {
    std::snprintf(line, sizeof line, "%12.1f %6.1f%% %10lld %9.1f  %s\n", r.seconds * 1e3, 100 * r.seconds / total,
                  static_cast<long long>(r.calls), r.seconds * 1e6 / double(r.calls), k.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "%12.1f %6.1f%%  total\n", total * 1e3, 100.0);
  out += line;
  return out;
}

void reset() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.rows.clear();
}

}  // namespace ember::profiler
