// Optimizer base: groups, the step loop, state_dict and its validation.
#include "ember/optim/optimizer.h"

#include <algorithm>
#include <array>
#include <set>
#include <unordered_set>

#include "ember/autograd/grad_mode.h"
#include "ember/nn/copy.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/shape_ops.h"
#include "ember/ops/trace_hook.h"
#include "ember/optim/fused_updates.h"

namespace ember::optim {
namespace {

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// Splits "state.12.exp_avg" into ("state", 12, "exp_avg"); false when the key has another form.
bool parse_key(const std::string& key, std::string& kind, int64_t& index, std::string& field) {
  size_t a = key.find('.');
  if (a == std::string::npos) return false;
  size_t b = key.find('.', a + 1);
  if (b == std::string::npos || b == a + 1 || b + 1 >= key.size()) return false;
  kind = key.substr(0, a);
  std::string num = key.substr(a + 1, b - a - 1);
  for (char c : num)
    if (c < '0' || c > '9') return false;
  if (num.size() > 9) return false;
  index = std::stoll(num);
  field = key.substr(b + 1);
  return kind == "state" || kind == "param_groups";
}

// A group's counters (float64 [2]: lr, steps) live on its parameters'
// device, where the compiled update reads them. The host reads and writes
// them outside any trace. A write is a fill with the value as its argument
// copied into one element (on a GPU no host copy, so a schedule's set_lr()
// between compiled steps does not wait for it; the CPU runs the same code, so
// its tests cover the GPU's path); a read copies the two values to the host.
std::array<double, 2> read_counters(const Tensor& counters) {
  TraceSuspendGuard real;
  const Tensor host = counters.device().is_cpu() ? counters : to_device(counters, Device::cpu());
  const double* c = static_cast<const double*>(host.raw_data());
  return {c[0], c[1]};
}
// Writes counters[at] = value.
void write_counter(const Tensor& counters, int64_t at, double value) {
  TraceSuspendGuard real;
  NoGradGuard no_grad;
  nn::copy_(slice(counters, 0, at, at + 1), full({1}, value, DType::f64, counters.device()));
}
void write_counters(const Tensor& counters, double lr, double steps) {
  write_counter(counters, 0, lr);
  write_counter(counters, 1, steps);
}

}  // namespace

double ParamGroup::get(const std::string& key) const {
  auto it = options.find(key);
  if (it == options.end()) {
    std::vector<std::string> have;
    for (const auto& [k, v] : options) have.push_back(k);
    fail("optimizer", "parameter group has no option '", key, "' (it has: ", join(have, ", "), ")");
  }
  return it->second;
}

void ParamGroup::set_lr(double lr) {
  options["lr"] = lr;
  if (counters.defined()) write_counter(counters, 0, lr);
}

std::vector<ParamGroup> single_group(const std::vector<Tensor>& params) { return {ParamGroup{params, {}}}; }

Optimizer::Optimizer(std::string name, Options defaults) : name_(std::move(name)), defaults_(std::move(defaults)) {}

void Optimizer::add_param_group(ParamGroup group) {
  std::unordered_set<const TensorImpl*> seen;
  for (const ParamGroup& g : groups_)
    for (const Tensor& p : g.params) seen.insert(&p.impl());
  for (size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    EMBER_CHECK(p.defined(), name_, "parameter ", i, " of the new group is undefined");
    EMBER_CHECK(is_floating(p.dtype()), name_, "parameter ", i, " must be floating-point, got ", dtype_name(p.dtype()));
    EMBER_CHECK(p.is_leaf(), name_, "parameter ", i, " is not a leaf tensor (it was computed by an op)");
    EMBER_CHECK(p.is_contiguous(), name_, "parameter ", i, " of shape ", shape_str(p.shape()),
                " must be contiguous to be updated in place");
    EMBER_CHECK(seen.insert(&p.impl()).second, name_, "parameter ", i,
                " of the new group appears more than once among the optimizer's parameters");
  }
  for (const auto& [key, value] : defaults_) group.options.emplace(key, value);
  for (const auto& [key, value] : group.options)
    EMBER_CHECK(defaults_.count(key) || key == "initial_lr", name_, "unknown option '", key, "'");
  validate(group);
  state_.resize(state_.size() + group.params.size());
  groups_.push_back(std::move(group));
}

void Optimizer::set_lr(double lr) {
  EMBER_CHECK(lr >= 0.0, name_, "learning rate must be non-negative, got ", lr);
  for (ParamGroup& g : groups_) g.set_lr(lr);
}

const ParamState& Optimizer::state(size_t index) const {
  EMBER_CHECK(index < state_.size(), name_, "parameter index ", index, " out of range for ", state_.size(),
              " parameters");
  pull_counters();
  return state_[index];
}

void Optimizer::pull_counters() const {
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    const int64_t steps = group.counters.defined() ? int64_t(read_counters(group.counters)[1]) : 0;
    for (size_t k = 0; k < group.params.size(); ++k, ++index)
      if (state_[index].counted_by_graph) state_[index].step = steps;
  }
}

void Optimizer::push_counters() {
  size_t index = 0;
  for (ParamGroup& group : groups_) {
    int64_t steps = -1;
    for (size_t k = 0; k < group.params.size(); ++k, ++index)
      if (state_[index].counted_by_graph) steps = std::max(steps, state_[index].step);
    if (!group.counters.defined()) continue;
    write_counter(group.counters, 0, group.lr());
    if (steps >= 0) write_counter(group.counters, 1, double(steps));
  }
}

void Optimizer::update_traced(const ParamGroup&, const Tensor&, const Tensor&, ParamState&, const Tensor&) {
  fail(name_, "this optimizer's step cannot be compiled yet (AdamW's can); call step() after the compiled function");
}

// The step as graph nodes: per group, counters <- counters + (0, 1), then each
// parameter's update reading the new counters. Everything the graph updates in
// place (parameters, moments, counters) is a real tensor made before the graph
// first runs, so it is captured by reference.
void Optimizer::traced_step() {
  pull_counters();
  size_t index = 0;
  for (ParamGroup& group : groups_) {
    std::vector<std::pair<size_t, Tensor>> todo;  // (global index, parameter) of those with a gradient
    for (const Tensor& p : group.params) {
      const size_t i = index++;
      if (p.grad().defined()) todo.emplace_back(i, p);
    }
    if (todo.empty()) continue;
    // The counters (learning rate, step) live on the parameters' device, where
    // the update reads them (a graph runs on one device).
    const Device device = todo[0].second.device();
    for (const auto& [i, p] : todo)
      if (p.device() != device)
        fail(name_, "parameters ", todo[0].first, " and ", i, " of one group are on ", device.str(), " and ",
             p.device().str(), "; a compiled step updates a group on one device");
    const int64_t steps = state_[todo[0].first].step;
    for (const auto& [i, p] : todo)
      if (state_[i].step != steps)
        fail(name_, "parameters ", todo[0].first, " and ", i, " of one group have taken ", steps, " and ",
             state_[i].step, " steps; a compiled step counts steps per group and needs them equal");
    Tensor one_step;  // (0, 1): a constant of the graph, on the counters' device
    {
      TraceSuspendGuard real;
      if (group.counters.defined() && group.counters.device() != device)
        fail(name_, "this group's step counters are on ", group.counters.device().str(), " but its parameters on ",
             device.str(), " now; make a new optimizer after moving the model");
      if (!group.counters.defined())
        group.counters = to_device(tensor({group.lr(), double(steps)}, {2}, DType::f64), device);
      else
        write_counters(group.counters, group.lr(), double(steps));
      one_step = to_device(tensor({0.0, 1.0}, {2}, DType::f64), device);
      for (const auto& [i, p] : todo) init_state(group, p, state_[i]);
    }
    nn::copy_(group.counters, add(group.counters, one_step));
    for (const auto& [i, p] : todo) {
      Tensor g = p.grad();
      if (g.shape() != p.shape())
        fail(name_, "gradient shape ", shape_str(g.shape()), " does not match parameter shape ", shape_str(p.shape()));
      if (g.dtype() != p.dtype()) g = cast(g, p.dtype());
      update_traced(group, p, contiguous(g), state_[i], group.counters);
      state_[i].counted_by_graph = true;
    }
  }
}

void Optimizer::step() {
  NoGradGuard no_grad;
  if (tracing_active()) return traced_step();
  pull_counters();
  size_t index = 0;
  for (const ParamGroup& group : groups_) {
    for (const Tensor& p : group.params) {
      ParamState& st = state_[index++];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (g.shape() != p.shape())
        fail(name_, "gradient shape ", shape_str(g.shape()), " does not match parameter shape ", shape_str(p.shape()));
      if (g.device() != p.device())
        fail(name_, "gradient on ", g.device().str(), " but parameter on ", p.device().str());
      // Gradients may be broadcast or transposed views; the fused kernels read flat memory.
      if (g.dtype() != p.dtype()) g = cast(g, p.dtype());
      g = contiguous(g);
      st.step += 1;
      try {
        update(group, p, g, st);
      } catch (...) {
        st.step -= 1;  // a failed update leaves the parameter's state as it was
        push_counters();
        throw;
      }
    }
  }
  push_counters();
}

void Optimizer::zero_grad(bool set_to_none) {
  for (const ParamGroup& group : groups_)
    for (const Tensor& p : group.params) {
      if (!p.grad().defined()) continue;
      // A fresh zero tensor rather than filling in place: a gradient may be a
      // broadcast view, or shared with a tensor the caller still holds.
      if (set_to_none) p.impl().grad = nullptr;
      else p.set_grad(zeros(p.shape(), p.dtype(), p.device()));
    }
}

TensorMap Optimizer::state_dict() const {
  pull_counters();
  TensorMap out;
  int64_t index = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    std::string prefix = "param_groups." + std::to_string(g) + ".";
    std::vector<int64_t> ids;
    for (size_t k = 0; k < groups_[g].params.size(); ++k) ids.push_back(index++);
    out.emplace(prefix + "params", tensor_i64(ids, {int64_t(ids.size())}));
    for (const auto& [key, value] : groups_[g].options) out.emplace(prefix + key, scalar(value, DType::f64));
  }
  for (size_t i = 0; i < state_.size(); ++i) {
    const ParamState& st = state_[i];
    if (st.step == 0 && st.tensors.empty()) continue;
    std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace(prefix + "step", tensor_i64({st.step}, {}));
    for (const auto& [name, t] : st.tensors) out.emplace(prefix + name, t);
  }
  return out;
}

void Optimizer::load_state_dict(const TensorMap& sd) {
  std::vector<std::string> problems;
  // Which group each global parameter index belongs to, and the parameters themselves.
  std::vector<size_t> group_of;
  std::vector<Tensor> params;
  for (size_t g = 0; g < groups_.size(); ++g)
    for (const Tensor& p : groups_[g].params) {
      group_of.push_back(g);
      params.push_back(p);
    }

  std::vector<Options> new_options(groups_.size());
  std::vector<bool> group_seen(groups_.size(), false);
  std::vector<ParamState> new_state(state_.size());
  std::vector<bool> has_step(state_.size(), false);
  std::set<std::string> present;  // state keys in the checkpoint, valid or not
  std::vector<std::string> unexpected;
  for (const auto& [key, t] : sd) {
    std::string kind, field;
    int64_t index = 0;
    if (!parse_key(key, kind, index, field) || !t.defined()) {
      unexpected.push_back(key);
      continue;
    }
    if (kind == "param_groups") {
      if (size_t(index) >= groups_.size()) {
        problems.push_back(str_cat("the checkpoint has parameter group ", index, " but the optimizer has ",
                                   groups_.size(), " groups"));
        continue;
      }
      group_seen[size_t(index)] = true;
      if (field == "params") {
        std::vector<int64_t> want;
        int64_t first = 0;
        for (size_t g = 0; g < size_t(index); ++g) first += int64_t(groups_[g].params.size());
        for (size_t k = 0; k < groups_[size_t(index)].params.size(); ++k) want.push_back(first + int64_t(k));
        std::vector<int64_t> got = t.dtype() == DType::i64 ? t.to_vector<int64_t>() : std::vector<int64_t>{-1};
        if (got != want)
          problems.push_back(str_cat("parameter group ", index, " holds ", got.size(),
                                     " parameters in the checkpoint but ", want.size(), " in the optimizer"));
      } else if (t.numel() != 1) {
        problems.push_back(str_cat("option ", key, " must be a scalar, got shape ", shape_str(t.shape())));
      } else {
        new_options[size_t(index)][field] = t.item<double>();
      }
      continue;
    }
    // kind == "state"
    if (size_t(index) >= state_.size()) {
      problems.push_back(str_cat("state for parameter ", index, " but the optimizer has ", state_.size(),
                                 " parameters"));
      continue;
    }
    const Tensor& p = params[size_t(index)];
    if (field == "step") {
      if (t.numel() != 1) {
        problems.push_back(str_cat(key, " must be a scalar, got shape ", shape_str(t.shape())));
        continue;
      }
      new_state[size_t(index)].step = int64_t(t.item<double>());
      has_step[size_t(index)] = true;
      continue;
    }
    present.insert(key);
    std::vector<std::string> names = state_names(groups_[group_of[size_t(index)]]);
    if (std::find(names.begin(), names.end(), field) == names.end()) {
      unexpected.push_back(key);
    } else if (t.shape() != p.shape()) {
      problems.push_back(str_cat("shape mismatch for ", key, ": checkpoint ", shape_str(t.shape()), " vs parameter ",
                                 shape_str(p.shape())));
    } else if (!is_floating(t.dtype())) {
      problems.push_back(str_cat(key, " must be floating-point, got ", dtype_name(t.dtype())));
    } else {
      new_state[size_t(index)].tensors[field] = t;
    }
  }
  for (size_t g = 0; g < groups_.size(); ++g)
    if (!group_seen[g]) problems.push_back(str_cat("parameter group ", g, " is missing from the checkpoint"));
  for (size_t i = 0; i < new_state.size(); ++i) {
    if (!has_step[i] && !new_state[i].tensors.empty())
      problems.push_back(str_cat("state.", i, ".step is missing"));
    if (!has_step[i]) continue;
    std::vector<std::string> missing;
    for (const std::string& n : state_names(groups_[group_of[i]]))
      if (!present.count("state." + std::to_string(i) + "." + n))
        missing.push_back("state." + std::to_string(i) + "." + n);
    if (!missing.empty()) problems.push_back("missing state: " + join(missing, ", "));
  }
  if (!unexpected.empty()) problems.push_back("unexpected keys: " + join(unexpected, ", "));
  // Hyper-parameters must still make sense for this optimizer.
  if (problems.empty()) {
    for (size_t g = 0; g < groups_.size(); ++g) {
      ParamGroup candidate{{}, groups_[g].options};
      for (const auto& [k, v] : new_options[g]) {
        if (!defaults_.count(k) && k != "initial_lr") problems.push_back(str_cat("unknown option '", k, "'"));
        candidate.options[k] = v;
      }
      try {
        validate(candidate);
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
      new_options[g] = candidate.options;
    }
  }
  if (!problems.empty()) fail(name_ + ".load_state_dict", join(problems, "; "));

  // Own copies, in the dtype and on the device the update kernels expect.
  NoGradGuard no_grad;
  for (size_t i = 0; i < new_state.size(); ++i)
    for (auto& [n, t] : new_state[i].tensors)
      t = clone(cast(to_device(t.detach(), params[i].device()), optimizer_state_dtype(params[i].dtype()))).detach();
  for (size_t g = 0; g < groups_.size(); ++g) groups_[g].options = new_options[g];
  // A compiled step holds the current state tensors by reference: load into
  // them where they exist, so that the graph goes on from the loaded state.
  for (size_t i = 0; i < new_state.size(); ++i) {
    new_state[i].counted_by_graph = state_[i].counted_by_graph;
    for (auto& [n, t] : new_state[i].tensors) {
      auto old = state_[i].tensors.find(n);
      if (old != state_[i].tensors.end() && old->second.shape() == t.shape() && old->second.dtype() == t.dtype()) {
        copy_bytes(old->second, t);
        t = old->second;
      }
    }
  }
  state_ = std::move(new_state);
  push_counters();
}

}  // namespace ember::optim
