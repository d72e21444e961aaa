// Communicator options, argument checks, the local (single-process) backend and
// the choice of the world communicator.
#include "ember/dist/communicator.h"

#include <cstdlib>

#include "ember/core/error.h"
#include "ember/nn/copy.h"
#include "ember/ops/shape_ops.h"

namespace ember::dist {

std::string comm_op_name(CommOp op) {
  switch (op) {
    case CommOp::sum: return "sum";
    case CommOp::avg: return "avg";
    case CommOp::max: return "max";
  }
  return "?";
}

CommOptions CommOptions::from_env() {
  CommOptions o;
  if (const char* s = std::getenv("EMBER_DIST_TIMEOUT_S"); s && *s) {
    char* end = nullptr;
    double v = std::strtod(s, &end);
    if (end == s || *end != '\0' || !(v > 0))
      fail("dist", "EMBER_DIST_TIMEOUT_S must be a positive number of seconds, got '", s, "'");
    o.timeout_s = v;
  }
  if (const char* s = std::getenv("EMBER_DIST_CHECK"); s && std::string(s) == "1") o.check_consistency = true;
  return o;
}

void Communicator::set_timeout(double seconds) {
  if (!(seconds > 0)) fail("dist", "timeout must be positive, got ", seconds);
  options_.timeout_s = seconds;
}

namespace detail {

void check_tensor(const char* op, const Tensor& t, const char* what) {
  if (!t.defined() || !t.has_storage()) fail(op, what, " is undefined or has no storage");
  if (!t.is_contiguous()) fail(op, what, " of shape ", shape_str(t.shape()), " must be contiguous");
  switch (t.dtype()) {
    case DType::f32: case DType::f64: case DType::i64: case DType::i32: case DType::bf16: break;
    default: fail(op, what, " has dtype ", dtype_name(t.dtype()), "; supported: float32, float64, bfloat16, int64, int32");
  }
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    fail(op, "input dtype ", dtype_name(a.dtype()), " and output dtype ", dtype_name(b.dtype()), " differ");
  if (a.device() != b.device()) fail(op, "input and output are on different devices");
}

void check_chunks(const char* op, const Tensor& small, const Tensor& big, int size, const char* small_name,
                  const char* big_name) {
  if (big.numel() != small.numel() * size)
    fail(op, big_name, " of shape ", shape_str(big.shape()), " (", big.numel(), " elements) must have ", size,
         " x ", small_name, " of shape ", shape_str(small.shape()), " (", small.numel(), " elements) = ",
         small.numel() * size, " elements");
}

void check_peer(const char* op, int peer, int size) {
  if (peer < 0 || peer >= size) fail(op, "rank ", peer, " is out of range for ", size, " ranks");
}

void check_gather(const char* op, const Tensor& input, const Tensor& output, int root, int rank, int size) {
  check_peer(op, root, size);
  check_tensor(op, input, "input");
  if (rank != root) return;  // the others' output is never touched
  check_tensor(op, output, "output on the root");
  check_same_dtype(op, input, output);
  check_chunks(op, input, output, size, "input", "output");
}

void check_colour(int colour) {
  if (colour < 0) fail("split", "colour must be >= 0, got ", colour);
}

}  // namespace detail

namespace {

class DoneWork : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

// One process: every collective is the identity (a reduction over one rank).
class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(CommOptions o) : Communicator(o) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }

  std::shared_ptr<Work> all_reduce_async(const Tensor& t, CommOp op) override {
    detail::check_tensor("all_reduce", t);
    if (op == CommOp::avg && !is_floating(t.dtype()))
      fail("all_reduce", "avg needs a floating dtype, got ", dtype_name(t.dtype()));
    return done();
  }
  std::shared_ptr<Work> reduce_scatter_async(const Tensor& input, const Tensor& output, CommOp op) override {
    detail::check_tensor("reduce_scatter", input, "input");
    detail::check_tensor("reduce_scatter", output, "output");
    detail::check_same_dtype("reduce_scatter", input, output);
    detail::check_chunks("reduce_scatter", output, input, 1, "output", "input");
    if (!input.same(output)) nn::copy_(output, reshape_like(input, output));
    return done();
  }
  std::shared_ptr<Work> all_gather_async(const Tensor& input, const Tensor& output) override {
    detail::check_tensor("all_gather", input, "input");
    detail::check_tensor("all_gather", output, "output");
    detail::check_same_dtype("all_gather", input, output);
    detail::check_chunks("all_gather", input, output, 1, "input", "output");
    if (!input.same(output)) nn::copy_(output, reshape_like(input, output));
    return done();
  }
  std::shared_ptr<Work> gather_async(const Tensor& input, const Tensor& output, int root) override {
    detail::check_gather("gather", input, output, root, 0, 1);
    if (!input.same(output)) nn::copy_(output, reshape_like(input, output));
    return done();
  }
  std::shared_ptr<Work> broadcast_async(const Tensor& t, int root) override {
    detail::check_tensor("broadcast", t);
    detail::check_peer("broadcast", root, 1);
    return done();
  }
  std::shared_ptr<Work> barrier_async() override { return done(); }
  std::shared_ptr<Work> send_async(const Tensor&, int dst, int) override {
    detail::check_peer("send", dst, 1);
    fail("send", "a single-process run has no other rank to send to");
  }
  std::shared_ptr<Work> recv_async(const Tensor&, int src, int) override {
    detail::check_peer("recv", src, 1);
    fail("recv", "a single-process run has no other rank to receive from");
  }
  std::shared_ptr<Communicator> split(int colour, int) override {
    detail::check_colour(colour);
    return std::make_shared<LocalCommunicator>(options_);
  }

 private:
  static std::shared_ptr<Work> done() { return std::make_shared<DoneWork>(); }
  // `src` viewed with dst's shape (same element count, both contiguous).
  static Tensor reshape_like(const Tensor& src, const Tensor& dst) { return reshape(src, dst.shape()); }
};

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  const char* d = std::getenv("EMBER_DIST");
  return d && std::string(d) == "mpi";
}
}  // namespace

std::shared_ptr<Communicator> make_local_communicator(CommOptions options) {
  return std::make_shared<LocalCommunicator>(options);
}

std::shared_ptr<Communicator> world() {
  // Made in the static's own (thread-safe) initialiser: the MPI runtime, a
  // static started inside make_mpi_communicator(), finishes constructing
  // first and so is destroyed after this communicator, whose destructor can
  // still free its duplicated MPI communicator before MPI_Finalize (found by
  // LeakSanitizer: assigned later, the communicator outlived MPI and leaked).
  static const std::shared_ptr<Communicator> w =
      launched_by_mpi() ? make_mpi_communicator() : make_local_communicator();
  return w;
}

}  // namespace ember::dist
