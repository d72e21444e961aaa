// Thread-local gradient-recording flag.
#include "ember/autograd/grad_mode.h"

namespace ember {

namespace {
thread_local bool grad_enabled = true;
}

bool GradMode::enabled() { return grad_enabled; }
void GradMode::set_enabled(bool on) { grad_enabled = on; }

}  // namespace ember
