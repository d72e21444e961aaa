// Sequential and ModuleList.
#include "ember/nn/container.h"

#include <string>

namespace ember::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<UnaryModule> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& m : modules_) h = m->forward(h);
  return h;
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  EMBER_CHECK(i < modules_.size(), "Sequential", "index ", i, " out of range for ", modules_.size(), " modules");
  return modules_[i];
}

void ModuleList::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t i) const {
  EMBER_CHECK(i < modules_.size(), "ModuleList", "index ", i, " out of range for ", modules_.size(), " modules");
  return modules_[i];
}

}  // namespace ember::nn
