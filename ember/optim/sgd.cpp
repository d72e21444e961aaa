// SGD: option checks and the per-parameter fused update.
#include "ember/optim/sgd.h"

#include "ember/ops/creation.h"
#include "ember/optim/fused_updates.h"

namespace ember::optim {
namespace {
Options to_options(const SGDOptions& o) {
  return {{"lr", o.lr},
          {"momentum", o.momentum},
          {"dampening", o.dampening},
          {"nesterov", o.nesterov ? 1.0 : 0.0},
          {"weight_decay", o.weight_decay}};
}
}  // namespace

SGD::SGD(const std::vector<Tensor>& params, const SGDOptions& options) : SGD(single_group(params), options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options) : Optimizer("SGD", to_options(options)) {
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

void SGD::validate(const ParamGroup& g) const {
  EMBER_CHECK(g.get("lr") >= 0.0, "SGD", "invalid learning rate ", g.get("lr"));
  EMBER_CHECK(g.get("momentum") >= 0.0, "SGD", "invalid momentum ", g.get("momentum"));
  EMBER_CHECK(g.get("weight_decay") >= 0.0, "SGD", "invalid weight_decay ", g.get("weight_decay"));
  double nesterov = g.get("nesterov");
  EMBER_CHECK(nesterov == 0.0 || nesterov == 1.0, "SGD", "nesterov must be 0 or 1, got ", nesterov);
  if (nesterov == 1.0)
    EMBER_CHECK(g.get("momentum") > 0.0 && g.get("dampening") == 0.0, "SGD",
                "Nesterov momentum requires a momentum and zero dampening");
}

std::vector<std::string> SGD::state_names(const ParamGroup& g) const {
  if (g.get("momentum") != 0.0) return {"momentum_buffer"};
  return {};
}

void SGD::update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& st) {
  SGDHyper h;
  h.lr = group.get("lr");
  h.momentum = group.get("momentum");
  h.dampening = group.get("dampening");
  h.weight_decay = group.get("weight_decay");
  h.nesterov = group.get("nesterov") != 0.0;
  Tensor buf;
  if (h.momentum != 0.0) {
    auto it = st.tensors.find("momentum_buffer");
    // PyTorch starts the buffer as a copy of the first (decayed) gradient; the
    // kernel writes it on the first step, so uninitialised memory is fine here.
    h.first_step = it == st.tensors.end();
    buf = h.first_step ? Tensor::empty(param.shape(), optimizer_state_dtype(param.dtype()), param.device())
                       : it->second;
  }
  sgd_update_(param, grad, buf, h);
  // Kept only once the update succeeded, so a failed step leaves no half-made state.
  if (h.first_step) st.tensors["momentum_buffer"] = buf;
}

}  // namespace ember::optim
