// The MPI backend of Communicator (CPU tensors): every operation is an MPI
// non-blocking call (MPI_Iallreduce, MPI_Ireduce_scatter_block, MPI_Iallgather,
// MPI_Igather, MPI_Ibcast, MPI_Ibarrier, MPI_Isend/Irecv) whose request is
// polled with MPI_Test against the timeout, so no rank can wait forever on a
// dead peer. split() is MPI_Comm_split (blocking; a timed barrier first).
//
// MPI is initialised with MPI_THREAD_FUNNELED: only the thread that created the
// communicator calls MPI (the training loop and the backward hooks run there;
// OpenMP worker threads never do). Errors are returned, not fatal
// (MPI_ERRORS_RETURN), and turned into ember::Error naming the op.
//
// Only MPI's C API is used: its deprecated C++ bindings are left out, whose
// header casts between function types (-Wcast-function-type).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "ember/core/error.h"
#include "ember/dist/communicator.h"
#include "ember/nn/copy.h"
#include "ember/ops/elementwise.h"

namespace ember::dist {
namespace {

// Initialises MPI once per process and finalises it at exit (only if ember
// initialised it: an application that called MPI_Init itself finalises it too).
struct MpiRuntime {
  bool initialised_here = false;
  MpiRuntime() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited) return;
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("dist", "MPI_Init_thread failed");
    initialised_here = true;
    if (provided < MPI_THREAD_FUNNELED)
      fail("dist", "the MPI library provides thread level ", provided, ", ember needs MPI_THREAD_FUNNELED");
  }
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (initialised_here && !finalized) MPI_Finalize();
  }
};

void ensure_mpi() { static MpiRuntime runtime; }

bool mpi_finalized() {
  int f = 0;
  MPI_Finalized(&f);
  return f != 0;
}

void check_mpi(int rc, const std::string& op) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail(op, "MPI error: ", std::string(text, size_t(len)));
}

MPI_Datatype mpi_type(DType dt) {
  switch (dt) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    case DType::i32: return MPI_INT32_T;
    default: fail("dist", "no MPI datatype for ", dtype_name(dt));
  }
}

// For operations that move data without arithmetic: 16-bit data travels as its raw bits.
MPI_Datatype raw_type(DType dt) { return dt == DType::bf16 ? MPI_UINT16_T : mpi_type(dt); }

MPI_Op mpi_op(CommOp op) { return op == CommOp::max ? MPI_MAX : MPI_SUM; }

// Divides a floating tensor in place (the second half of avg = sum / size).
void divide_(const Tensor& t, double d) {
  if (t.dtype() == DType::f32) {
    float* p = t.data<float>();
    float s = float(1.0 / d);
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] *= s;
  } else if (t.dtype() == DType::f64) {
    double* p = t.data<double>();
    for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] /= d;
  } else {
    fail("all_reduce", "avg needs a floating dtype, got ", dtype_name(t.dtype()));
  }
}

class MpiCommunicator;

class MpiWork : public Work, public std::enable_shared_from_this<MpiWork> {
 public:
  MpiWork(MpiCommunicator* comm, std::string op, std::string what, std::vector<Tensor> keep,
          std::function<void(const MPI_Status&)> finish)
      : comm_(comm), op_(std::move(op)), what_(std::move(what)), keep_(std::move(keep)), finish_(std::move(finish)) {}
  MPI_Request request = MPI_REQUEST_NULL;

  bool test() override {
    if (done_) return true;
    int flag = 0;
    MPI_Status status;
    check_mpi(MPI_Test(&request, &flag, &status), op_);
    if (!flag) return false;
    done_ = true;
    keep_.clear();
    if (finish_) finish_(status);
    return true;
  }
  void wait() override;
  const std::string& op() const { return op_; }
  const std::string& what() const { return what_; }

 private:
  MpiCommunicator* comm_;
  std::string op_, what_;
  std::vector<Tensor> keep_;  // buffers MPI reads or writes until completion
  std::function<void(const MPI_Status&)> finish_;
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(CommOptions o) : MpiCommunicator(o, dup_world()) {}
  // Takes ownership of `comm` (freed with the communicator).
  MpiCommunicator(CommOptions o, MPI_Comm comm) : Communicator(o), comm_(comm) {
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    if (!mpi_finalized() && abandoned_.empty()) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  std::shared_ptr<Work> all_reduce_async(const Tensor& t, CommOp op) override {
    const char* name = "all_reduce";
    check_cpu(name, t, "tensor");
    if (op == CommOp::avg && !is_floating(t.dtype()))
      fail(name, "avg needs a floating dtype, got ", dtype_name(t.dtype()));
    begin(name, t.dtype(), t.numel(), 0);
    Tensor buf = wire(t);
    auto finish = [this, t, buf, op](const MPI_Status&) {
      if (op == CommOp::avg) divide_(buf, size_);
      if (!buf.same(t)) nn::copy_(t, buf);
    };
    auto w = make(name, describe(t), {t, buf}, finish);
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, buf.raw_data(), int_count(name, buf.numel()), mpi_type(buf.dtype()),
                             mpi_op(op), comm_, &w->request),
              name);
    return w;
  }

  std::shared_ptr<Work> reduce_scatter_async(const Tensor& input, const Tensor& output, CommOp op) override {
    const char* name = "reduce_scatter";
    check_cpu(name, input, "input");
    check_cpu(name, output, "output");
    detail::check_same_dtype(name, input, output);
    detail::check_chunks(name, output, input, size_, "output", "input");
    if (op == CommOp::avg && !is_floating(input.dtype()))
      fail(name, "avg needs a floating dtype, got ", dtype_name(input.dtype()));
    begin(name, input.dtype(), input.numel(), 0);
    Tensor in = wire(input), out = wire(output);
    auto finish = [this, output, out, op](const MPI_Status&) {
      if (op == CommOp::avg) divide_(out, size_);
      if (!out.same(output)) nn::copy_(output, out);
    };
    auto w = make(name, describe(input), {input, output, in, out}, finish);
    check_mpi(MPI_Ireduce_scatter_block(in.raw_data(), out.raw_data(), int_count(name, out.numel()),
                                        mpi_type(in.dtype()), mpi_op(op), comm_, &w->request),
              name);
    return w;
  }

  std::shared_ptr<Work> all_gather_async(const Tensor& input, const Tensor& output) override {
    const char* name = "all_gather";
    check_cpu(name, input, "input");
    check_cpu(name, output, "output");
    detail::check_same_dtype(name, input, output);
    detail::check_chunks(name, input, output, size_, "input", "output");
    begin(name, input.dtype(), input.numel(), 0);
    MPI_Datatype type = raw_type(input.dtype());
    auto w = make(name, describe(input), {input, output}, nullptr);
    check_mpi(MPI_Iallgather(input.raw_data(), int_count(name, input.numel()), type, output.raw_data(),
                             int_count(name, input.numel()), type, comm_, &w->request),
              name);
    return w;
  }

  std::shared_ptr<Work> gather_async(const Tensor& input, const Tensor& output, int root) override {
    const char* name = "gather";
    detail::check_gather(name, input, output, root, rank_, size_);
    const bool receiving = rank_ == root;
    check_cpu(name, input, "input");
    if (receiving) check_cpu(name, output, "output");
    begin(name, input.dtype(), input.numel(), root);
    MPI_Datatype type = raw_type(input.dtype());
    const int n = int_count(name, input.numel());
    auto w = make(name, describe(input), receiving ? std::vector<Tensor>{input, output} : std::vector<Tensor>{input},
                  nullptr);
    check_mpi(MPI_Igather(input.raw_data(), n, type, receiving ? output.raw_data() : nullptr, n, type, root, comm_,
                          &w->request),
              name);
    return w;
  }

  std::shared_ptr<Work> broadcast_async(const Tensor& t, int root) override {
    const char* name = "broadcast";
    check_cpu(name, t, "tensor");
    detail::check_peer(name, root, size_);
    begin(name, t.dtype(), t.numel(), root);
    MPI_Datatype type = raw_type(t.dtype());
    auto w = make(name, describe(t), {t}, nullptr);
    check_mpi(MPI_Ibcast(t.raw_data(), int_count(name, t.numel()), type, root, comm_, &w->request), name);
    return w;
  }

  std::shared_ptr<Work> barrier_async() override {
    drain();
    auto w = make("barrier", "", {}, nullptr);
    check_mpi(MPI_Ibarrier(comm_, &w->request), "barrier");
    return w;
  }

  std::shared_ptr<Work> send_async(const Tensor& t, int dst, int tag) override {
    check_cpu("send", t, "tensor");
    detail::check_peer("send", dst, size_);
    drain();
    MPI_Datatype type = raw_type(t.dtype());
    auto w = make("send", str_cat(describe(t), " to rank ", dst), {t}, nullptr);
    check_mpi(MPI_Isend(t.raw_data(), int_count("send", t.numel()), type, dst, tag, comm_, &w->request), "send");
    return w;
  }

  std::shared_ptr<Work> recv_async(const Tensor& t, int src, int tag) override {
    check_cpu("recv", t, "tensor");
    detail::check_peer("recv", src, size_);
    drain();
    MPI_Datatype type = raw_type(t.dtype());
    int64_t expected = t.numel();
    auto finish = [type, expected, src, shape = t.shape()](const MPI_Status& st) {
      int count = 0;
      MPI_Get_count(&st, type, &count);
      if (count != expected)
        fail("recv", "rank ", src, " sent ", count, " elements, the receive tensor of shape ", shape_str(shape),
             " holds ", expected);
    };
    auto w = make("recv", str_cat(describe(t), " from rank ", src), {t}, finish);
    check_mpi(MPI_Irecv(t.raw_data(), int_count("recv", t.numel()), type, src, tag, comm_, &w->request), "recv");
    return w;
  }

  std::shared_ptr<Communicator> split(int colour, int key) override {
    detail::check_colour(colour);
    // MPI_Comm_split blocks without a timeout; a timed barrier first makes a
    // rank that never calls split an error on the others, not a hang.
    barrier();
    MPI_Comm sub = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split(comm_, colour, key, &sub), "split");
    return std::make_shared<MpiCommunicator>(options_, sub);
  }

  // Called by MpiWork::wait when the deadline passed.
  void timed_out(MpiWork& w, double waited) {
    std::string msg = str_cat("[", w.op(), "] rank ", rank_, " of ", size_, ": timed out after ", waited,
                              " s waiting for the other ranks", w.what().empty() ? "" : " (", w.what(),
                              w.what().empty() ? "" : ")",
                              "; a rank failed, exited or did not call it. EMBER_DIST_TIMEOUT_S sets the limit");
    if (options_.abort_on_timeout) {
      std::fprintf(stderr, "ember: error: %s; aborting all ranks\n", msg.c_str());
      std::fflush(stderr);
      MPI_Abort(comm_, 3);
    }
    // The operation stays posted; the next one on this communicator first waits
    // for it again, so a late peer that catches up brings the ranks back in step.
    abandoned_.push_back(w.shared_from_this());
    throw Error(msg);
  }

 private:
  void check_cpu(const char* op, const Tensor& t, const char* what) {
    detail::check_tensor(op, t, what);
    if (!t.device().is_cpu())
      fail(op, what, " is on ", t.device().str(), "; the MPI backend takes CPU tensors (NCCL handles CUDA)");
  }

  static MPI_Comm dup_world() {
    ensure_mpi();
    MPI_Comm c = MPI_COMM_NULL;
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &c), "dist");
    return c;
  }

  static int int_count(const char* op, int64_t n) {
    if (n > INT32_MAX) fail(op, n, " elements exceed MPI's int count limit; split the tensor");
    return int(n);
  }

  static std::string describe(const Tensor& t) { return str_cat(dtype_name(t.dtype()), " ", shape_str(t.shape())); }

  // The buffer that goes on the wire: the tensor itself, or a float32 copy of a
  // bfloat16 one (MPI has no bfloat16 arithmetic).
  static Tensor wire(const Tensor& t) { return t.dtype() == DType::bf16 ? contiguous(cast(t, DType::f32)) : t; }

  std::shared_ptr<MpiWork> make(const char* op, std::string what, std::vector<Tensor> keep,
                                std::function<void(const MPI_Status&)> finish) {
    return std::make_shared<MpiWork>(this, op, std::move(what), std::move(keep), std::move(finish));
  }

  // Completes operations left behind by a timeout, then (optionally) checks
  // that every rank issues the same collective.
  void begin(const char* op, DType dtype, int64_t numel, int root) {
    drain();
    if (options_.check_consistency) check_consistent(op, dtype, numel, root);
  }

  void drain() {
    while (!abandoned_.empty()) {
      auto w = abandoned_.front();
      abandoned_.erase(abandoned_.begin());
      w->wait();
    }
  }

  void check_consistent(const char* op, DType dtype, int64_t numel, int root) {
    int64_t mine[4] = {int64_t(std::hash<std::string>{}(op) & 0xffff), int64_t(dtype), numel, root};
    std::vector<int64_t> all(size_t(4 * size_));
    auto w = make(op, "consistency check", {}, nullptr);
    check_mpi(MPI_Iallgather(mine, 4, MPI_INT64_T, all.data(), 4, MPI_INT64_T, comm_, &w->request), op);
    w->wait();
    for (int r = 0; r < size_; ++r)
      if (!std::equal(mine, mine + 4, all.begin() + 4 * r)) {
        const int64_t* o = all.data() + 4 * r;
        fail(op, "ranks disagree: rank ", rank_, " has ", dtype_name(dtype), " x ", numel, " (root ", root,
             "), rank ", r, " has ", dtype_name(DType(o[1])), " x ", o[2], " (root ", o[3], ")",
             o[0] != mine[0] ? " in a different collective" : "");
      }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<std::shared_ptr<MpiWork>> abandoned_;
};

void MpiWork::wait() {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  double limit = comm_->options().timeout_s;
  // Spin briefly (short messages finish in microseconds), then back off so a
  // waiting rank leaves the CPU to ranks sharing the machine.
  auto pause = std::chrono::microseconds(0);
  for (int spins = 0; !test(); ++spins) {
    double waited = std::chrono::duration<double>(clock::now() - start).count();
    if (waited > limit) comm_->timed_out(*this, waited);
    if (spins > 200) {
      pause = std::min(std::chrono::microseconds(1000), pause + std::chrono::microseconds(20));
      std::this_thread::sleep_for(pause);
    }
  }
}

}  // namespace

std::shared_ptr<Communicator> make_mpi_communicator(CommOptions options) {
  return std::make_shared<MpiCommunicator>(options);
}

}  // namespace ember::dist
