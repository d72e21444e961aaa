// Progress bar rendering.
#include "ember/util/progress.h"

#include <unistd.h>

#include <cstdio>
#include <sstream>

namespace ember {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, int log_every_percent)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total < 1 ? 1 : total),
      log_every_(log_every_percent < 1 ? 1 : log_every_percent), tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

std::string ProgressBar::format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  int64_t s = int64_t(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60), (long long)(s % 60));
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

std::string ProgressBar::render(int64_t done, const std::vector<std::pair<std::string, std::string>>& metrics) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // The rate counts only the work done since this bar's first update, so a
  // bar that starts part-way (a resumed run) neither inflates it nor its ETA.
  double rate = elapsed > 0 && first_done_ >= 0 ? double(done - first_done_) / elapsed : 0;
  double eta = rate > 0 ? double(total_ - done) / rate : -1;
  int percent = int(100 * done / total_);
  constexpr int kWidth = 24;
  int filled = int(kWidth * done / total_);
  std::ostringstream os;
  os << label_ << " [" << std::string(size_t(filled), '#') << std::string(size_t(kWidth - filled), '-') << "] " << done
     << "/" << total_ << " " << percent << "%";
  char buf[64];
  std::snprintf(buf, sizeof buf, "  %.1f %s/s", rate, unit_.c_str());
  os << buf << "  " << (done >= total_ ? "took " + format_duration(elapsed) : "ETA " + format_duration(eta));
  for (const auto& [name, value] : metrics) os << "  " << name << " " << value;
  return os.str();
}

void ProgressBar::update(int64_t done, const std::vector<std::pair<std::string, std::string>>& metrics) {
  done_ = done < 0 ? 0 : (done > total_ ? total_ : done);
  auto now = std::chrono::steady_clock::now();
  if (first_done_ < 0) {
    first_done_ = done_;
    start_ = now;
  }
  if (tty_) {
    bool due = now - last_draw_ > std::chrono::milliseconds(100) || done_ == total_;
    if (!due) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r\033[K%s", render(done_, metrics).c_str());
    std::fflush(stderr);
  } else {
    int bucket = int(100 * done_ / total_) / log_every_;
    if (bucket == last_logged_) return;
    last_logged_ = bucket;
    std::fprintf(stderr, "%s\n", render(done_, metrics).c_str());
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace ember
