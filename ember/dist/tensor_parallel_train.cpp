// Tensor-parallel training helpers (see tensor_parallel_train.h): which
// optimizer parameter belongs to which ParallelLinear, the global gradient
// norm, and the optimizer state's gather and slice.
#include "ember/dist/tensor_parallel_train.h"

#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/dist/tensor_parallel.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"
#include "ember/optim/clip.h"

namespace ember::dist {
namespace {

struct Owner {
  const ParallelLinear* layer = nullptr;  // null: not a ParallelLinear's parameter
  bool split = false;                     // false for replicated ones (a row-parallel bias)
};

Owner owner_of(const nn::Module& model, const Tensor& param) {
  for (const auto& [name, m] : model.named_modules())
    if (const auto* p = dynamic_cast<const ParallelLinear*>(m)) {
      if (p->weight.same(param)) return {p, true};
      if (p->bias.defined() && p->bias.same(param))
        return {p, dynamic_cast<const ColumnParallelLinear*>(p) != nullptr};
    }
  return {};
}

// By the optimizer's global parameter index (groups in order), as in its state_dict.
std::vector<Owner> owners_by_index(const nn::Module& model, const optim::Optimizer& opt) {
  std::vector<Owner> out;
  for (const auto& group : opt.param_groups())
    for (const Tensor& p : group.params) out.push_back(owner_of(model, p));
  return out;
}

// "state.12.exp_avg" -> 12 (and the field); -1 for other keys.
int64_t state_index(const std::string& key, std::string& field) {
  if (key.rfind("state.", 0) != 0) return -1;
  const size_t dot = key.find('.', 6);
  if (dot == std::string::npos || dot == 6) return -1;
  int64_t index = 0;
  for (size_t i = 6; i < dot; ++i) {
    if (key[i] < '0' || key[i] > '9' || i - 6 > 9) return -1;
    index = index * 10 + (key[i] - '0');
  }
  field = key.substr(dot + 1);
  return index;
}

}  // namespace

double clip_grad_norm_(const nn::Module& model, double max_norm) {
  EMBER_CHECK(max_norm >= 0.0, "tensor_parallel clip_grad_norm_", "max_norm must be non-negative, got ", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> split, replicated;
  std::shared_ptr<Communicator> comm;
  for (const auto& [name, p] : model.named_parameters()) {
    const Owner o = owner_of(model, p);
    if (o.layer) comm = o.layer->comm();
    (o.split ? split : replicated).push_back(p);
  }
  const double split_norm = optim::grad_norm(split);
  Tensor sq = tensor({split_norm * split_norm}, {1}, DType::f64);
  if (comm && comm->size() > 1) comm->all_reduce(sq, CommOp::sum);
  const double replicated_norm = optim::grad_norm(replicated);
  const double norm = std::sqrt(sq.item<double>() + replicated_norm * replicated_norm);
  if (max_norm > 0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
      for (const Tensor& p : model.parameters()) {
        Tensor g = p.grad();
        if (!g.defined()) continue;
        const bool narrow = g.dtype() == DType::bf16 || g.dtype() == DType::f16;
        p.set_grad((narrow ? cast(cast(g, DType::f32) * coef, g.dtype()) : g * coef).detach());
      }
  }
  return norm;
}

TensorMap gather_full_optimizer_state(const nn::Module& model, const optim::Optimizer& opt, int root) {
  const std::vector<Owner> owners = owners_by_index(model, opt);
  TensorMap sd = opt.state_dict();
  // A std::map: the same key order on every rank, so the gathers match up.
  for (auto& [key, t] : sd) {
    std::string field;
    const int64_t i = state_index(key, field);
    if (i < 0 || field == "step" || size_t(i) >= owners.size() || !owners[size_t(i)].layer) continue;
    t = owners[size_t(i)].layer->gather_full(t, root);
  }
  return receives_full(model, root) ? sd : TensorMap{};
}

TensorMap slice_optimizer_state(const nn::Module& model, const optim::Optimizer& opt, const TensorMap& full) {
  const std::vector<Owner> owners = owners_by_index(model, opt);
  TensorMap out;
  for (const auto& [key, t] : full) {
    std::string field;
    const int64_t i = state_index(key, field);
    const bool sliced = i >= 0 && field != "step" && size_t(i) < owners.size() && owners[size_t(i)].layer;
    out.emplace(key, sliced ? owners[size_t(i)].layer->slice_full(t) : t);
  }
  return out;
}

}  // namespace ember::dist
