// AdamW: option checks and the per-parameter fused update.
#include "ember/optim/adamw.h"

#include "ember/ops/creation.h"
#include "ember/optim/fused_updates.h"

namespace ember::optim {
namespace {
Options to_options(const AdamWOptions& o) {
  return {{"lr", o.lr}, {"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps}, {"weight_decay", o.weight_decay}};
}
}  // namespace

AdamW::AdamW(const std::vector<Tensor>& params, const AdamWOptions& options)
    : AdamW(single_group(params), options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options) : Optimizer("AdamW", to_options(options)) {
  for (ParamGroup& g : groups) add_param_group(std::move(g));
}

void AdamW::validate(const ParamGroup& g) const {
  EMBER_CHECK(g.get("lr") >= 0.0, "AdamW", "invalid learning rate ", g.get("lr"));
  EMBER_CHECK(g.get("eps") >= 0.0, "AdamW", "invalid eps ", g.get("eps"));
  EMBER_CHECK(g.get("beta1") >= 0.0 && g.get("beta1") < 1.0, "AdamW", "invalid beta1 ", g.get("beta1"),
              " (must be in [0, 1))");
  EMBER_CHECK(g.get("beta2") >= 0.0 && g.get("beta2") < 1.0, "AdamW", "invalid beta2 ", g.get("beta2"),
              " (must be in [0, 1))");
  EMBER_CHECK(g.get("weight_decay") >= 0.0, "AdamW", "invalid weight_decay ", g.get("weight_decay"));
}

std::vector<std::string> AdamW::state_names(const ParamGroup&) const { return {"exp_avg", "exp_avg_sq"}; }

void AdamW::init_state(const ParamGroup&, const Tensor& param, ParamState& st) {
  if (!st.tensors.empty()) return;
  DType sdt = optimizer_state_dtype(param.dtype());
  st.tensors["exp_avg"] = zeros(param.shape(), sdt, param.device());
  st.tensors["exp_avg_sq"] = zeros(param.shape(), sdt, param.device());
}

namespace {
AdamWHyper hyper_of(const ParamGroup& group, int64_t step) {
  AdamWHyper h;
  h.lr = group.get("lr");
  h.beta1 = group.get("beta1");
  h.beta2 = group.get("beta2");
  h.eps = group.get("eps");
  h.weight_decay = group.get("weight_decay");
  h.step = step;
  return h;
}
}  // namespace

void AdamW::update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& st) {
  init_state(group, param, st);
  adamw_update_(param, grad, st.tensors.at("exp_avg"), st.tensors.at("exp_avg_sq"), hyper_of(group, st.step));
}

void AdamW::update_traced(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& st,
                          const Tensor& hyper) {
  adamw_update_(param, grad, st.tensors.at("exp_avg"), st.tensors.at("exp_avg_sq"), hyper_of(group, 1), hyper);
}

}  // namespace ember::optim
