// The NCCL communicator on CUDA tensors. One GPU allows one NCCL rank (NCCL
// refuses two ranks on one device), so these run the collectives on a world of
// one: they check the build, the stream ordering against the default stream
// (a collective sees the kernels queued before it, and later kernels see its
// result) and the argument checks; several ranks need several GPUs.
#include "cuda/cuda_test_util.h"

#include "ember/dist/communicator.h"
#include "test_util.h"

namespace ember {
namespace {

std::shared_ptr<dist::Communicator> nccl_world() {
  return dist::make_nccl_communicator(dist::make_local_communicator(), 0);
}

TEST(CudaNccl, CollectivesOnOneRankSeeQueuedKernels) {
  EMBER_REQUIRE_GPU();
  auto comm = nccl_world();
  EXPECT_EQ(comm->backend(), "nccl");
  EXPECT_EQ(comm->size(), 1);
  Generator gen(9);
  Tensor host = randn({1000, 33}, DType::f32, Device::cpu(), &gen);
  // Queued on the default stream just before the collective: NCCL must wait for it.
  Tensor t = to_device(host, Device::cuda(0)) * 2.0;
  comm->all_reduce(t, dist::CommOp::sum);
  testing::expect_close(t, host * 2.0, {0, 0}, "all_reduce sum");
  comm->all_reduce(t, dist::CommOp::avg);
  testing::expect_close(t * 0.5, host, {0, 0}, "all_reduce avg, then a kernel");
  Tensor out = zeros({1000, 33}, DType::f32, Device::cuda(0));
  comm->all_gather(t, out);
  testing::expect_close(out, host * 2.0, {0, 0}, "all_gather");
  Tensor rs = zeros({1000, 33}, DType::f32, Device::cuda(0));
  comm->reduce_scatter(t, rs, dist::CommOp::sum);
  testing::expect_close(rs, host * 2.0, {0, 0}, "reduce_scatter");
  Tensor b = to_device(tensor_i64({1, 2, 3}, {3}), Device::cuda(0));
  comm->broadcast(b, 0);
  EXPECT_EQ(b.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3}));
  Tensor h = to_device(cast(host, DType::bf16), Device::cuda(0));
  comm->all_reduce(h, dist::CommOp::max);
  testing::expect_close(h, cast(host, DType::bf16), {0, 0}, "bf16 all_reduce max");
  comm->barrier();
}

TEST(CudaNccl, GatherAndSplitOnOneRank) {
  // Not yet run on a GPU (written after the session's device runs).
  EMBER_REQUIRE_GPU();
  auto comm = nccl_world();
  Tensor x = to_device(tensor({1.0, 2.0, 3.0}, {3}), Device::cuda(0));
  Tensor out = zeros({3}, DType::f32, Device::cuda(0));
  comm->gather(x, out, 0);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  auto sub = comm->split(0, 0);
  EXPECT_EQ(sub->backend(), "nccl");
  EXPECT_EQ(sub->size(), 1);
  sub->all_reduce(x, dist::CommOp::sum);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{1, 2, 3}));
}

TEST(CudaNccl, RejectsHostTensorsWithAClearError) {
  EMBER_REQUIRE_GPU();
  auto comm = nccl_world();
  Tensor host = zeros({4});
  EXPECT_ERROR(comm->all_reduce(host), "[all_reduce] tensor is on cpu; this NCCL communicator works on cuda:0");
}

}  // namespace
}  // namespace ember
