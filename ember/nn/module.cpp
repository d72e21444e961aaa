// Module bookkeeping: registration, traversal, modes, state_dict, to().
#include "ember/nn/module.h"

#include <set>
#include <unordered_set>

#include "ember/autograd/grad_mode.h"
#include "ember/nn/copy.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"

namespace ember::nn {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

std::string dotted(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  return name.empty() ? prefix : prefix + "." + name;
}

}  // namespace

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty() || name.find('.') != std::string::npos)
    fail(what, "name '", name, "' must be non-empty and contain no '.'");
  for (const Slot& s : params_)
    if (s.name == name) fail(what, "'", name, "' is already registered as a parameter");
  for (const Slot& s : buffers_)
    if (s.name == name) fail(what, "'", name, "' is already registered as a buffer");
  for (const auto& c : children_)
    if (c.first == name) fail(what, "'", name, "' is already registered as a module");
}

Tensor Module::register_parameter(const std::string& name, const Tensor& value, bool requires_grad) {
  check_new_name(name, "register_parameter");
  EMBER_CHECK(value.defined(), "register_parameter", "'", name, "' is an undefined tensor");
  EMBER_CHECK(is_floating(value.dtype()), "register_parameter", "'", name,
              "' must be floating-point, got ", dtype_name(value.dtype()));
  // Parameters are leaves updated in place by optimizers (apply_into needs
  // contiguous memory); a tensor computed by ops is detached first.
  Tensor p = value;
  if (!p.is_leaf()) p = p.detach();
  if (!p.is_contiguous()) {
    NoGradGuard no_grad;
    p = clone(p).detach();
  }
  p.requires_grad_(requires_grad);
  params_.push_back({name, p, true});
  return p;
}

Tensor Module::register_buffer(const std::string& name, const Tensor& value, bool persistent) {
  check_new_name(name, "register_buffer");
  EMBER_CHECK(value.defined(), "register_buffer", "'", name, "' is an undefined tensor");
  Tensor b = value.detach();
  if (!b.is_contiguous()) {
    NoGradGuard no_grad;
    b = clone(b).detach();
  }
  buffers_.push_back({name, b, persistent});
  return b;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "register_module");
  EMBER_CHECK(module != nullptr, "register_module", "'", name, "' is a null module");
  EMBER_CHECK(module.get() != this, "register_module", "'", name, "' is the module itself");
  children_.emplace_back(name, std::move(module));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  EMBER_CHECK(module != nullptr, "replace_module", "'", name, "' is a null module");
  EMBER_CHECK(module.get() != this, "replace_module", "'", name, "' is the module itself");
  for (auto& c : children_)
    if (c.first == name) {
      c.second = std::move(module);
      return;
    }
  std::vector<std::string> names;
  for (const auto& c : children_) names.push_back(c.first);
  fail("replace_module", "no child module named '", name, "'; children are: ", join(names));
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, const Slot*>>& out) const {
  if (params)
    for (const Slot& s : params_) out.emplace_back(dotted(prefix, s.name), &s);
  if (buffers)
    for (const Slot& s : buffers_) out.emplace_back(dotted(prefix, s.name), &s);
  for (const auto& [name, child] : children_) child->collect(dotted(prefix, name), params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  std::vector<std::pair<std::string, const Slot*>> all;
  collect("", true, false, all);
  NamedTensors out;
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& [name, slot] : all)
    if (seen.insert(&slot->tensor.impl()).second) out.emplace_back(name, slot->tensor);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  std::vector<std::pair<std::string, const Slot*>> all;
  collect("", false, true, all);
  NamedTensors out;
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& [name, slot] : all)
    if (seen.insert(&slot->tensor.impl()).second) out.emplace_back(name, slot->tensor);
  return out;
}

std::vector<Tensor> Module::buffers() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_buffers()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& c : children_) out.push_back(c.second);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out{{"", const_cast<Module*>(this)}};
  for (const auto& [name, child] : children_)
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(dotted(name, sub), m);
  return out;
}

Tensor Module::get_tensor(const std::string& dotted_name) const {
  std::vector<std::pair<std::string, const Slot*>> all;
  collect("", true, true, all);
  std::vector<std::string> names;
  for (const auto& [name, slot] : all) {
    if (name == dotted_name) return slot->tensor;
    names.push_back(name);
  }
  fail("get_tensor", "no parameter or buffer named '", dotted_name, "'; the module has: ", join(names));
}

void Module::train(bool on) {
  training_ = on;
  for (const auto& c : children_) c.second->train(on);
}

void Module::zero_grad(bool set_to_none) {
  for (const Tensor& p : parameters()) {
    if (!p.grad().defined()) continue;
    if (set_to_none) p.impl().grad = nullptr;
    // A fresh zero tensor rather than filling the old one: a gradient may be a
    // broadcast view or shared with a tensor the caller still holds.
    else p.set_grad(zeros(p.shape(), p.dtype(), p.device()));
  }
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Tensor& p : parameters()) n += p.numel();
  return n;
}

TensorMap Module::state_dict() const {
  std::vector<std::pair<std::string, const Slot*>> all;
  collect("", true, true, all);
  TensorMap out;
  for (const auto& [name, slot] : all)
    if (slot->persistent) out.emplace(name, slot->tensor.detach());
  return out;
}

LoadResult Module::load_state_dict(const TensorMap& state, bool strict) {
  std::vector<std::pair<std::string, const Slot*>> all;
  collect("", true, true, all);
  LoadResult result;
  std::vector<std::string> mismatches;
  std::set<std::string> expected;
  for (const auto& [name, slot] : all) {
    if (!slot->persistent) continue;
    expected.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      result.missing_keys.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    const Tensor& dst = slot->tensor;
    if (!src.defined()) {
      mismatches.push_back("undefined tensor for " + name);
    } else if (src.shape() != dst.shape()) {
      mismatches.push_back("shape mismatch for " + name + ": checkpoint " + shape_str(src.shape()) + " vs model " +
                           shape_str(dst.shape()));
    } else if (src.dtype() != dst.dtype()) {
      mismatches.push_back("dtype mismatch for " + name + ": checkpoint " + dtype_name(src.dtype()) + " vs model " +
                           dtype_name(dst.dtype()));
    }
  }
  for (const auto& [name, t] : state)
    if (!expected.count(name)) result.unexpected_keys.push_back(name);

  std::vector<std::string> problems;
  if (strict && !result.missing_keys.empty()) problems.push_back("missing keys: " + join(result.missing_keys));
  if (strict && !result.unexpected_keys.empty())
    problems.push_back("unexpected keys: " + join(result.unexpected_keys));
  problems.insert(problems.end(), mismatches.begin(), mismatches.end());
  std::string message;
  for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  if (!problems.empty()) fail("load_state_dict", message);

  // Nothing is written until everything has been checked: a bad checkpoint never
  // leaves a half-loaded model behind.
  for (const auto& [name, slot] : all) {
    if (!slot->persistent) continue;
    auto it = state.find(name);
    if (it != state.end() && !it->second.same(slot->tensor)) copy_(slot->tensor, it->second);
  }
  return result;
}

namespace {

// Every unique parameter and buffer tensor in the tree, so that tied tensors are
// converted once.
std::vector<Tensor> unique_state(const Module& m) {
  std::vector<Tensor> out;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& [name, t] : m.named_parameters())
    if (seen.insert(&t.impl()).second) out.push_back(t);
  for (auto& [name, t] : m.named_buffers())
    if (seen.insert(&t.impl()).second) out.push_back(t);
  return out;
}

}  // namespace

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (const Tensor& t : unique_state(*this)) {
    if (t.device() == device) continue;
    Tensor grad = t.grad();
    rebind_data(t, contiguous(to_device(t.detach(), device)));
    if (grad.defined()) t.set_grad(to_device(grad, device));
  }
}

void Module::to(DType dtype) {
  EMBER_CHECK(is_floating(dtype), "Module::to", "can only convert to a floating-point dtype, got ", dtype_name(dtype));
  NoGradGuard no_grad;
  for (const Tensor& t : unique_state(*this)) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) continue;
    t.impl().grad = nullptr;
    rebind_data(t, cast(t.detach(), dtype));
  }
}

std::string Module::str() const {
  std::string out;
  str_into(out, "", 0);
  return out;
}

void Module::str_into(std::string& out, const std::string& name, int depth) const {
  out += std::string(size_t(depth) * 2, ' ');
  if (!name.empty()) out += "(" + name + "): ";
  out += type_name() + "(" + extra_repr() + ")\n";
  for (const auto& [child_name, child] : children_) child->str_into(out, child_name, depth + 1);
}

}  // namespace ember::nn
