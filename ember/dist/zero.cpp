// ZeRO-1 AdamW: flat buffers, reduce-scatter, fused shard update, all-gather;
// the shards gathered into (and cut out of) optim::AdamW's state_dict layout.
#include "ember/dist/zero.h"

#include <cmath>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/dist/data_parallel.h"
#include "ember/nn/copy.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/reduce.h"
#include "ember/ops/shape_ops.h"
#include "ember/optim/fused_updates.h"

namespace ember::dist {

namespace {
Tensor slot(const Tensor& flat, int64_t offset, const Shape& shape) {
  return reshape(narrow(flat, 0, offset, numel(shape)), shape);
}
}  // namespace

ZeroAdamW::ZeroAdamW(std::vector<Tensor> params, std::shared_ptr<Communicator> comm, optim::AdamWOptions options)
    : ZeroAdamW(optim::single_group(params), std::move(comm), options) {}

ZeroAdamW::ZeroAdamW(std::vector<optim::ParamGroup> groups, std::shared_ptr<Communicator> comm,
                     optim::AdamWOptions options)
    : comm_(std::move(comm)), options_(options) {
  const char* op = "ZeroAdamW";
  if (!comm_) fail(op, "no communicator");
  // Validates the hyper-parameters (and fills each group's defaults) exactly as optim::AdamW does.
  optim::AdamW validator(groups, options_);
  for (size_t g = 0; g < groups.size(); ++g) {
    const optim::ParamGroup& pg = validator.param_groups()[g];
    for (const auto& [key, value] : pg.options)
      if (key != "weight_decay" && value != validator.defaults().at(key))
        fail(op, "parameter group ", g, " sets ", key, " = ", value, "; groups may differ in weight_decay only");
    Group grp;
    grp.first = params_.size();
    grp.count = pg.params.size();
    grp.weight_decay = pg.get("weight_decay");
    grp.begin = total_;
    for (const Tensor& p : pg.params) {
      params_.push_back(p);
      offsets_.push_back(total_);
      total_ += p.numel();
    }
    grp.end = total_;
    groups_.push_back(grp);
  }
  if (params_.empty()) fail(op, "no parameters");
  DType dt = params_[0].dtype();
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined() || !p.is_leaf() || !p.requires_grad())
      fail(op, "parameter ", i, " must be a leaf tensor that requires grad");
    if (p.dtype() != DType::f32 && p.dtype() != DType::f64)
      fail(op, "parameter ", i, " has dtype ", dtype_name(p.dtype()), "; float32 and float64 are supported");
    if (p.dtype() != dt)
      fail(op, "parameter ", i, " has dtype ", dtype_name(p.dtype()), " but parameter 0 has ", dtype_name(dt),
           "; all parameters must share one dtype");
    if (!p.device().is_cpu()) fail(op, "parameter ", i, " is on ", p.device().str(), "; CPU parameters only for now");
    if (!p.is_contiguous()) fail(op, "parameter ", i, " must be contiguous");
  }

  broadcast_tensors(*comm_, params_, "parameter");
  int64_t n = comm_->size();
  shard_ = (total_ + n - 1) / n;
  flat_grad_ = zeros({shard_ * n}, dt);
  grad_shard_ = zeros({shard_}, dt);
  param_shard_ = zeros({shard_}, dt);
  DType sdt = optim::optimizer_state_dtype(dt);
  exp_avg_ = zeros({shard_}, sdt);
  exp_avg_sq_ = zeros({shard_}, sdt);
}

double ZeroAdamW::sync_gradients(double max_norm) {
  NoGradGuard no_grad;
  EMBER_CHECK(max_norm >= 0.0, "ZeroAdamW", "max_norm must be non-negative, got ", max_norm);
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined())
      fail("ZeroAdamW", "parameter ", i, " of shape ", shape_str(params_[i].shape()),
           " has no gradient; ZeRO-1 updates a flat shard and needs every gradient (zero it if unused)");
    nn::copy_(slot(flat_grad_, offsets_[i], params_[i].shape()), g);
  }
  if (reduce_gradients)
    comm_->reduce_scatter(flat_grad_, grad_shard_, CommOp::avg);
  else
    nn::copy_(grad_shard_, narrow(flat_grad_, 0, comm_->rank() * shard_, shard_));
  synced_ = true;
  // The norm of the whole averaged gradient: this shard's sum of squares in
  // float64, summed over the ranks (the padding holds zeros).
  Tensor sq = sum(square(cast(grad_shard_, DType::f64)));
  comm_->all_reduce(sq, CommOp::sum);
  const double norm = std::sqrt(sq.item<double>());
  if (max_norm > 0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) nn::copy_(grad_shard_, grad_shard_ * coef);
  }
  return norm;
}

void ZeroAdamW::step() {
  NoGradGuard no_grad;
  if (!synced_) sync_gradients();
  synced_ = false;
  const int64_t start = comm_->rank() * shard_;
  for (size_t i = 0; i < params_.size(); ++i) {
    // The part of each parameter that falls in this rank's shard.
    const int64_t a = std::max(offsets_[i], start), b = std::min(offsets_[i] + params_[i].numel(), start + shard_);
    if (a >= b) continue;
    nn::copy_(narrow(param_shard_, 0, a - start, b - a),
              narrow(reshape(params_[i], {params_[i].numel()}), 0, a - offsets_[i], b - a));
  }

  optim::AdamWHyper h;
  h.lr = options_.lr;
  h.beta1 = options_.beta1;
  h.beta2 = options_.beta2;
  h.eps = options_.eps;
  h.step = ++step_;
  // The shard is cut where the groups meet: each piece with its group's weight decay.
  for (const Group& g : groups_) {
    const int64_t a = std::max(g.begin, start), b = std::min(g.end, start + shard_);
    if (a >= b) continue;
    h.weight_decay = g.weight_decay;
    auto piece = [&](const Tensor& t) { return narrow(t, 0, a - start, b - a); };
    optim::adamw_update_(piece(param_shard_), piece(grad_shard_), piece(exp_avg_), piece(exp_avg_sq_), h);
  }

  // The gradient's flat buffer is free once reduce-scattered: the parameters gather into it.
  comm_->all_gather(param_shard_, flat_grad_);
  for (size_t i = 0; i < params_.size(); ++i)
    nn::copy_(params_[i], slot(flat_grad_, offsets_[i], params_[i].shape()));
}

void ZeroAdamW::zero_grad(bool set_to_none) {
  for (const Tensor& p : params_) {
    if (set_to_none || !p.grad().defined())
      p.set_grad(Tensor());
    else
      nn::copy_(p.grad(), scalar(0, p.grad().dtype()));
  }
}

TensorMap ZeroAdamW::state_dict() const {
  NoGradGuard no_grad;
  const int n = comm_->size(), r = comm_->rank();
  // Rank 0 receives every shard into whole flat moments (only rank 0 ever
  // holds the unsharded state, and only while a checkpoint is written).
  Tensor m, v;
  if (r == 0) {
    m = zeros({shard_ * n}, exp_avg_.dtype());
    v = zeros({shard_ * n}, exp_avg_.dtype());
    nn::copy_(narrow(m, 0, 0, shard_), exp_avg_);
    nn::copy_(narrow(v, 0, 0, shard_), exp_avg_sq_);
    for (int q = 1; q < n; ++q) {
      comm_->recv(narrow(m, 0, q * shard_, shard_), q, 1);
      comm_->recv(narrow(v, 0, q * shard_, shard_), q, 2);
    }
  } else {
    comm_->send(exp_avg_, 0, 1);
    comm_->send(exp_avg_sq_, 0, 2);
    return {};
  }
  TensorMap out;
  const optim::AdamWOptions& o = options_;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Group& grp = groups_[g];
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    std::vector<int64_t> ids;
    for (size_t k = 0; k < grp.count; ++k) ids.push_back(int64_t(grp.first + k));
    out.emplace(prefix + "params", tensor_i64(ids, {int64_t(ids.size())}));
    out.emplace(prefix + "lr", scalar(o.lr, DType::f64));
    out.emplace(prefix + "beta1", scalar(o.beta1, DType::f64));
    out.emplace(prefix + "beta2", scalar(o.beta2, DType::f64));
    out.emplace(prefix + "eps", scalar(o.eps, DType::f64));
    out.emplace(prefix + "weight_decay", scalar(grp.weight_decay, DType::f64));
  }
  if (step_ == 0) return out;  // as optim::AdamW: no state before the first step
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace(prefix + "step", tensor_i64({step_}, {}));
    out.emplace(prefix + "exp_avg", slot(m, offsets_[i], params_[i].shape()));
    out.emplace(prefix + "exp_avg_sq", slot(v, offsets_[i], params_[i].shape()));
  }
  return out;
}

void ZeroAdamW::load_state_dict(const TensorMap& sd) {
  NoGradGuard no_grad;
  const char* op = "ZeroAdamW.load_state_dict";
  auto find = [&](const std::string& key) -> const Tensor* {
    auto it = sd.find(key);
    return it == sd.end() || !it->second.defined() ? nullptr : &it->second;
  };
  auto need = [&](const std::string& key) -> const Tensor& {
    const Tensor* t = find(key);
    if (!t) fail(op, "the state has no ", key);
    return *t;
  };
  // Hyper-parameters per group, checked before anything changes.
  std::vector<double> decay(groups_.size());
  optim::AdamWOptions loaded = options_;
  for (size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    const Tensor& ids = need(prefix + "params");
    if (ids.numel() != int64_t(groups_[g].count))
      fail(op, prefix, "params lists ", ids.numel(), " parameters but group ", g, " has ", groups_[g].count);
    decay[g] = need(prefix + "weight_decay").item<double>();
    loaded.lr = need(prefix + "lr").item<double>();
    loaded.beta1 = need(prefix + "beta1").item<double>();
    loaded.beta2 = need(prefix + "beta2").item<double>();
    loaded.eps = need(prefix + "eps").item<double>();
  }
  if (find("param_groups." + std::to_string(groups_.size()) + ".params"))
    fail(op, "the state has more than the optimizer's ", groups_.size(), " parameter groups");
  int64_t step = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string prefix = "state." + std::to_string(i) + ".";
    const Tensor* s = find(prefix + "step");
    const int64_t si = s ? s->item<int64_t>() : 0;
    if (i == 0) step = si;
    if (si != step)
      fail(op, prefix, "step is ", si, " but parameter 0 took ", step,
           " steps; ZeRO-1 keeps one step count for all parameters");
    if (si == 0) continue;
    for (const char* name : {"exp_avg", "exp_avg_sq"}) {
      const Tensor& t = need(prefix + name);
      if (t.shape() != params_[i].shape())
        fail(op, prefix, name, " has shape ", shape_str(t.shape()), " but parameter ", i, " has ",
             shape_str(params_[i].shape()));
    }
  }
  if (find("state." + std::to_string(params_.size()) + ".step"))
    fail(op, "the state has more than the optimizer's ", params_.size(), " parameters");

  // This rank's shard: the part of each parameter's moments that falls in it.
  nn::copy_(exp_avg_, scalar(0, exp_avg_.dtype()));
  nn::copy_(exp_avg_sq_, scalar(0, exp_avg_sq_.dtype()));
  const int64_t start = comm_->rank() * shard_;
  if (step > 0)
    for (size_t i = 0; i < params_.size(); ++i) {
      const int64_t a = std::max(offsets_[i], start), b = std::min(offsets_[i] + params_[i].numel(), start + shard_);
      if (a >= b) continue;
      const std::string prefix = "state." + std::to_string(i) + ".";
      for (auto [name, dst] : {std::pair{"exp_avg", exp_avg_}, std::pair{"exp_avg_sq", exp_avg_sq_}}) {
        const Tensor src = reshape(contiguous(need(prefix + name)), {params_[i].numel()});
        nn::copy_(narrow(dst, 0, a - start, b - a), cast(narrow(src, 0, a - offsets_[i], b - a), dst.dtype()));
      }
    }
  options_ = loaded;
  for (size_t g = 0; g < groups_.size(); ++g) groups_[g].weight_decay = decay[g];
  step_ = step;
  synced_ = false;
}

int64_t ZeroAdamW::state_bytes() const { return int64_t(exp_avg_.nbytes() + exp_avg_sq_.nbytes()); }

int64_t ZeroAdamW::unsharded_state_bytes() const {
  return 2 * total_ * int64_t(dtype_size(optim::optimizer_state_dtype(params_[0].dtype())));
}

}  // namespace ember::dist
