// Module <-> safetensors file.
#include "ember/nn/module_io.h"

namespace ember::nn {

void save_module(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, module.state_dict(), metadata);
}

LoadResult load_module(Module& module, const std::string& path, bool strict) {
  // Mapped, not copied: load_state_dict copies into the module's own tensors anyway.
  SafetensorsFile file = load_safetensors(path, LoadMode::mmap);
  try {
    return module.load_state_dict(file.tensors, strict);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (file " + path + ")");
  }
}

}  // namespace ember::nn
