// Tensor parallelism (Megatron-LM, Shoeybi et al. 2019): one layer's weight
// split across the ranks of a communicator, every rank running the layer on the
// whole (replicated) batch.
//
//   * Differentiable collectives, primitives whose vjps are each other:
//       tp_copy    identity forward, all-reduce (sum) backward  ("f" in the paper)
//       tp_reduce  all-reduce (sum) forward, identity backward  ("g")
//       tp_gather  all-gather along the last axis forward, this rank's slice backward
//   * ColumnParallelLinear: output features split; the input passes through
//     tp_copy, so the replicated input's gradient is the sum of every rank's
//     part. Optionally gathers the full output.
//   * RowParallelLinear: input features split (the input is a column-parallel
//     layer's local output); partial products summed by tp_reduce, bias added
//     once afterwards, so its output and bias gradient are replicated.
// A column-parallel layer followed by a row-parallel one (attention, MLP) costs
// one all-reduce forward and one backward.
//
// Layers are built from a full nn::Linear that every rank holds (same seed or
// the same checkpoint), each rank keeping its slice; gather_full reverses it for
// checkpoints (gathered to one rank only, so while a checkpoint is written the
// others hold only their shards; every rank still builds the full model at
// start-up) and for comparing gradients (to every rank). A column-parallel layer's outputs may
// be several blocks split separately (q | k | v, SwiGLU's gate | value), so each
// rank keeps whole heads and whole gate/value pairs.
//
// Collectives are matched by call order, so every rank must run the same
// forward and backward. With data parallelism across groups (2-D: the world
// split into tensor-parallel groups, Communicator::split), the layers use the
// group's communicator and DataParallel the one across groups. Not supported
// yet: recording them in a compiled graph (ember::compile), sequence
// parallelism.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/nn/linear.h"

namespace ember::dist {

Tensor tp_copy(const Tensor& x, const std::shared_ptr<Communicator>& comm);
Tensor tp_reduce(const Tensor& x, const std::shared_ptr<Communicator>& comm);
// [..., n] on each rank -> [..., size() * n], rank r's columns at r * n.
Tensor tp_gather(const Tensor& x, const std::shared_ptr<Communicator>& comm);

// gather_full's `root` for "every rank receives".
constexpr int kEveryRank = -1;

// A Linear whose parameters are this rank's slice of a full Linear's.
class ParallelLinear : public nn::Linear {
 public:
  // Collective (every rank, same order): the full-size tensor for `local`, this
  // layer's weight or bias or a gradient of either, laid out as the full
  // Linear's, on every rank (root kEveryRank: an all-gather) or on rank `root`
  // only (a gather; the others get an undefined tensor).
  virtual Tensor gather_full(const Tensor& local, int root = kEveryRank) const = 0;
  // The inverse, without communication: this rank's part of a full-size tensor
  // laid out as the full Linear's weight or bias (a checkpoint's weight or its
  // AdamW moments). A fresh tensor.
  virtual Tensor slice_full(const Tensor& full) const = 0;
  const std::shared_ptr<Communicator>& comm() const { return comm_; }
  int64_t full_in_features, full_out_features;

 protected:
  ParallelLinear(const nn::Linear& full, int64_t in_local, int64_t out_local, std::shared_ptr<Communicator> comm);
  std::shared_ptr<Communicator> comm_;
};

class ColumnParallelLinear : public ParallelLinear {
 public:
  // `segments`: consecutive blocks of full's output features (summing to its
  // out_features; {} is one block), each split evenly across the ranks; this
  // rank's parts of each block are concatenated in order. gather_output: return
  // the full [..., out] (else this rank's [..., out / size()]).
  ColumnParallelLinear(const nn::Linear& full, std::shared_ptr<Communicator> comm, std::vector<int64_t> segments = {},
                       bool gather_output = false);
  Tensor forward(const Tensor& x) override;
  Tensor gather_full(const Tensor& local, int root = kEveryRank) const override;
  Tensor slice_full(const Tensor& full) const override;
  std::string type_name() const override { return "ColumnParallelLinear"; }
  std::string extra_repr() const override;

  std::vector<int64_t> segments;  // full sizes
  bool gather_output;
};

class RowParallelLinear : public ParallelLinear {
 public:
  // full's input features split evenly; the bias is replicated and added once,
  // after the sum over ranks.
  RowParallelLinear(const nn::Linear& full, std::shared_ptr<Communicator> comm);
  Tensor forward(const Tensor& x) override;  // [..., in / size()] -> [..., out], the same on every rank
  Tensor gather_full(const Tensor& local, int root = kEveryRank) const override;
  Tensor slice_full(const Tensor& full) const override;
  std::string type_name() const override { return "RowParallelLinear"; }
  std::string extra_repr() const override;
};

// Collective: the parameters of a model holding ParallelLinear layers at full
// size, in named_parameters() order; with gradients = true their gradients
// (zeros where a parameter has none, so every rank issues the same collectives).
nn::NamedTensors gather_full_parameters(const nn::Module& model, bool gradients = false);
// Whether this rank gets the result of a gather to `root` over `model`'s
// ParallelLinear layers (every rank for kEveryRank, and for a model without any).
bool receives_full(const nn::Module& model, int root);
// Collective: model.state_dict() with every ParallelLinear's tensors at full
// size, ready to save as a single-process checkpoint; on every rank, or with
// root >= 0 on that rank only (the others get an empty map and never hold the
// full tensors).
TensorMap gather_full_state_dict(const nn::Module& model, int root = kEveryRank);

}  // namespace ember::dist
