// Optimizer base (torch.optim.Optimizer): parameter groups with their own
// hyper-parameters, per-parameter state, zero_grad, and a state_dict that
// checkpoints can save as safetensors.
//
// state_dict() layout (a TensorMap; names are stable across runs):
//   param_groups.<g>.params      int64 [n]  global indices of the group's parameters
//   param_groups.<g>.<option>    float64 [] every hyper-parameter of group g (lr, weight_decay, ...)
//   state.<i>.step               int64 []   steps taken by parameter i (global index, groups in order)
//   state.<i>.<name>             the state tensors of parameter i (exp_avg, exp_avg_sq, momentum_buffer)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ember/core/tensor.h"
#include "ember/io/safetensors.h"

namespace ember::optim {

using Options = std::map<std::string, double>;

struct ParamGroup {
  std::vector<Tensor> params;
  Options options;  // hyper-parameters; missing ones take the optimizer's defaults

  double get(const std::string& key) const;  // error naming the key when absent
  double lr() const { return get("lr"); }
  void set_lr(double lr) { options["lr"] = lr; }
};

struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> tensors;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient (those without are skipped, as
  // in PyTorch). Runs without recording gradients.
  void step();
  // Drops the gradients (set_to_none) or replaces them with zeros.
  void zero_grad(bool set_to_none = true);

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Appends a group (defaults filled in, hyper-parameters validated); a
  // parameter may belong to one group only.
  void add_param_group(ParamGroup group);
  // Sets every group's learning rate.
  void set_lr(double lr);

  // State of the parameter with global index i (empty before its first step).
  const ParamState& state(size_t index) const;
  size_t num_params() const { return state_.size(); }

  // The live state tensors (not copies): save them before the next step().
  TensorMap state_dict() const;
  // Replaces state and hyper-parameters from a state_dict of an optimizer of
  // the same kind over parameters of the same shapes. Everything is checked
  // first and all problems are reported in one Error; the loaded tensors are
  // copied (a memory-mapped checkpoint can be closed afterwards).
  void load_state_dict(const TensorMap& state);

  const std::string& name() const { return name_; }
  const Options& defaults() const { return defaults_; }

 protected:
  Optimizer(std::string name, Options defaults);
  // Called once per group from add_param_group, after defaults are filled in.
  virtual void validate(const ParamGroup& group) const = 0;
  // Names of the state tensors the optimizer keeps for a group (checked on load).
  virtual std::vector<std::string> state_names(const ParamGroup& group) const = 0;
  // Updates one parameter given its contiguous gradient; state.step is already incremented.
  virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) = 0;

 private:
  std::string name_;
  Options defaults_;
  std::vector<ParamGroup> groups_;
  std::vector<ParamState> state_;  // by global parameter index
};

// Wraps a flat list of parameters into one group with no option overrides.
std::vector<ParamGroup> single_group(const std::vector<Tensor>& params);

}  // namespace ember::optim
