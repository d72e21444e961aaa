// The NCCL backend of Communicator (CUDA tensors), compiled when CMake's
// EMBER_WITH_NCCL is on (NCCL and the CUDA toolkit found). Ranks are set up
// through another communicator (normally MPI), which carries the ncclUniqueId
// from rank 0; NCCL then moves the data (NVLink, InfiniBand, sockets).
//
// Each operation is enqueued on the communicator's own CUDA stream after the
// work already queued on the legacy default stream, and a CUDA event recorded
// behind it is polled against the timeout; on timeout or an asynchronous NCCL
// error the NCCL communicator is aborted (ncclCommAbort), so no rank spins
// forever inside a kernel waiting for a dead peer.
//
// NCCL has no gather: it is one group of point-to-point transfers to the root.
// split() is ncclCommSplit (NCCL 2.18 and later).
#include "ember/dist/communicator.h"

#include "ember/core/error.h"

#ifdef EMBER_WITH_NCCL

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "ember/ops/creation.h"

namespace ember::dist {
namespace {

void check_cuda(cudaError_t rc, const char* op) {
  if (rc != cudaSuccess) fail(op, "CUDA error: ", cudaGetErrorString(rc));
}
void check_nccl(ncclResult_t rc, const char* op) {
  if (rc != ncclSuccess) fail(op, "NCCL error: ", ncclGetErrorString(rc));
}

ncclDataType_t nccl_type(DType dt) {
  switch (dt) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::i64: return ncclInt64;
    case DType::i32: return ncclInt32;
    default: fail("nccl", "no NCCL datatype for ", dtype_name(dt));
  }
}

ncclRedOp_t nccl_op(CommOp op) {
  switch (op) {
    case CommOp::sum: return ncclSum;
    case CommOp::avg: return ncclAvg;
    case CommOp::max: return ncclMax;
  }
  return ncclSum;
}

class NcclCommunicator;

class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator* c, const char* op, cudaEvent_t ev, std::vector<Tensor> keep)
      : comm_(c), op_(op), event_(ev), keep_(std::move(keep)) {}
  ~NcclWork() override { cudaEventDestroy(event_); }
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator* comm_;
  const char* op_;
  cudaEvent_t event_;
  std::vector<Tensor> keep_;
  bool done_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const std::shared_ptr<Communicator>& bootstrap, int device, CommOptions o)
      : Communicator(o), rank_(bootstrap->rank()), size_(bootstrap->size()), device_(device) {
    static_assert(sizeof(ncclUniqueId) % sizeof(int64_t) == 0, "ncclUniqueId size");
    ncclUniqueId id;
    Tensor id_buf = zeros({int64_t(sizeof(id) / sizeof(int64_t))}, DType::i64);
    if (rank_ == 0) {
      check_nccl(ncclGetUniqueId(&id), "nccl");
      std::memcpy(id_buf.raw_data(), &id, sizeof(id));
    }
    bootstrap->broadcast(id_buf, 0);
    std::memcpy(&id, id_buf.raw_data(), sizeof(id));
    check_cuda(cudaSetDevice(device_), "nccl");
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "nccl");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "nccl");
  }
  // Takes ownership of `comm` (made by ncclCommSplit).
  NcclCommunicator(ncclComm_t comm, int device, CommOptions o) : Communicator(o), device_(device), comm_(comm) {
    check_nccl(ncclCommUserRank(comm_, &rank_), "nccl");
    check_nccl(ncclCommCount(comm_, &size_), "nccl");
    check_cuda(cudaSetDevice(device_), "nccl");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "nccl");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  std::shared_ptr<Work> all_reduce_async(const Tensor& t, CommOp op) override {
    check("all_reduce", t, "tensor");
    if (op == CommOp::avg && !is_floating(t.dtype()))
      fail("all_reduce", "avg needs a floating dtype, got ", dtype_name(t.dtype()));
    enter();
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), nccl_op(op), comm_,
                             stream_),
               "all_reduce");
    return leave("all_reduce", {t});
  }
  std::shared_ptr<Work> reduce_scatter_async(const Tensor& input, const Tensor& output, CommOp op) override {
    check("reduce_scatter", input, "input");
    check("reduce_scatter", output, "output");
    detail::check_same_dtype("reduce_scatter", input, output);
    detail::check_chunks("reduce_scatter", output, input, size_, "output", "input");
    enter();
    check_nccl(ncclReduceScatter(input.raw_data(), output.raw_data(), size_t(output.numel()), nccl_type(input.dtype()),
                                 nccl_op(op), comm_, stream_),
               "reduce_scatter");
    return leave("reduce_scatter", {input, output});
  }
  std::shared_ptr<Work> all_gather_async(const Tensor& input, const Tensor& output) override {
    check("all_gather", input, "input");
    check("all_gather", output, "output");
    detail::check_same_dtype("all_gather", input, output);
    detail::check_chunks("all_gather", input, output, size_, "input", "output");
    enter();
    check_nccl(ncclAllGather(input.raw_data(), output.raw_data(), size_t(input.numel()), nccl_type(input.dtype()),
                             comm_, stream_),
               "all_gather");
    return leave("all_gather", {input, output});
  }
  std::shared_ptr<Work> gather_async(const Tensor& input, const Tensor& output, int root) override {
    detail::check_gather("gather", input, output, root, rank_, size_);
    check("gather", input, "input");
    const bool receiving = rank_ == root;
    if (receiving) check("gather", output, "output");
    enter();
    const size_t n = size_t(input.numel()), bytes = input.nbytes();
    const ncclDataType_t type = nccl_type(input.dtype());
    check_nccl(ncclGroupStart(), "gather");
    if (receiving) {
      char* out = static_cast<char*>(output.raw_data());
      for (int r = 0; r < size_; ++r)
        if (r == root)
          check_cuda(cudaMemcpyAsync(out + size_t(r) * bytes, input.raw_data(), bytes, cudaMemcpyDeviceToDevice, stream_),
                     "gather");
        else
          check_nccl(ncclRecv(out + size_t(r) * bytes, n, type, r, comm_, stream_), "gather");
    } else {
      check_nccl(ncclSend(input.raw_data(), n, type, root, comm_, stream_), "gather");
    }
    check_nccl(ncclGroupEnd(), "gather");
    return leave("gather", receiving ? std::vector<Tensor>{input, output} : std::vector<Tensor>{input});
  }
  std::shared_ptr<Work> broadcast_async(const Tensor& t, int root) override {
    check("broadcast", t, "tensor");
    detail::check_peer("broadcast", root, size_);
    enter();
    check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), root, comm_, stream_),
               "broadcast");
    return leave("broadcast", {t});
  }
  std::shared_ptr<Work> barrier_async() override {
    // NCCL has no barrier: an all-reduce of one float is one.
    enter();
    if (!scratch_) check_cuda(cudaMalloc(&scratch_, sizeof(float)), "barrier");
    check_nccl(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_), "barrier");
    return leave("barrier", {});
  }
  std::shared_ptr<Work> send_async(const Tensor& t, int dst, int tag) override {
    check("send", t, "tensor");
    detail::check_peer("send", dst, size_);
    if (tag != 0) fail("send", "NCCL has no message tags; use tag 0 (got ", tag, ")");
    enter();
    check_nccl(ncclSend(t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), dst, comm_, stream_), "send");
    return leave("send", {t});
  }
  std::shared_ptr<Work> recv_async(const Tensor& t, int src, int tag) override {
    check("recv", t, "tensor");
    detail::check_peer("recv", src, size_);
    if (tag != 0) fail("recv", "NCCL has no message tags; use tag 0 (got ", tag, ")");
    enter();
    check_nccl(ncclRecv(t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), src, comm_, stream_), "recv");
    return leave("recv", {t});
  }

  std::shared_ptr<Communicator> split(int colour, int key) override {
    detail::check_colour(colour);
    if (!comm_) fail("split", "the NCCL communicator was aborted after an earlier failure");
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0)
    check_cuda(cudaSetDevice(device_), "split");
    ncclComm_t sub = nullptr;
    check_nccl(ncclCommSplit(comm_, colour, key, &sub, nullptr), "split");
    return std::make_shared<NcclCommunicator>(sub, device_, options_);
#else
    (void)key;
    fail("split", "needs NCCL 2.18 or later (ncclCommSplit); split the MPI communicator and make a NCCL one over it");
#endif
  }

  // Polled by NcclWork: an asynchronous NCCL failure (a peer died) is an error.
  void check_async(const char* op) {
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm_, &async), op);
    if (async != ncclSuccess) {
      abort_comm();
      fail(op, "rank ", rank_, " of ", size_, ": NCCL failed asynchronously: ", ncclGetErrorString(async));
    }
  }
  [[noreturn]] void timed_out(const char* op, double waited) {
    abort_comm();
    std::string msg = str_cat("[", op, "] rank ", rank_, " of ", size_, ": timed out after ", waited,
                              " s waiting for the other ranks; a rank failed, exited or did not call it. "
                              "EMBER_DIST_TIMEOUT_S sets the limit");
    if (options_.abort_on_timeout) {
      std::fprintf(stderr, "ember: error: %s; aborting\n", msg.c_str());
      std::fflush(stderr);
      std::abort();
    }
    throw Error(msg);
  }

 private:
  void check(const char* op, const Tensor& t, const char* what) {
    detail::check_tensor(op, t, what);
    if (!t.device().is_cuda() || t.device().index != device_)
      fail(op, what, " is on ", t.device().str(), "; this NCCL communicator works on cuda:", device_);
    if (!comm_) fail(op, "the NCCL communicator was aborted after an earlier failure");
  }
  // Orders the collective after work already queued on the default stream.
  void enter() {
    check_cuda(cudaSetDevice(device_), "nccl");
    cudaEvent_t ready;
    check_cuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "nccl");
    check_cuda(cudaEventRecord(ready, cudaStreamLegacy), "nccl");
    check_cuda(cudaStreamWaitEvent(stream_, ready, 0), "nccl");
    cudaEventDestroy(ready);
  }
  std::shared_ptr<Work> leave(const char* op, std::vector<Tensor> keep) {
    cudaEvent_t done;
    check_cuda(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), op);
    check_cuda(cudaEventRecord(done, stream_), op);
    return std::make_shared<NcclWork>(this, op, done, std::move(keep));
  }
  void abort_comm() {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  int rank_ = 0, size_ = 1, device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
};

bool NcclWork::test() {
  if (done_) return true;
  cudaError_t q = cudaEventQuery(event_);
  if (q == cudaSuccess) {
    done_ = true;
    keep_.clear();
    return true;
  }
  if (q != cudaErrorNotReady) check_cuda(q, op_);
  comm_->check_async(op_);
  return false;
}

void NcclWork::wait() {
  auto start = std::chrono::steady_clock::now();
  while (!test()) {
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > comm_->options().timeout_s) comm_->timed_out(op_, waited);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(const std::shared_ptr<Communicator>& bootstrap, int device,
                                                     CommOptions options) {
  if (!bootstrap) fail("nccl", "a bootstrap communicator (MPI) is needed to exchange the NCCL id");
  return std::make_shared<NcclCommunicator>(bootstrap, device, options);
}

}  // namespace ember::dist

#else  // !EMBER_WITH_NCCL

namespace ember::dist {
std::shared_ptr<Communicator> make_nccl_communicator(const std::shared_ptr<Communicator>&, int, CommOptions) {
  fail("nccl", "ember was built without NCCL (configure with -DEMBER_WITH_NCCL=ON on a machine with CUDA and NCCL)");
}
}  // namespace ember::dist

#endif
