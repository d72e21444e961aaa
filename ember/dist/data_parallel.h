// Data parallel training (PyTorch's DistributedDataParallel): every rank holds
// the whole model, runs forward and backward on its own part of the batch, and
// the gradients are averaged across ranks so every rank takes the same step.
//
// At construction the parameters (and persistent buffers) are broadcast from
// rank 0, after checking that every rank has the same parameter shapes (a
// mismatched config is an error at start-up, not a hang or garbage later).
//
// Gradients are grouped into buckets of about bucket_bytes in reverse parameter
// order (the order backward produces them). A post-accumulate-grad hook
// (autograd/engine.h) on each parameter copies its finished gradient into its
// bucket; when a bucket is full its all-reduce is started without blocking, so
// communication overlaps with the rest of backward. Buckets are started in the
// same order on every rank (as MPI requires). When the last bucket is started
// the hook waits for all of them and writes the averaged gradients back into
// each parameter's .grad, so after loss.backward() the gradients are already in
// sync. Call finish_gradient_sync() once per step on every rank, before
// optimizer.step(): it is a no-op when backward already finished the sync, and
// otherwise reduces what is left, counting parameters that got no gradient on
// this rank (or a rank that ran no backward at all) as zeros, so every rank
// issues the same collectives. One backward per step: gradient accumulation
// over several backward passes (PyTorch's no_sync) is not supported yet.
//
// Each rank must read a different part of the data (rank(), size() tell it
// which); that is the data loader's job.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/nn/module.h"

namespace ember::dist {

struct DataParallelOptions {
  int64_t bucket_bytes = 25 << 20;
  bool broadcast_buffers = true;  // persistent buffers follow rank 0 at construction too
};

class DataParallel {
 public:
  DataParallel(std::shared_ptr<nn::Module> module, std::shared_ptr<Communicator> comm,
               DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  nn::Module& module() { return *module_; }
  Communicator& comm() { return *comm_; }
  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }

  // Completes this step's gradient averaging (see above) and writes the
  // averaged gradients into the parameters' .grad. Call once per step on every rank.
  void finish_gradient_sync();

  // Buckets in the order they are reduced (parameter indices into module().parameters()).
  const std::vector<std::vector<size_t>>& bucket_params() const { return bucket_params_; }
  // Statistics of the last synchronised backward: buckets started inside
  // backward (overlapped) versus at finish_gradient_sync.
  int last_buckets_overlapped() const { return last_overlapped_; }

  // Timing of the last step's gradient averaging (wall clock on this rank):
  //   overlap_ms  from the first bucket's launch to the end of backward (the
  //               last gradient ready), i.e. while the all-reduce could run
  //               beside backward's computation;
  //   exposed_ms  the wait for the all-reduces after that, which backward did
  //               not hide.
  // overlap_ms / (overlap_ms + exposed_ms) is the fraction of the gradient
  // averaging's wall time that overlaps backward. (MPI advances non-blocking
  // collectives only inside MPI calls: the hooks poll every bucket in flight
  // as each gradient arrives, so overlap needs several buckets.)
  struct SyncTiming {
    double overlap_ms = 0, exposed_ms = 0;
  };
  const SyncTiming& last_sync_timing() const { return last_timing_; }
  // The bytes all-reduced per step (all buckets).
  int64_t gradient_bytes() const;

 private:
  struct Bucket {
    Tensor buffer;                  // flat, one dtype (float32 for 16-bit parameters)
    std::vector<size_t> params;     // indices into params_
    std::vector<int64_t> offsets;   // element offset of each parameter in buffer
    size_t ready = 0;               // gradients copied in this step
    std::shared_ptr<Work> work;     // the all-reduce in flight
  };

  void on_grad_ready(size_t param_index);
  void launch_ready_buckets(bool force);
  void complete();

  std::shared_ptr<nn::Module> module_;
  std::shared_ptr<Communicator> comm_;
  DataParallelOptions options_;
  std::vector<Tensor> params_;
  std::vector<int64_t> hook_ids_;
  std::vector<Bucket> buckets_;
  std::vector<std::vector<size_t>> bucket_params_;
  std::vector<size_t> bucket_of_, slot_of_;  // per parameter
  std::vector<bool> copied_;                 // per parameter, this step
  size_t next_launch_ = 0;                   // buckets are started in order
  bool synced_ = false;                      // this step's buckets were all reduced already
  int overlapped_ = 0, last_overlapped_ = 0;
  std::chrono::steady_clock::time_point first_launch_;
  SyncTiming last_timing_;
};

// Checks that every rank holds tensors of the same shapes and dtypes (names
// the first mismatch) and copies rank 0's values into every rank's tensors.
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, const char* what);

}  // namespace ember::dist
