// ZeRO stage 1: AdamW whose state (exp_avg, exp_avg_sq) is sharded across
// ranks, so each rank keeps 1/size of the optimizer memory.
//
// The parameters are viewed as one flat vector, padded to a multiple of the
// rank count and cut into equal shards; rank r owns shard r. A step:
//   1. copies the local gradients into a flat buffer and reduce-scatters it
//      (average): rank r receives the averaged gradient of its shard only;
//   2. updates its shard of the parameters with the fused AdamW kernel of
//      ember/optim (optim::adamw_update_, the same math as optim::AdamW);
//   3. all-gathers the updated shards so every rank has the whole model again.
// The communication volume equals one all-reduce (reduce-scatter +
// all-gather), so ZeRO-1 replaces data parallel's gradient all-reduce: use it
// with a module that is NOT wrapped in DataParallel (or set
// reduce_gradients = false if the gradients are already averaged).
//
// Parameters are broadcast from rank 0 at construction (after a cross-rank
// shape check). All parameters share one dtype (float32 or float64) and one set
// of hyper-parameters; per-group options are not supported yet.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/optim/adamw.h"

namespace ember::dist {

class ZeroAdamW {
 public:
  ZeroAdamW(std::vector<Tensor> params, std::shared_ptr<Communicator> comm, optim::AdamWOptions options = {});

  // One AdamW step on every parameter (each must have a gradient).
  void step();
  void zero_grad(bool set_to_none = true);
  void set_lr(double lr) { options_.lr = lr; }
  double lr() const { return options_.lr; }
  int64_t steps() const { return step_; }

  // When false, step() takes this rank's gradients as already averaged (no reduce-scatter).
  bool reduce_gradients = true;

  int64_t total_elements() const { return total_; }  // unpadded parameter count
  int64_t shard_elements() const { return shard_; }
  // Optimizer state held by this rank (exp_avg + exp_avg_sq of its shard), and
  // what an unsharded AdamW would hold for the same parameters.
  int64_t state_bytes() const;
  int64_t unsharded_state_bytes() const;

  // This rank's shard of the moments (flat; elements [rank*shard, (rank+1)*shard)).
  const Tensor& exp_avg() const { return exp_avg_; }
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }

 private:
  std::vector<Tensor> params_;
  std::shared_ptr<Communicator> comm_;
  optim::AdamWOptions options_;
  std::vector<int64_t> offsets_;
  int64_t total_ = 0, shard_ = 0, step_ = 0;
  Tensor flat_grad_, flat_param_, grad_shard_, param_shard_, exp_avg_, exp_avg_sq_;
};

}  // namespace ember::dist
