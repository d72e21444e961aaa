// Saving and loading a module's state_dict as a safetensors file.
#pragma once

#include <map>
#include <string>

#include "ember/nn/module.h"

namespace ember::nn {

// Writes module.state_dict() atomically (see save_safetensors).
void save_module(const Module& module, const std::string& path,
                 const std::map<std::string, std::string>& metadata = {});
// Reads the file and load_state_dict()s it into the module (in place).
LoadResult load_module(Module& module, const std::string& path, bool strict = true);

}  // namespace ember::nn
