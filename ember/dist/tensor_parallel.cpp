// Tensor parallelism: the differentiable collectives (tp_copy, tp_reduce,
// tp_gather) and the column- and row-parallel Linear layers built on them.
#include "ember/dist/tensor_parallel.h"

#include <map>

#include "ember/autograd/grad_mode.h"
#include "ember/nn/copy.h"
#include "ember/ops/creation.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/index_ops.h"
#include "ember/ops/linalg.h"
#include "ember/ops/shape_ops.h"

namespace ember::dist {
namespace {

enum class TpKind { copy, reduce, gather };

const char* tp_kind_name(TpKind k) {
  switch (k) {
    case TpKind::copy: return "tp_copy";
    case TpKind::reduce: return "tp_reduce";
    case TpKind::gather: return "tp_gather";
  }
  return "tp";
}

// One primitive for the three collectives: their vjps are each other (copy <->
// reduce) or a slice (gather), all written in ops, so grad-of-grad holds too.
// Not in the primitive registry: a communicator is not an attribute a saved
// graph could rebuild.
class TpPrim final : public Primitive {
 public:
  TpPrim(TpKind kind, std::shared_ptr<Communicator> comm) : kind_(kind), comm_(std::move(comm)) {}
  const char* name() const override { return tp_kind_name(kind_); }
  Attrs attrs() const override {
    return {{"backend", comm_->backend()}, {"rank", int64_t(comm_->rank())}, {"size", int64_t(comm_->size())}};
  }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    EMBER_CHECK(in.size() == 1 && in[0].defined(), name(), "expects one defined tensor");
    EMBER_CHECK(is_floating(in[0].dtype()), name(), "needs a floating-point tensor, got ", dtype_name(in[0].dtype()));
    if (kind_ != TpKind::gather) return {{in[0].shape(), in[0].dtype()}};
    Shape s = in[0].shape();
    s.insert(s.begin(), comm_->size());  // stacked by rank; tp_gather moves the axis
    return {{s, in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { run(in, out); }
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>&) const override {
    switch (kind_) {
      case TpKind::copy: return {tp_reduce(ct[0], comm_)};
      case TpKind::reduce: return {tp_copy(ct[0], comm_)};
      case TpKind::gather: return {select(ct[0], 0, comm_->rank())};
    }
    return {Tensor()};
  }

 private:
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const {
    Tensor src = in[0].detach();
    if (!src.is_contiguous()) src = contiguous(src);
    if (kind_ == TpKind::gather) {
      comm_->all_gather(src, out[0]);
      return;
    }
    copy_bytes(out[0], src);
    if (kind_ == TpKind::reduce) comm_->all_reduce(out[0], CommOp::sum);
  }
  TpKind kind_;
  std::shared_ptr<Communicator> comm_;
};

void check_comm(const char* op, const std::shared_ptr<Communicator>& comm) {
  EMBER_CHECK(comm != nullptr, op, "needs a communicator, got null");
}

// This rank's slice along `axis` of `full`, whose extent there is `segments`
// consecutive blocks, each split evenly across the ranks. A fresh tensor.
Tensor shard(const Tensor& full, int64_t axis, const std::vector<int64_t>& segments, int rank, int size) {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t len : segments) {
    int64_t part = len / size;
    parts.push_back(narrow(full.detach(), axis, start + rank * part, part));
    start += len;
  }
  return clone(parts.size() == 1 ? parts[0] : concat(parts, axis)).detach();
}

// The inverse of shard, from every rank's slice (collective): on every rank
// (root kEveryRank) or on `root` only (undefined elsewhere).
Tensor unshard(const Tensor& local, int64_t axis, const std::vector<int64_t>& segments, Communicator& comm, int root) {
  NoGradGuard no_grad;
  const int size = comm.size();
  Tensor src = contiguous(local.detach());
  Shape stacked_shape = src.shape();
  stacked_shape.insert(stacked_shape.begin(), size);
  const bool receiving = root == kEveryRank || comm.rank() == root;
  Tensor stacked = receiving ? Tensor::empty(stacked_shape, src.dtype(), src.device()) : Tensor();
  if (root == kEveryRank) comm.all_gather(src, stacked);
  else comm.gather(src, stacked, root);
  if (!receiving) return Tensor();
  std::vector<Tensor> parts;
  int64_t lo = 0;
  for (int64_t len : segments) {
    int64_t part = len / size;
    for (int r = 0; r < size; ++r) parts.push_back(narrow(select(stacked, 0, r), axis, lo, part));
    lo += part;
  }
  return clone(concat(parts, axis)).detach();
}

// The initial values a ParallelLinear's constructor draws are overwritten by the
// shard; drawing them from a private generator leaves the global one (dropout,
// later layers: the same stream on every rank) where it was.
Generator* scratch_generator() {
  static Generator gen(0);
  return &gen;
}

std::string dotted(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace

Tensor tp_copy(const Tensor& x, const std::shared_ptr<Communicator>& comm) {
  check_comm("tp_copy", comm);
  if (comm->size() == 1) return x;  // both directions are the identity
  return apply1(make_prim<TpPrim>(TpKind::copy, comm), {x});
}

Tensor tp_reduce(const Tensor& x, const std::shared_ptr<Communicator>& comm) {
  check_comm("tp_reduce", comm);
  if (comm->size() == 1) return x;
  return apply1(make_prim<TpPrim>(TpKind::reduce, comm), {x});
}

Tensor tp_gather(const Tensor& x, const std::shared_ptr<Communicator>& comm) {
  check_comm("tp_gather", comm);
  EMBER_CHECK(x.defined() && x.ndim() >= 1, "tp_gather", "needs a tensor with at least one axis");
  if (comm->size() == 1) return x;
  Tensor stacked = apply1(make_prim<TpPrim>(TpKind::gather, comm), {x});  // [size, ..., n]
  const int64_t nd = stacked.ndim();
  std::vector<int64_t> perm;  // [..., size, n]
  for (int64_t a = 1; a < nd - 1; ++a) perm.push_back(a);
  perm.push_back(0);
  perm.push_back(nd - 1);
  Shape out = x.shape();
  out.back() *= comm->size();
  return reshape(permute(stacked, perm), out);
}

ParallelLinear::ParallelLinear(const nn::Linear& full, int64_t in_local, int64_t out_local,
                               std::shared_ptr<Communicator> comm)
    : nn::Linear(in_local, out_local, full.bias.defined(), scratch_generator()),
      full_in_features(full.in_features),
      full_out_features(full.out_features),
      comm_(std::move(comm)) {}

ColumnParallelLinear::ColumnParallelLinear(const nn::Linear& full, std::shared_ptr<Communicator> comm,
                                           std::vector<int64_t> segments_, bool gather_output_)
    : ParallelLinear(full, full.in_features,
                     comm && comm->size() > 0 && full.out_features % comm->size() == 0
                         ? full.out_features / comm->size()
                         : full.out_features,
                     comm),
      segments(std::move(segments_)),
      gather_output(gather_output_) {
  const char* op = "ColumnParallelLinear";
  check_comm(op, comm_);
  const int size = comm_->size();
  if (segments.empty()) segments = {full.out_features};
  int64_t total = 0;
  for (int64_t len : segments) {
    EMBER_CHECK(len > 0 && len % size == 0, op, "output block of ", len, " features does not split evenly across ",
                size, " ranks");
    total += len;
  }
  EMBER_CHECK(total == full.out_features, op, "output blocks sum to ", total, ", the layer has ", full.out_features,
              " output features");
  EMBER_CHECK(!gather_output || segments.size() == 1, op,
              "gather_output needs one output block (the gathered layout interleaves ranks), got ", segments.size());
  nn::rebind_data(weight, shard(full.weight, 0, segments, comm_->rank(), size));
  if (bias.defined()) nn::rebind_data(bias, shard(full.bias, 0, segments, comm_->rank(), size));
}

Tensor ColumnParallelLinear::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.ndim() >= 1 && x.shape(-1) == in_features, "ColumnParallelLinear",
              "expects input [..., ", in_features, "], got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  Tensor y = linear(tp_copy(x, comm_), weight, bias);
  return gather_output ? tp_gather(y, comm_) : y;
}

Tensor ColumnParallelLinear::gather_full(const Tensor& local, int root) const {
  EMBER_CHECK(local.defined() && local.ndim() >= 1 && local.shape(0) == out_features, "ColumnParallelLinear",
              "gather_full: expects this rank's weight or bias ([", out_features, ", ...]), got ",
              local.defined() ? shape_str(local.shape()) : std::string("an undefined tensor"));
  return unshard(local, 0, segments, *comm_, root);
}

Tensor ColumnParallelLinear::slice_full(const Tensor& full) const {
  EMBER_CHECK(full.defined() && full.ndim() >= 1 && full.shape(0) == full_out_features, "ColumnParallelLinear",
              "slice_full: expects a full-size weight or bias ([", full_out_features, ", ...]), got ",
              full.defined() ? shape_str(full.shape()) : std::string("an undefined tensor"));
  return shard(full, 0, segments, comm_->rank(), comm_->size());
}

std::string ColumnParallelLinear::extra_repr() const {
  return str_cat(Linear::extra_repr(), ", full_out_features=", full_out_features, ", ranks=", comm_->size(),
                 ", blocks=", segments.size(), ", gather_output=", gather_output ? "true" : "false");
}

RowParallelLinear::RowParallelLinear(const nn::Linear& full, std::shared_ptr<Communicator> comm)
    : ParallelLinear(full,
                     comm && comm->size() > 0 && full.in_features % comm->size() == 0
                         ? full.in_features / comm->size()
                         : full.in_features,
                     full.out_features, comm) {
  const char* op = "RowParallelLinear";
  check_comm(op, comm_);
  const int size = comm_->size();
  EMBER_CHECK(full.in_features % size == 0, op, full.in_features, " input features do not split evenly across ",
              size, " ranks");
  nn::rebind_data(weight, shard(full.weight, 1, {full.in_features}, comm_->rank(), size));
  if (bias.defined()) nn::rebind_data(bias, shard(full.bias, 0, {full.out_features}, 0, 1));
}

Tensor RowParallelLinear::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.ndim() >= 1 && x.shape(-1) == in_features, "RowParallelLinear",
              "expects this rank's input [..., ", in_features, "], got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  // The bias joins after the sum, or it would be counted once per rank.
  Tensor y = tp_reduce(linear(x, weight), comm_);
  return bias.defined() ? y + bias : y;
}

Tensor RowParallelLinear::gather_full(const Tensor& local, int root) const {
  const char* op = "RowParallelLinear";
  EMBER_CHECK(local.defined(), op, "gather_full: got an undefined tensor");
  if (local.ndim() == 1) {  // the bias (or its gradient): replicated
    EMBER_CHECK(bias.defined() && local.shape(0) == out_features, op, "gather_full: expects the weight [",
                out_features, ", ", in_features, "] or bias [", out_features, "], got ", shape_str(local.shape()));
    if (root != kEveryRank && comm_->rank() != root) return Tensor();
    NoGradGuard no_grad;
    return clone(local.detach()).detach();
  }
  EMBER_CHECK(local.ndim() == 2 && local.shape(0) == out_features && local.shape(1) == in_features, op,
              "gather_full: expects the weight [", out_features, ", ", in_features, "], got ",
              shape_str(local.shape()));
  return unshard(local, 1, {full_in_features}, *comm_, root);
}

Tensor RowParallelLinear::slice_full(const Tensor& full) const {
  const char* op = "RowParallelLinear";
  EMBER_CHECK(full.defined(), op, "slice_full: got an undefined tensor");
  if (full.ndim() == 1) {  // the bias: replicated
    EMBER_CHECK(bias.defined() && full.shape(0) == out_features, op, "slice_full: expects the full weight [",
                out_features, ", ", full_in_features, "] or bias [", out_features, "], got ", shape_str(full.shape()));
    return shard(full, 0, {out_features}, 0, 1);
  }
  EMBER_CHECK(full.ndim() == 2 && full.shape(0) == out_features && full.shape(1) == full_in_features, op,
              "slice_full: expects the full weight [", out_features, ", ", full_in_features, "], got ",
              shape_str(full.shape()));
  return shard(full, 1, {full_in_features}, comm_->rank(), comm_->size());
}

std::string RowParallelLinear::extra_repr() const {
  return str_cat(Linear::extra_repr(), ", full_in_features=", full_in_features, ", ranks=", comm_->size());
}

namespace {
std::map<std::string, const ParallelLinear*> parallel_owners(const nn::Module& model) {
  std::map<std::string, const ParallelLinear*> owner;
  for (const auto& [name, m] : model.named_modules())
    if (const auto* p = dynamic_cast<const ParallelLinear*>(m)) {
      owner[dotted(name, "weight")] = p;
      if (p->bias.defined()) owner[dotted(name, "bias")] = p;
    }
  return owner;
}
}  // namespace

nn::NamedTensors gather_full_parameters(const nn::Module& model, bool gradients) {
  auto owner = parallel_owners(model);
  nn::NamedTensors out;
  NoGradGuard no_grad;
  for (const auto& [name, p] : model.named_parameters()) {
    Tensor t = p;
    if (gradients) t = p.grad().defined() ? p.grad() : zeros_like(p);
    auto it = owner.find(name);
    out.emplace_back(name, it == owner.end() ? clone(t.detach()).detach() : it->second->gather_full(t));
  }
  return out;
}

bool receives_full(const nn::Module& model, int root) {
  if (root == kEveryRank) return true;
  for (const auto& [name, m] : model.named_modules())
    if (const auto* p = dynamic_cast<const ParallelLinear*>(m)) return p->comm()->rank() == root;
  return true;
}

TensorMap gather_full_state_dict(const nn::Module& model, int root) {
  TensorMap sd = model.state_dict();
  // named_modules order: the same on every rank, so the gathers match up.
  for (const auto& [name, m] : model.named_modules())
    if (const auto* p = dynamic_cast<const ParallelLinear*>(m)) {
      sd[dotted(name, "weight")] = p->gather_full(p->weight, root);
      if (p->bias.defined()) sd[dotted(name, "bias")] = p->gather_full(p->bias, root);
    }
  return receives_full(model, root) ? sd : TensorMap{};
}

}  // namespace ember::dist
