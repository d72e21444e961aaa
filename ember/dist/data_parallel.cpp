// Data parallel: parameter broadcast with a cross-rank shape check, gradient
// buckets filled by post-accumulate-grad hooks and all-reduced (averaged) while
// backward continues.
#include "ember/dist/data_parallel.h"

#include <functional>

#include "ember/autograd/engine.h"
#include "ember/core/error.h"
#include "ember/nn/copy.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/shape_ops.h"

namespace ember::dist {

namespace {

// A stable fingerprint of a shape (same on every rank and run).
int64_t shape_hash(const Shape& s) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t d : s) h = (h ^ uint64_t(d)) * 1099511628211ull;
  return int64_t(h >> 1);
}

DType bucket_dtype(DType param) { return param == DType::bf16 || param == DType::f16 ? DType::f32 : param; }

// `flat[offset : offset + numel(shape)]` viewed with `shape`.
Tensor slot(const Tensor& flat, int64_t offset, const Shape& shape) {
  return reshape(narrow(flat, 0, offset, numel(shape)), shape);
}

}  // namespace

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, const char* what) {
  int n = comm.size();
  // 1. Same number of tensors everywhere, then the same dtype and shape each.
  Tensor count = tensor_i64({int64_t(tensors.size())}, {1});
  Tensor counts = zeros({n}, DType::i64);
  comm.all_gather(count, counts);
  std::vector<int64_t> c = counts.to_vector<int64_t>();
  for (int r = 0; r < n; ++r)
    if (c[size_t(r)] != c[0])
      fail("DataParallel", "ranks disagree on the model: rank 0 has ", c[0], " ", what, "s, rank ", r, " has ",
           c[size_t(r)], " (is every rank started with the same config?)");
  std::vector<int64_t> sig;
  for (const Tensor& t : tensors) {
    sig.push_back(int64_t(t.dtype()));
    sig.push_back(t.numel());
    sig.push_back(shape_hash(t.shape()));
  }
  if (!sig.empty()) {
    Tensor mine = tensor_i64(sig, {int64_t(sig.size())});
    Tensor all = zeros({n * int64_t(sig.size())}, DType::i64);
    comm.all_gather(mine, all);
    std::vector<int64_t> a = all.to_vector<int64_t>();
    for (int r = 1; r < n; ++r)
      for (size_t i = 0; i < tensors.size(); ++i) {
        const int64_t* o = a.data() + size_t(r) * sig.size() + 3 * i;
        const int64_t* z = a.data() + 3 * i;
        if (o[0] != z[0] || o[1] != z[1] || o[2] != z[2])
          fail("DataParallel", "ranks disagree on ", what, " ", i, ": rank 0 has ", dtype_name(DType(z[0])), " with ",
               z[1], " elements, rank ", r, " has ", dtype_name(DType(o[0])), " with ", o[1], " elements",
               o[1] == z[1] && o[0] == z[0] ? " in a different shape" : "",
               " (is every rank started with the same config?)");
      }
  }
  // 2. Rank 0's values everywhere.
  std::vector<std::shared_ptr<Work>> works;
  for (const Tensor& t : tensors) works.push_back(comm.broadcast_async(t, 0));
  for (auto& w : works) w->wait();
}

DataParallel::DataParallel(std::shared_ptr<nn::Module> module, std::shared_ptr<Communicator> comm,
                           DataParallelOptions options)
    : module_(std::move(module)), comm_(std::move(comm)), options_(options) {
  if (!module_) fail("DataParallel", "no module");
  if (!comm_) fail("DataParallel", "no communicator");
  if (options_.bucket_bytes <= 0) fail("DataParallel", "bucket_bytes must be positive, got ", options_.bucket_bytes);
  for (const Tensor& p : module_->parameters())
    if (p.requires_grad()) params_.push_back(p);
  broadcast_tensors(*comm_, params_, "parameter");
  if (options_.broadcast_buffers) {
    broadcast_tensors(*comm_, module_->buffers(), "buffer");
  }

  // Buckets in reverse parameter order: backward produces the last layers'
  // gradients first, so the first bucket fills first.
  bucket_of_.assign(params_.size(), 0);
  slot_of_.assign(params_.size(), 0);
  copied_.assign(params_.size(), false);
  std::vector<std::vector<size_t>> groups;
  std::vector<DType> group_dtype;
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    DType dt = bucket_dtype(params_[k].dtype());
    int64_t b = params_[k].numel() * int64_t(dtype_size(dt));
    if (groups.empty() || group_dtype.back() != dt || bytes + b > options_.bucket_bytes) {
      if (groups.empty() || !groups.back().empty()) {
        groups.emplace_back();
        group_dtype.push_back(dt);
      }
      group_dtype.back() = dt;
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += b;
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    Bucket bucket;
    int64_t total = 0;
    for (size_t k : groups[g]) {
      bucket_of_[k] = g;
      slot_of_[k] = bucket.params.size();
      bucket.params.push_back(k);
      bucket.offsets.push_back(total);
      total += params_[k].numel();
    }
    bucket.buffer = zeros({total}, group_dtype[g]);
    buckets_.push_back(std::move(bucket));
  }
  bucket_params_ = groups;
  for (size_t k = 0; k < params_.size(); ++k)
    hook_ids_.push_back(register_post_accumulate_grad_hook(params_[k], [this, k](const Tensor&) { on_grad_ready(k); }));
}

DataParallel::~DataParallel() {
  for (size_t k = 0; k < params_.size(); ++k) remove_post_accumulate_grad_hook(params_[k], hook_ids_[k]);
  // MPI must not keep writing into buffers that are about to be freed.
  for (Bucket& b : buckets_) {
    try {
      if (b.work) b.work->wait();
    } catch (...) {
    }
  }
}

void DataParallel::on_grad_ready(size_t k) {
  Bucket& b = buckets_[bucket_of_[k]];
  size_t s = slot_of_[k];
  if (b.work)
    fail("DataParallel", "the gradient of parameter ", k, " changed after its bucket was sent (several backward "
         "passes per step? call finish_gradient_sync() between them)");
  const Tensor& p = params_[k];
  nn::copy_(slot(b.buffer, b.offsets[s], p.shape()), p.grad());
  if (!copied_[k]) {
    copied_[k] = true;
    ++b.ready;
  }
  // Let MPI progress the reductions already in flight (it advances
  // non-blocking collectives only inside MPI calls).
  for (size_t i = 0; i < next_launch_; ++i) buckets_[i].work->test();
  launch_ready_buckets(false);
}

void DataParallel::launch_ready_buckets(bool force) {
  while (next_launch_ < buckets_.size()) {
    Bucket& b = buckets_[next_launch_];
    if (b.ready < b.params.size()) {
      if (!force) return;
      // Parameters without a gradient this step contribute zeros, so every rank
      // issues the same collectives.
      for (size_t s = 0; s < b.params.size(); ++s)
        if (!copied_[b.params[s]])
          nn::copy_(slot(b.buffer, b.offsets[s], params_[b.params[s]].shape()), scalar(0, b.buffer.dtype()));
    } else if (!force) {
      ++overlapped_;
    }
    if (next_launch_ == 0) first_launch_ = std::chrono::steady_clock::now();
    b.work = comm_->all_reduce_async(b.buffer, CommOp::avg);
    ++next_launch_;
  }
  // Every bucket is on its way: this was the last gradient of the backward pass.
  if (!force) complete();
}

void DataParallel::complete() {
  using clock = std::chrono::steady_clock;
  const auto backward_done = clock::now();
  for (Bucket& b : buckets_) b.work->wait();
  last_timing_.overlap_ms = std::chrono::duration<double, std::milli>(backward_done - first_launch_).count();
  last_timing_.exposed_ms = std::chrono::duration<double, std::milli>(clock::now() - backward_done).count();
  for (Bucket& b : buckets_) {
    b.work.reset();
    for (size_t s = 0; s < b.params.size(); ++s) {
      const Tensor& p = params_[b.params[s]];
      Tensor avg = slot(b.buffer, b.offsets[s], p.shape());
      Tensor g = p.grad();
      if (g.defined() && g.is_contiguous() && g.dtype() == p.dtype())
        nn::copy_(g, avg);  // .grad is the parameter's own, dense tensor (see autograd/engine.cpp)
      else
        p.set_grad(clone(cast(avg, p.dtype())));
    }
    b.ready = 0;
  }
  copied_.assign(params_.size(), false);
  next_launch_ = 0;
  synced_ = true;
  last_overlapped_ = overlapped_;
  overlapped_ = 0;
}

int64_t DataParallel::gradient_bytes() const {
  int64_t bytes = 0;
  for (const Bucket& b : buckets_) bytes += int64_t(b.buffer.nbytes());
  return bytes;
}

void DataParallel::finish_gradient_sync() {
  // Each step every rank starts every bucket exactly once: here, unless its
  // backward already did (then this only closes the step).
  if (!synced_) {
    launch_ready_buckets(true);
    complete();
  }
  synced_ = false;
}

}  // namespace ember::dist
