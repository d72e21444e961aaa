// ZeRO-1 AdamW: flat buffers, reduce-scatter, fused shard update, all-gather.
#include "ember/dist/zero.h"

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/dist/data_parallel.h"
#include "ember/nn/copy.h"
#include "ember/ops/creation.h"
#include "ember/ops/shape_ops.h"
#include "ember/optim/fused_updates.h"

namespace ember::dist {

namespace {
Tensor slot(const Tensor& flat, int64_t offset, const Shape& shape) {
  return reshape(narrow(flat, 0, offset, numel(shape)), shape);
}
}  // namespace

ZeroAdamW::ZeroAdamW(std::vector<Tensor> params, std::shared_ptr<Communicator> comm, optim::AdamWOptions options)
    : params_(std::move(params)), comm_(std::move(comm)), options_(options) {
  const char* op = "ZeroAdamW";
  if (!comm_) fail(op, "no communicator");
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
    offsets_.push_back(total_);
    total_ += p.numel();
  }
  // Validate the hyper-parameters exactly as optim::AdamW does.
  optim::AdamW validator(std::vector<Tensor>{params_[0]}, options_);
  (void)validator;

  broadcast_tensors(*comm_, params_, "parameter");
  int64_t n = comm_->size();
  shard_ = (total_ + n - 1) / n;
  flat_grad_ = zeros({shard_ * n}, dt);
  flat_param_ = zeros({shard_ * n}, dt);
  grad_shard_ = zeros({shard_}, dt);
  param_shard_ = zeros({shard_}, dt);
  DType sdt = optim::optimizer_state_dtype(dt);
  exp_avg_ = zeros({shard_}, sdt);
  exp_avg_sq_ = zeros({shard_}, sdt);
}

void ZeroAdamW::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined())
      fail("ZeroAdamW", "parameter ", i, " of shape ", shape_str(params_[i].shape()),
           " has no gradient; ZeRO-1 updates a flat shard and needs every gradient (zero it if unused)");
    nn::copy_(slot(flat_grad_, offsets_[i], params_[i].shape()), g);
    nn::copy_(slot(flat_param_, offsets_[i], params_[i].shape()), params_[i]);
  }
  int64_t start = comm_->rank() * shard_;
  if (reduce_gradients)
    comm_->reduce_scatter(flat_grad_, grad_shard_, CommOp::avg);
  else
    nn::copy_(grad_shard_, narrow(flat_grad_, 0, start, shard_));
  nn::copy_(param_shard_, narrow(flat_param_, 0, start, shard_));

  optim::AdamWHyper h;
  h.lr = options_.lr;
  h.beta1 = options_.beta1;
  h.beta2 = options_.beta2;
  h.eps = options_.eps;
  h.weight_decay = options_.weight_decay;
  h.step = ++step_;
  optim::adamw_update_(param_shard_, grad_shard_, exp_avg_, exp_avg_sq_, h);

  comm_->all_gather(param_shard_, flat_param_);
  for (size_t i = 0; i < params_.size(); ++i)
    nn::copy_(params_[i], slot(flat_param_, offsets_[i], params_[i].shape()));
}

void ZeroAdamW::zero_grad(bool set_to_none) {
  for (const Tensor& p : params_) {
    if (set_to_none || !p.grad().defined())
      p.set_grad(Tensor());
    else
      nn::copy_(p.grad(), scalar(0, p.grad().dtype()));
  }
}

int64_t ZeroAdamW::state_bytes() const { return int64_t(exp_avg_.nbytes() + exp_avg_sq_.nbytes()); }

int64_t ZeroAdamW::unsharded_state_bytes() const {
  return 2 * total_ * int64_t(dtype_size(optim::optimizer_state_dtype(params_[0].dtype())));
}

}  // namespace ember::dist
