// Names a module's parameters in compiled graphs: the CaptureNamer that
// graph::trace / ember::compile use to print "transformer.h.0.attn.c_attn.weight"
// instead of "c3" for a captured parameter.
#pragma once

#include <string>

#include "ember/graph/tracer.h"
#include "ember/nn/module.h"

namespace ember::nn {

inline graph::CaptureNamer parameter_namer(const Module& module) {
  return [params = module.named_parameters()](const Tensor& t) {
    for (const auto& [name, p] : params)
      if (p.same(t)) return name;
    return std::string();
  };
}

}  // namespace ember::nn
