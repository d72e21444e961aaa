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
  // Made when a step of this group is first traced into a compiled graph:
  // float64 [2] (lr, steps taken) on the group's parameters' device, which the
  // graph reads and advances on every run, so one graph serves a whole
  // schedule. From then on it holds the step count of the group's parameters
  // that the graph updates.
  Tensor counters = {};

  double get(const std::string& key) const;  // error naming the key when absent
  double lr() const { return get("lr"); }
  void set_lr(double lr);
};

struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> tensors;
  bool counted_by_graph = false;  // step lives in the group's counters (a compiled step updates it)
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter that has a gradient (those without are skipped, as
  // in PyTorch). Runs without recording gradients. Called inside a function
  // being compiled (ember::compile), the step is traced into the graph: the
  // state tensors are made now (real tensors the graph updates in place), and
  // the learning rate and step count are read from the group's counters at run
  // time (AdamW only; set_lr between runs is seen by the graph).
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
  // The traced form of update: the learning rate and step come from `hyper`
  // (float64 [2], the group's counters after this step's increment). The
  // state tensors already exist (init_state). Optimizers without one refuse.
  virtual void update_traced(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state,
                             const Tensor& hyper);
  // Makes a parameter's state tensors if it has none yet.
  virtual void init_state(const ParamGroup& group, const Tensor& param, ParamState& state) {}

 private:
  void traced_step();
  // Step counts between the host state and the groups' counters: pull reads
  // the graph's counts into ParamState::step, push writes them back.
  void pull_counters() const;
  void push_counters();

  std::string name_;
  Options defaults_;
  std::vector<ParamGroup> groups_;
  mutable std::vector<ParamState> state_;  // by global parameter index (steps pulled lazily)
};

// Wraps a flat list of parameters into one group with no option overrides.
std::vector<ParamGroup> single_group(const std::vector<Tensor>& params);

}  // namespace ember::optim
