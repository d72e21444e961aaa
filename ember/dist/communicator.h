// Communicator: the collective and point-to-point operations distributed
// training is built on (all-reduce, reduce-scatter, all-gather, gather,
// broadcast, barrier, send/recv) and splitting into sub-communicators, with
// three backends behind one interface:
//   * MPI (mpi_communicator.cpp) for CPU tensors, across processes and machines;
//   * NCCL (nccl_communicator.cpp, built with EMBER_WITH_NCCL) for CUDA tensors;
//   * local: a single process (size 1, no MPI initialised), so ordinary runs
//     need no launcher and the same training code runs everywhere.
//
// Every operation is non-blocking underneath and returns or waits on a Work
// whose wait() polls against a timeout (CommOptions::timeout_s, default 300 s,
// env EMBER_DIST_TIMEOUT_S): a rank that died or skipped a collective makes the
// others stop with a clear error instead of hanging forever. After a timeout
// the default is to print the error and abort the whole job (MPI_Abort), since
// a half-finished collective leaves the ranks out of step; tests may ask for an
// exception instead.
//
// Tensors: contiguous, float32 / float64 / int64 / int32, and bfloat16 (reduced
// in float32 and converted back). Collectives are matched by call order on
// every rank, as in MPI: all ranks must issue the same sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ember/core/tensor.h"

namespace ember::dist {

enum class CommOp { sum, avg, max };
std::string comm_op_name(CommOp op);

struct CommOptions {
  double timeout_s = 300.0;     // per operation; EMBER_DIST_TIMEOUT_S overrides the default
  bool abort_on_timeout = true;  // false: throw ember::Error (the job is then out of step)
  // Before every collective, check that all ranks pass the same op, dtype and
  // element count (one extra small all-gather; env EMBER_DIST_CHECK=1).
  bool check_consistency = false;
  // The defaults with the environment applied.
  static CommOptions from_env();
};

// An operation in flight. wait() returns once it completed on this rank (the
// output tensor then holds the result) or fails on timeout; test() polls.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local", "mpi", "nccl"
  const CommOptions& options() const { return options_; }
  void set_timeout(double seconds);

  // In place on `t` on every rank. avg needs a floating dtype.
  virtual std::shared_ptr<Work> all_reduce_async(const Tensor& t, CommOp op) = 0;
  // `input` has size() * output.numel() elements; rank r receives the reduction
  // of chunk r (of the flattened input) in `output`.
  virtual std::shared_ptr<Work> reduce_scatter_async(const Tensor& input, const Tensor& output, CommOp op) = 0;
  // `output` has size() * input.numel() elements; chunk r is rank r's input.
  virtual std::shared_ptr<Work> all_gather_async(const Tensor& input, const Tensor& output) = 0;
  // Like all_gather, but only rank `root` receives: its `output` has size() *
  // input.numel() elements, chunk r being rank r's input; the other ranks pass
  // an undefined `output` (it is not touched), so they never hold the whole.
  virtual std::shared_ptr<Work> gather_async(const Tensor& input, const Tensor& output, int root) = 0;
  // Rank `root`'s `t` is copied into every rank's `t`.
  virtual std::shared_ptr<Work> broadcast_async(const Tensor& t, int root) = 0;
  virtual std::shared_ptr<Work> barrier_async() = 0;
  virtual std::shared_ptr<Work> send_async(const Tensor& t, int dst, int tag = 0) = 0;
  // `t` must have the sender's element count and dtype (checked on arrival).
  virtual std::shared_ptr<Work> recv_async(const Tensor& t, int src, int tag = 0) = 0;

  // Collective (blocking): a new communicator over the ranks that pass the same
  // `colour` (>= 0), ranked by `key`, ties by rank here (MPI_Comm_split), with
  // this one's options. Its traffic never mixes with this one's. Used for 2-D
  // parallelism: tensor-parallel groups, and data parallel across them.
  virtual std::shared_ptr<Communicator> split(int colour, int key) = 0;

  // Blocking forms.
  void all_reduce(const Tensor& t, CommOp op = CommOp::sum) { all_reduce_async(t, op)->wait(); }
  void reduce_scatter(const Tensor& input, const Tensor& output, CommOp op = CommOp::sum) {
    reduce_scatter_async(input, output, op)->wait();
  }
  void all_gather(const Tensor& input, const Tensor& output) { all_gather_async(input, output)->wait(); }
  void gather(const Tensor& input, const Tensor& output, int root) { gather_async(input, output, root)->wait(); }
  void broadcast(const Tensor& t, int root = 0) { broadcast_async(t, root)->wait(); }
  void barrier() { barrier_async()->wait(); }
  void send(const Tensor& t, int dst, int tag = 0) { send_async(t, dst, tag)->wait(); }
  void recv(const Tensor& t, int src, int tag = 0) { recv_async(t, src, tag)->wait(); }

 protected:
  explicit Communicator(CommOptions options) : options_(options) {}
  CommOptions options_;
};

// The process-wide communicator over all ranks: MPI when the process was started
// by an MPI launcher (mpirun, srun: OMPI_COMM_WORLD_SIZE / PMI_SIZE / PMIX_RANK
// set) or EMBER_DIST=mpi, otherwise the local single-process one. Created on
// first use; MPI is initialised then and finalised at exit.
std::shared_ptr<Communicator> world();

std::shared_ptr<Communicator> make_local_communicator(CommOptions options = CommOptions::from_env());
// A new MPI communicator over all processes (a duplicate of MPI_COMM_WORLD, so
// its traffic never mixes with another's). Initialises MPI if needed.
std::shared_ptr<Communicator> make_mpi_communicator(CommOptions options = CommOptions::from_env());

// A NCCL communicator for CUDA tensors on `device` over the same ranks as
// `bootstrap` (which carries NCCL's id from rank 0). Throws when ember was built
// without EMBER_WITH_NCCL.
std::shared_ptr<Communicator> make_nccl_communicator(const std::shared_ptr<Communicator>& bootstrap, int device,
                                                     CommOptions options = CommOptions::from_env());

// Argument checks shared by the backends (errors name the op and the values).
namespace detail {
void check_tensor(const char* op, const Tensor& t, const char* what = "tensor");
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_chunks(const char* op, const Tensor& small, const Tensor& big, int size, const char* small_name,
                  const char* big_name);
void check_peer(const char* op, int peer, int size);
// gather's checks: `input` on every rank, `output` (chunks) on the root only.
void check_gather(const char* op, const Tensor& input, const Tensor& output, int root, int rank, int size);
// split's: a colour >= 0.
void check_colour(int colour);
}  // namespace detail

}  // namespace ember::dist
