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
// One full-size flat buffer serves both collectives (the gradient's input to
// the reduce-scatter, then the all-gather's output). The communication volume
// equals one all-reduce (reduce-scatter + all-gather), so ZeRO-1 replaces data
// parallel's gradient all-reduce: use it
// with a module that is NOT wrapped in DataParallel (or set
// reduce_gradients = false if the gradients are already averaged).
//
// Parameters are broadcast from rank 0 at construction (after a cross-rank
// shape check). All parameters share one dtype (float32 or float64). Parameter
// groups (optim::make_param_groups) may differ in weight_decay only; the flat
// vector holds the groups in order, so a shard may span two of them.
//
// Checkpoints: state_dict() gathers the shards into optim::AdamW's state_dict
// layout on rank 0, and load_state_dict() takes its shard from such a map, so
// a ZeRO run's optimizer file loads into a plain AdamW and the other way
// round, on any number of ranks.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/io/safetensors.h"
#include "ember/optim/adamw.h"

namespace ember::dist {

class ZeroAdamW {
 public:
  ZeroAdamW(std::vector<Tensor> params, std::shared_ptr<Communicator> comm, optim::AdamWOptions options = {});
  ZeroAdamW(std::vector<optim::ParamGroup> groups, std::shared_ptr<Communicator> comm,
            optim::AdamWOptions options = {});

  // Reduce-scatters this step's gradients (each parameter must have one) and
  // returns the L2 norm of the whole averaged gradient; with max_norm > 0 the
  // shard is clipped as optim::clip_grad_norm_ clips (coefficient max_norm /
  // (norm + 1e-6) when below 1; nothing when the norm is not finite).
  // Collective. step() calls it itself when it was not called this step.
  double sync_gradients(double max_norm = 0);
  // One AdamW step on every parameter.
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

  // Collective. On rank 0, the whole state in optim::AdamW's state_dict layout
  // for the parameter groups in order (param_groups.<g>.*, state.<i>.step,
  // state.<i>.exp_avg, state.<i>.exp_avg_sq); empty on the other ranks.
  TensorMap state_dict() const;
  // Takes this rank's shard (and the groups' hyper-parameters and the step)
  // from such a map, which every rank passes whole (e.g. the memory-mapped
  // optimizer file). Errors name the first key that does not fit.
  void load_state_dict(const TensorMap& state);

  // This rank's shard of the moments (flat; elements [rank*shard, (rank+1)*shard)).
  const Tensor& exp_avg() const { return exp_avg_; }
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }

 private:
  struct Group {
    int64_t begin = 0, end = 0;  // flat element range
    size_t first = 0, count = 0;  // parameter indices
    double weight_decay = 0;
  };
  std::vector<Tensor> params_;
  std::shared_ptr<Communicator> comm_;
  optim::AdamWOptions options_;
  std::vector<Group> groups_;
  std::vector<int64_t> offsets_;
  bool synced_ = false;  // sync_gradients ran for this step
  int64_t total_ = 0, shard_ = 0, step_ = 0;
  Tensor flat_grad_, grad_shard_, param_shard_, exp_avg_, exp_avg_sq_;
};

}  // namespace ember::dist
