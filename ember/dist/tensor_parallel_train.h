// Training a tensor-parallel model (dist/tensor_parallel.h, e.g. a GPT made
// tensor-parallel by models::make_tensor_parallel) with the single-process
// run's numbers and files: the gradient norm for clipping, and the optimizer's
// state gathered into, or sliced out of, the layout of the same optimizer over
// the unconverted model, so that checkpoints load into a plain run and into a
// run on another number of tensor-parallel ranks.
//
// Split parameters are a ColumnParallelLinear's weight and bias and a
// RowParallelLinear's weight; everything else (embeddings, norms, the LM head,
// row-parallel biases) is replicated and has the same gradient on every rank.
#pragma once

#include "ember/dist/tensor_parallel.h"
#include "ember/io/safetensors.h"
#include "ember/nn/module.h"
#include "ember/optim/optimizer.h"

namespace ember::dist {

// Collective: the L2 norm of all gradients of `model` as the single-process
// model would compute it (the split parameters' sums of squares summed over the
// ranks, the replicated ones counted once), the same on every rank. With
// max_norm > 0 every gradient is scaled by max_norm / (norm + 1e-6) when that
// is below 1 (optim::clip_grad_norm_'s rule); a non-finite norm is returned
// with the gradients untouched.
double clip_grad_norm_(const nn::Module& model, double max_norm);

// Collective: opt.state_dict() with the state tensors of split parameters
// gathered to full size: what the same optimizer over the unconverted model
// would hold (its parameter indices follow make_param_groups' order, which
// conversion keeps). On every rank (root kEveryRank), or on rank `root` only,
// the one that saves it (the others get an empty map).
TensorMap gather_full_optimizer_state(const nn::Module& model, const optim::Optimizer& opt, int root = kEveryRank);

// No communication: from such a full-layout state (a checkpoint's
// optimizer.safetensors), this rank's, ready for opt.load_state_dict. Tensors
// that belong to no split parameter are passed through as they are.
TensorMap slice_optimizer_state(const nn::Module& model, const optim::Optimizer& opt, const TensorMap& full);

}  // namespace ember::dist
