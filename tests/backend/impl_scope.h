// ImplScope: sets the float32 GEMM choice (cpu::set_sgemm_impl) for the life
// of the object, so that a test comparing kernels leaves the choice as it was.
#pragma once

#include "ember/backend/cpu/gemm.h"

namespace ember::cpu::testing {

class ImplScope {
 public:
  explicit ImplScope(SgemmImpl impl) : before_(sgemm_impl()) { set_sgemm_impl(impl); }
  ~ImplScope() { set_sgemm_impl(before_); }
  ImplScope(const ImplScope&) = delete;
  ImplScope& operator=(const ImplScope&) = delete;

 private:
  SgemmImpl before_;
};

}  // namespace ember::cpu::testing
