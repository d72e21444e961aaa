// Whether ops record autograd history on this thread (PyTorch's no_grad).
#pragma once

namespace ember {

class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool on);
};

// RAII scope that turns gradient recording off (or on) and restores it.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(GradMode::enabled()) { GradMode::set_enabled(enabled); }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};

}  // namespace ember
