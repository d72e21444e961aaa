// nn::Module: the base of every layer and model (PyTorch's nn.Module).
//
// A module owns named parameters, named buffers and named child modules, in
// registration order, and offers the bookkeeping built on them: dotted names
// ("h.0.attn.c_attn.weight"), train/eval mode, zero_grad, state_dict and
// load_state_dict (checkpoints), and moving to another device or dtype.
//
// Parameters and buffers are Tensor handles shared with the layer's own member
// fields (a Linear keeps `weight` and registers the same handle), so anything
// that changes a parameter does it in place on the TensorImpl: loading a
// checkpoint copies into the existing storage, and to(device) swaps the
// storage under the handle. Member fields therefore never go stale.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/tensor.h"
#include "ember/io/safetensors.h"

namespace ember::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict skipped (as PyTorch returns it).
struct LoadResult {
  std::vector<std::string> missing_keys;
  std::vector<std::string> unexpected_keys;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Modules are held by shared_ptr and referred to by identity; copying one would
  // silently share or split its parameters.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Registers a trainable tensor (a leaf, made contiguous; requires_grad set when
  // requires_grad is true) and returns the handle the layer keeps.
  Tensor register_parameter(const std::string& name, const Tensor& value, bool requires_grad = true);
  // Registers non-trainable state (e.g. a causal mask). Non-persistent buffers
  // follow to() but are left out of state_dict.
  Tensor register_buffer(const std::string& name, const Tensor& value, bool persistent = true);
  // Registers a child and returns it with its own type, for a member field.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, std::static_pointer_cast<Module>(module));
    return module;
  }
  // Swaps the child registered as `name` for `module`, keeping its place in the
  // order (so parameter names and order are unchanged), and returns it; the
  // caller points its own member field at it. Used to turn a built model into
  // another form in place (e.g. dist/tensor_parallel.h's parallel Linears).
  template <typename M>
  std::shared_ptr<M> replace_module(const std::string& name, std::shared_ptr<M> module) {
    replace_child(name, std::static_pointer_cast<Module>(module));
    return module;
  }

  // Own parameters first, then each child's, depth first, in registration order
  // (PyTorch's order). A tensor reachable under two names (weight tying) is
  // listed once, under its first name, so optimizers update it once.
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  std::vector<std::shared_ptr<Module>> children() const;
  // This module (named "") and every descendant, depth first.
  std::vector<std::pair<std::string, Module*>> named_modules() const;

  // A parameter or buffer by dotted name; the error lists the names that exist.
  Tensor get_tensor(const std::string& dotted_name) const;

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops every parameter's gradient (set_to_none) or replaces it with zeros.
  void zero_grad(bool set_to_none = true);
  int64_t num_parameters() const;  // elements in unique parameters

  // Parameters (every name, tied ones included, as PyTorch) and persistent
  // buffers, detached handles sharing the module's data.
  TensorMap state_dict() const;
  // Copies values into the existing tensors, in place, without recording
  // gradients. Everything is checked before anything is written, and all
  // problems are reported in one Error: missing keys, unexpected keys (both
  // ignored when !strict), shape and dtype mismatches (always errors).
  LoadResult load_state_dict(const TensorMap& state, bool strict = true);

  // Moves every parameter and buffer (and gradient) to `device`, in place.
  void to(Device device);
  // Converts floating-point parameters and buffers to `dtype` (integer buffers
  // stay as they are, as in PyTorch); gradients are dropped.
  void to(DType dtype);

  // One line per module with its type and extra_repr, indented by depth.
  std::string str() const;
  virtual std::string type_name() const { return "Module"; }
  virtual std::string extra_repr() const { return ""; }

 private:
  struct Slot {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void replace_child(const std::string& name, std::shared_ptr<Module> module);
  // Every (dotted name, slot) in the tree, without removing duplicates.
  void collect(const std::string& prefix, bool params, bool buffers,
               std::vector<std::pair<std::string, const Slot*>>& out) const;
  void str_into(std::string& out, const std::string& name, int depth) const;

  std::vector<Slot> params_;
  std::vector<Slot> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module whose forward takes and returns one tensor, so it can be chained
// in a Sequential.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

}  // namespace ember::nn
