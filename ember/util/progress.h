// A terminal progress bar with rate and ETA for long-running work:
//   train  [########----------]  412/1000  41%  23.5 it/s  ETA 0:25  loss 1.234
// On a terminal it redraws one line; when stderr is not a terminal (CI, logs)
// it prints a plain line every `log_every` percent instead, so logs stay short.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ember {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it", int log_every_percent = 10);
  ~ProgressBar();
  // Sets the position and the trailing metrics (name, formatted value).
  void update(int64_t done, const std::vector<std::pair<std::string, std::string>>& metrics = {});
  void finish();
  static std::string format_duration(double seconds);  // "1:02:03" or "2:03"

 private:
  std::string render(int64_t done, const std::vector<std::pair<std::string, std::string>>& metrics) const;
  std::string label_, unit_;
  int64_t total_;
  int log_every_;
  int last_logged_ = -1;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t done_ = 0;
  int64_t first_done_ = -1;  // the position at the first update (the rate's origin)
};

}  // namespace ember
