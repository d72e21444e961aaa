// Tensor-parallel GPT (Megatron-LM style): turns a built GPT, in place, into
// this rank's shard, so N ranks together run one model on the same batch.
//
// Per block: attention's c_attn becomes column-parallel by heads (this rank's
// query heads and, with grouped-query attention, its key/value heads; q, k and
// v are split as separate blocks so each rank keeps whole heads and each query
// head keeps its key/value head), attention runs on the local heads only, and
// c_proj becomes row-parallel; the MLP's c_fc is column-parallel (SwiGLU: gate
// and value split alike, so each rank keeps matching pairs) and its c_proj
// row-parallel. Embeddings, norms, ln_f and lm_head stay replicated: their
// inputs and gradients are the same on every rank, so their gradients come out
// equal without any extra communication. Two all-reduces per block forward and
// two backward.
//
// The full model must be the same on every rank (built with the same seed or
// loaded from the same checkpoint); that is checked, as are the split sizes,
// with one error raised on every rank alike. For a checkpoint, gather with
// dist::gather_full_state_dict (collective) and let rank 0 save it; it loads
// into an ordinary GPT, which can then be converted again for any rank count
// that divides the heads.
#pragma once

#include <memory>

#include "ember/dist/communicator.h"
#include "ember/models/gpt.h"

namespace ember::models {

// Collective. Requires n_head, n_kv_head and the MLP hidden width to divide by
// comm->size(). Afterwards model.parameters() are this rank's (smaller) shards;
// config() still describes the full model; forward() and loss() return the full
// logits and loss on every rank. Not for a model already converted.
void make_tensor_parallel(GPT& model, std::shared_ptr<dist::Communicator> comm);

// True when make_tensor_parallel has converted `model`.
bool is_tensor_parallel(const GPT& model);

}  // namespace ember::models
