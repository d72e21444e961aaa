// CUDA matmul and linear (cuBLAS) against the CPU kernels, forward and backward:
// odd sizes, transposed and doubly strided operands, every kind of batch
// broadcast, vectors, K == 0, float64 and the 16-bit types.
#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_cuda_matches_cpu;

// Sums of 33 products: absolute errors near zero are a few float32 ulps of the terms.
constexpr CudaCheck kF32{1e-5, 5e-5};
constexpr CudaCheck kHalf{2e-2, 2e-2};

std::vector<Tensor> mm(const std::vector<Tensor>& in) { return {matmul(in[0], in[1])}; }

TEST(CudaLinalg, MatmulOddSizesMatchCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(11);
  Tensor a = randn({7, 33}, DType::f32, Device::cpu(), &gen);
  Tensor b = randn({33, 13}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {a, b}, kF32, "7x33 @ 33x13");
  Tensor one = randn({1, 33}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {one, b}, kF32, "1x33 @ 33x13");
  Tensor col = randn({33, 1}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {a, col}, kF32, "7x33 @ 33x1");
  Tensor big_a = randn({129, 257}, DType::f32, Device::cpu(), &gen);
  Tensor big_b = randn({257, 65}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {big_a, big_b}, {1e-5, 2e-4}, "129x257 @ 257x65");
}

TEST(CudaLinalg, MatmulTransposedAndStridedOperands) {
  EMBER_REQUIRE_GPU();
  Generator gen(12);
  Tensor at = randn({33, 7}, DType::f32, Device::cpu(), &gen);
  Tensor bt = randn({13, 33}, DType::f32, Device::cpu(), &gen);
  Tensor a = randn({7, 33}, DType::f32, Device::cpu(), &gen);
  Tensor b = randn({33, 13}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(transpose(in[0], 0, 1), in[1])}; },
      {at, b}, kF32, "aT @ b");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], transpose(in[1], 0, 1))}; },
      {a, bt}, kF32, "a @ bT");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{matmul(transpose(in[0], 0, 1), transpose(in[1], 0, 1))};
      },
      {at, bt}, kF32, "aT @ bT");
  // Every other column: neither row- nor column-major, so the kernel copies it.
  Tensor wide = randn({7, 66}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(slice(in[0], 1, 0, 66, 2), in[1])}; },
      {wide, b}, kF32, "column-strided a");
  // A row broadcast to every row (row stride 0).
  Tensor row = randn({1, 33}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(expand(in[0], {7, 33}), in[1])}; },
      {row, b}, kF32, "expanded a");
  // A view into the middle of a bigger matrix (leading dimension > columns, offset).
  Tensor big = randn({20, 50}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{matmul(slice(slice(in[0], 0, 3, 10), 1, 5, 38), in[1])};
      },
      {big, b}, kF32, "sub-matrix a");
}

TEST(CudaLinalg, MatmulBatchesBroadcast) {
  EMBER_REQUIRE_GPU();
  Generator gen(13);
  Tensor a = randn({2, 3, 7, 33}, DType::f32, Device::cpu(), &gen);
  Tensor w = randn({33, 13}, DType::f32, Device::cpu(), &gen);
  Tensor b3 = randn({1, 3, 33, 13}, DType::f32, Device::cpu(), &gen);
  Tensor b6 = randn({2, 3, 33, 13}, DType::f32, Device::cpu(), &gen);
  Tensor a21 = randn({2, 1, 7, 33}, DType::f32, Device::cpu(), &gen);
  Tensor b_3 = randn({3, 33, 13}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {a, w}, kF32, "[2,3,M,K] @ [K,N] (rows folded)");
  expect_cuda_matches_cpu(mm, {a, b3}, kF32, "[2,3,M,K] @ [1,3,K,N]");
  expect_cuda_matches_cpu(mm, {a, b6}, kF32, "[2,3,M,K] @ [2,3,K,N]");
  expect_cuda_matches_cpu(mm, {a21, b_3}, kF32, "[2,1,M,K] @ [3,K,N]");
  // Transposed matrices in a batch: permuted views with a batch stride.
  Tensor at = randn({2, 3, 33, 7}, DType::f32, Device::cpu(), &gen);
  Tensor bt = randn({3, 13, 33}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{matmul(permute(in[0], {0, 1, 3, 2}), permute(in[1], {0, 2, 1}))};
      },
      {at, bt}, kF32, "[2,3,K,M]^T @ [3,N,K]^T");
  // Batch dimensions permuted: a's matrices do not lie at even steps in out's order.
  Tensor ap = randn({3, 2, 7, 33}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(permute(in[0], {1, 0, 2, 3}), in[1])}; },
      {ap, b3}, kF32, "permuted batch");
  // The weight gradient of a shared matrix sums over the batch: a [B*T, K]^T @ [B*T, N] product.
  Tensor x3 = randn({4, 9, 33}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {x3, w}, kF32, "[B,T,K] @ [K,N]");
}

TEST(CudaLinalg, MatmulVectorsAndEmptySums) {
  EMBER_REQUIRE_GPU();
  Generator gen(14);
  Tensor v = randn({33}, DType::f32, Device::cpu(), &gen);
  Tensor u = randn({33}, DType::f32, Device::cpu(), &gen);
  Tensor m = randn({33, 13}, DType::f32, Device::cpu(), &gen);
  Tensor mt = randn({7, 33}, DType::f32, Device::cpu(), &gen);
  Tensor batch = randn({2, 7, 33}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {v, m}, kF32, "vector @ matrix");
  expect_cuda_matches_cpu(mm, {mt, v}, kF32, "matrix @ vector");
  expect_cuda_matches_cpu(mm, {v, u}, kF32, "vector @ vector");
  expect_cuda_matches_cpu(mm, {batch, v}, kF32, "batch @ vector");
  // K == 0: zeros; M == 0 or N == 0: empty results.
  expect_cuda_matches_cpu(mm, {zeros({3, 0}), zeros({0, 4})}, {0, 0}, "K == 0");
  expect_cuda_matches_cpu(mm, {zeros({2, 3, 0}), zeros({0, 4})}, {0, 0}, "batched K == 0");
  expect_cuda_matches_cpu(mm, {zeros({0, 5}), randn({5, 4}, DType::f32, Device::cpu(), &gen)}, {0, 0}, "M == 0");
  expect_cuda_matches_cpu(mm, {randn({3, 5}, DType::f32, Device::cpu(), &gen), zeros({5, 0})}, {0, 0}, "N == 0");
}

TEST(CudaLinalg, MatmulOtherDtypes) {
  EMBER_REQUIRE_GPU();
  Generator gen(15);
  Tensor a = randn({2, 3, 7, 33}, DType::f64, Device::cpu(), &gen);
  Tensor b = randn({1, 3, 33, 13}, DType::f64, Device::cpu(), &gen);
  expect_cuda_matches_cpu(mm, {a, b}, {1e-12, 1e-12}, "f64");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(transpose(in[0], -1, -2), in[1])}; },
      {randn({3, 33, 7}, DType::f64, Device::cpu(), &gen), b}, {1e-12, 1e-12}, "f64 transposed");
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor a16 = cast(a, dt), b16 = cast(b, dt);
    expect_cuda_matches_cpu(mm, {a16, b16}, kHalf, dtype_name(dt).c_str());
    expect_cuda_matches_cpu(mm, {cast(randn({5, 7, 33}, DType::f32, Device::cpu(), &gen), dt),
                                 cast(randn({33, 13}, DType::f32, Device::cpu(), &gen), dt)},
                            kHalf, dtype_name(dt).c_str());
    expect_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], transpose(in[1], 0, 1))}; },
        {cast(randn({7, 33}, DType::f32, Device::cpu(), &gen), dt),
         cast(randn({13, 33}, DType::f32, Device::cpu(), &gen), dt)},
        kHalf, dtype_name(dt).c_str());
  }
}

std::vector<Tensor> lin(const std::vector<Tensor>& in) {
  return {in.size() > 2 ? linear(in[0], in[1], in[2]) : linear(in[0], in[1])};
}

TEST(CudaLinalg, LinearWithAndWithoutBias) {
  EMBER_REQUIRE_GPU();
  Generator gen(16);
  Tensor x = randn({2, 9, 33}, DType::f32, Device::cpu(), &gen);
  Tensor w = randn({13, 33}, DType::f32, Device::cpu(), &gen);
  Tensor bias = randn({13}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(lin, {x, w}, kF32, "linear");
  expect_cuda_matches_cpu(lin, {x, w, bias}, kF32, "linear + bias");
  expect_cuda_matches_cpu(lin, {randn({33}, DType::f32, Device::cpu(), &gen), w, bias}, kF32, "linear of a vector");
  expect_cuda_matches_cpu(lin, {randn({5, 33}, DType::f32, Device::cpu(), &gen), w, bias}, kF32, "linear 2-D");
  // A strided input (every other row) and a transposed weight.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{linear(slice(in[0], 0, 0, 10, 2), transpose(in[1], 0, 1), in[2])};
      },
      {randn({10, 33}, DType::f32, Device::cpu(), &gen), randn({33, 13}, DType::f32, Device::cpu(), &gen), bias}, kF32,
      "strided linear");
  // No inputs to sum: the bias alone.
  expect_cuda_matches_cpu(lin, {zeros({3, 0}), zeros({13, 0}), bias}, {0, 0}, "linear K == 0");
  expect_cuda_matches_cpu(lin, {cast(x, DType::f64), cast(w, DType::f64), cast(bias, DType::f64)}, {1e-12, 1e-12},
                          "f64 linear");
  for (DType dt : {DType::bf16, DType::f16})
    expect_cuda_matches_cpu(lin, {cast(x, dt), cast(w, dt), cast(bias, dt)}, kHalf, dtype_name(dt).c_str());
}

}  // namespace
}  // namespace ember
