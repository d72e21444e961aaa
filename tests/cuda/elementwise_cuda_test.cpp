// CUDA elementwise kernels against the CPU kernels: every unary and binary op
// (broadcasting, strided views), where, clamp, casts, fill and the fused
// activation derivatives, forward and backward.
#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_cuda_matches_cpu;

TEST(CudaElementwise, EveryUnaryOpMatchesCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(1);
  Tensor x = randn({3, 5, 7}, DType::f32, Device::cpu(), &gen);
  Tensor pos = rand({3, 5, 7}, DType::f32, Device::cpu(), &gen) + 0.1;
  for (UnaryOp op : {UnaryOp::neg, UnaryOp::abs, UnaryOp::exp, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::relu,
                     UnaryOp::gelu, UnaryOp::gelu_tanh, UnaryOp::silu, UnaryOp::sin, UnaryOp::cos, UnaryOp::erf,
                     UnaryOp::sign, UnaryOp::square})
    expect_cuda_matches_cpu([op](const std::vector<Tensor>& in) { return std::vector<Tensor>{unary(op, in[0])}; }, {x},
                            {}, unary_op_name(op));
  for (UnaryOp op : {UnaryOp::log, UnaryOp::sqrt, UnaryOp::rsqrt, UnaryOp::reciprocal})
    expect_cuda_matches_cpu([op](const std::vector<Tensor>& in) { return std::vector<Tensor>{unary(op, in[0])}; },
                            {pos}, {}, unary_op_name(op));
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return std::vector<Tensor>{logical_not(in[0])}; },
                          {relu(x)}, {}, "logical_not");
}

TEST(CudaElementwise, BinaryOpsBroadcastOverStridedViews) {
  EMBER_REQUIRE_GPU();
  Generator gen(2);
  Tensor a = randn({4, 6, 8}, DType::f32, Device::cpu(), &gen);
  Tensor b = randn({6, 1}, DType::f32, Device::cpu(), &gen);
  Tensor c = randn({8, 6}, DType::f32, Device::cpu(), &gen);  // transposed: a strided operand
  for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::maximum,
                      BinaryOp::minimum, BinaryOp::eq, BinaryOp::lt, BinaryOp::ge}) {
    expect_cuda_matches_cpu(
        [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{binary(op, in[0], in[1])}; }, {a, b}, {},
        binary_op_name(op));
    expect_cuda_matches_cpu(
        [op](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{binary(op, in[0], reshape(transpose(in[1], 0, 1), {1, 6, 8}))};
        },
        {a, c}, {}, binary_op_name(op));
  }
  Tensor base = rand({5, 5}, DType::f32, Device::cpu(), &gen) + 0.5;
  Tensor expo = randn({5, 5}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return std::vector<Tensor>{pow(in[0], in[1])}; },
                          {base, expo}, {1e-5, 1e-5}, "pow");
}

TEST(CudaElementwise, IntegerAndBoolArithmeticMatchesCpu) {
  EMBER_REQUIRE_GPU();
  Tensor a = tensor_i64({-7, -1, 0, 3, 9, 12}, {2, 3});
  Tensor b = tensor_i64({2, 0, 5, -2, 4, 12}, {2, 3});
  for (BinaryOp op : {BinaryOp::add, BinaryOp::mul, BinaryOp::div, BinaryOp::maximum, BinaryOp::eq, BinaryOp::gt})
    expect_cuda_matches_cpu(
        [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{binary(op, in[0], in[1])}; }, {a, b}, {},
        binary_op_name(op));
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{logical_and(gt(in[0], in[1]), ne(in[0], in[1])), logical_or(lt(in[0], in[1]), eq(in[0], in[1]))};
      },
      {a, b}, {}, "logical");
}

TEST(CudaElementwise, WhereClampCastAndFill) {
  EMBER_REQUIRE_GPU();
  Generator gen(3);
  Tensor x = randn({7, 9}, DType::f32, Device::cpu(), &gen);
  Tensor y = randn({9}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{where(gt(in[0], scalar_like(0.0, in[0])), in[0], in[1])};
      },
      {x, y}, {}, "where");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return std::vector<Tensor>{clamp(in[0], -0.5, 0.7)}; },
                          {x}, {}, "clamp");
  // Casts through every dtype and back; bf16 rounds like the CPU (round to nearest even).
  for (DType dt : {DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::b8})
    expect_cuda_matches_cpu(
        [dt](const std::vector<Tensor>& in) { return std::vector<Tensor>{cast(in[0] * 3.0, dt)}; }, {x},
        {0, 0, false}, dtype_name(dt).c_str());
  Tensor bf = cast(x, DType::bf16);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return std::vector<Tensor>{gelu(in[0]) * in[0]}; }, {bf},
                          {1e-2, 1e-2}, "bf16 gelu");
  Tensor f = full({3, 4}, 2.5, DType::f32, Device::cuda(0));
  testing::expect_close(f, full({3, 4}, 2.5), {0, 0}, "full");
  // contiguous() of a permuted view is the strided copy.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{contiguous(permute(in[0], {1, 0}))}; }, {x}, {},
      "contiguous");
}

TEST(CudaElementwise, HostDeviceRoundTripAndAllocatorReuse) {
  EMBER_REQUIRE_GPU();
  Generator gen(4);
  Tensor x = randn({1000, 37}, DType::f32, Device::cpu(), &gen);
  Tensor g = to_device(x, Device::cuda(0));
  EXPECT_EQ(g.device(), Device::cuda(0));
  EXPECT_EQ(to_device(g, Device::cpu()).to_vector<float>(), x.to_vector<float>());
  // Data read straight from a device tensor comes back through the device interface.
  EXPECT_EQ(g.to_vector<float>(), x.to_vector<float>());
  AllocatorStats before = allocator_for(Device::cuda(0)).stats();
  for (int i = 0; i < 10; ++i) {
    Tensor t = g * 2.0 + 1.0;
    (void)t;
  }
  AllocatorStats after = allocator_for(Device::cuda(0)).stats();
  EXPECT_GT(after.cache_hits, before.cache_hits) << "freed device blocks are reused";
  EXPECT_ERROR(g + x, "[add] inputs are on different devices");
}

}  // namespace
}  // namespace ember
