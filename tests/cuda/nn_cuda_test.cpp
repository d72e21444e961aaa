// CUDA softmax / log_softmax, layer_norm / rms_norm and cross_entropy against
// the CPU kernels, forward and backward (the fused backward primitives run on
// the GPU through autograd): last and other axes, warp-sized and block-sized
// rows (a 50257-class vocabulary), strided inputs, 16-bit and float64 dtypes,
// masks, ignore_index and every reduction.
#include <cmath>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_cuda_matches_cpu;

testing::OpFn softmax_fn(bool log, int64_t axis) {
  return [=](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{log ? log_softmax(in[0], axis) : softmax(in[0], axis)};
  };
}

TEST(CudaSoftmax, EveryAxisAndRowLength) {
  EMBER_REQUIRE_GPU();
  Generator gen(21);
  Tensor small = randn({7, 33}, DType::f32, Device::cpu(), &gen);
  Tensor cube = randn({4, 5, 6}, DType::f32, Device::cpu(), &gen) * 3.0;
  Tensor medium = randn({5, 3001}, DType::f32, Device::cpu(), &gen);
  Tensor vocab = randn({3, 50257}, DType::f32, Device::cpu(), &gen) * 4.0;
  for (bool log : {false, true}) {
    const char* what = log ? "log_softmax" : "softmax";
    expect_cuda_matches_cpu(softmax_fn(log, -1), {small}, {1e-5, 1e-6}, what);
    for (int64_t axis : {0, 1, 2, -1}) expect_cuda_matches_cpu(softmax_fn(log, axis), {cube}, {1e-5, 1e-6}, what);
    expect_cuda_matches_cpu(softmax_fn(log, -1), {medium}, {1e-5, 1e-6}, what);
    // The gradient subtracts p * sum(g) with g summed over 50257 classes in float32; the
    // GPU's summation order differs from the CPU's by ~1e-6 absolute (measured on an H200).
    expect_cuda_matches_cpu(softmax_fn(log, -1), {vocab}, {1e-4, 1e-5}, what);
    expect_cuda_matches_cpu(softmax_fn(log, 0), {medium}, {1e-5, 1e-6}, what);  // long columns
    // Strided input: a transposed view.
    expect_cuda_matches_cpu(
        [=](const std::vector<Tensor>& in) {
          Tensor t = transpose(in[0], 0, 1);
          return std::vector<Tensor>{log ? log_softmax(t, -1) : softmax(t, -1)};
        },
        {small}, {1e-5, 1e-6}, what);
    expect_cuda_matches_cpu(softmax_fn(log, 0), {scalar(1.5)}, {1e-6, 1e-6}, what);  // 0-d
    expect_cuda_matches_cpu(softmax_fn(log, -1), {zeros({3, 0})}, {0, 0}, what);   // empty rows
    expect_cuda_matches_cpu(softmax_fn(log, -1), {cast(small, DType::f64)}, {1e-12, 1e-12}, what);
    expect_cuda_matches_cpu(softmax_fn(log, -1), {cast(small, DType::bf16)}, {2e-2, 2e-2}, what);
    expect_cuda_matches_cpu(softmax_fn(log, 1), {cast(cube, DType::f16)}, {5e-3, 5e-3}, what);
  }
}

TEST(CudaSoftmax, CausalMaskAndNonFiniteRows) {
  EMBER_REQUIRE_GPU();
  Generator gen(22);
  const int64_t T = 37;
  Tensor scores = randn({2, T, T}, DType::f32, Device::cpu(), &gen);
  std::vector<double> mask(size_t(T * T));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) mask[size_t(i * T + j)] = j > i ? -INFINITY : 0.0;
  Tensor m = tensor(mask, {T, T});
  for (bool log : {false, true})
    expect_cuda_matches_cpu(
        [=](const std::vector<Tensor>& in) {
          Tensor x = in[0] + in[1];
          return std::vector<Tensor>{log ? log_softmax(x, -1) : softmax(x, -1)};
        },
        {scores, m}, {1e-5, 1e-6}, log ? "masked log_softmax" : "masked softmax");
  // A row of -inf and a row with a NaN give NaN rows on both devices.
  Tensor bad = tensor({-INFINITY, -INFINITY, -INFINITY, 1, std::nan(""), 2, 0.5, 0.25, 3}, {3, 3});
  for (bool log : {false, true}) expect_cuda_matches_cpu(softmax_fn(log, -1), {bad}, {1e-6, 1e-6, false}, "non-finite");
}

testing::OpFn norm_fn(bool rms, bool weight, bool bias) {
  return [=](const std::vector<Tensor>& in) {
    Tensor w = weight ? in[1] : Tensor();
    Tensor b = bias ? in[2] : Tensor();
    return std::vector<Tensor>{rms ? rms_norm(in[0], w, 1e-6) : layer_norm(in[0], w, b, 1e-5)};
  };
}

TEST(CudaNorm, LayerAndRmsNormWithAndWithoutAffine) {
  EMBER_REQUIRE_GPU();
  Generator gen(23);
  struct Case {
    Shape shape;
    double rtol, atol;
  };
  // Warp rows, block rows, and enough rows that dweight / dbias take several chunks.
  for (const Case& c : std::vector<Case>{{{6, 37}, 1e-4, 1e-5}, {{3, 5, 2000}, 1e-4, 1e-4}, {{4097, 65}, 1e-4, 1e-3}}) {
    const int64_t C = c.shape.back();
    Tensor x = randn(c.shape, DType::f32, Device::cpu(), &gen) * 2.0 + 0.5;
    Tensor w = randn({C}, DType::f32, Device::cpu(), &gen);
    Tensor b = randn({C}, DType::f32, Device::cpu(), &gen);
    for (bool rms : {false, true})
      for (bool weight : {false, true})
        for (bool bias : {false, true}) {
          if (rms && bias) continue;
          std::vector<Tensor> in{x, w, b};
          expect_cuda_matches_cpu(norm_fn(rms, weight, bias), in, {c.rtol, c.atol},
                                  (std::string(rms ? "rms_norm" : "layer_norm") + " " + shape_str(c.shape) +
                                   (weight ? " weight" : "") + (bias ? " bias" : ""))
                                      .c_str());
        }
  }
}

TEST(CudaNorm, DtypesStridedInputAndStatistics) {
  EMBER_REQUIRE_GPU();
  Generator gen(24);
  Tensor x = randn({9, 48}, DType::f32, Device::cpu(), &gen);
  Tensor w = randn({48}, DType::f32, Device::cpu(), &gen);
  Tensor b = randn({48}, DType::f32, Device::cpu(), &gen);
  for (bool rms : {false, true}) {
    expect_cuda_matches_cpu(norm_fn(rms, true, !rms), {cast(x, DType::f64), cast(w, DType::f64), cast(b, DType::f64)},
                            {1e-10, 1e-10}, "f64");
    expect_cuda_matches_cpu(norm_fn(rms, true, !rms), {cast(x, DType::bf16), cast(w, DType::bf16), cast(b, DType::bf16)},
                            {3e-2, 3e-2}, "bf16");
    // A transposed x: the kernels read a contiguous copy.
    expect_cuda_matches_cpu(
        [=](const std::vector<Tensor>& in) {
          Tensor t = transpose(in[0], 0, 1);
          return std::vector<Tensor>{rms ? rms_norm(t, in[1]) : layer_norm(t, in[1], in[2])};
        },
        {randn({48, 9}, DType::f32, Device::cpu(), &gen), randn({48}, DType::f32, Device::cpu(), &gen),
         randn({48}, DType::f32, Device::cpu(), &gen)},
        {1e-4, 1e-5}, "strided");
  }
  // Rows of a large mean: the two-pass variance stays accurate.
  // (float32 holds 1000 + x to 6e-5, and the two backends sum the mean in different
  // orders: the outputs differed by up to 2e-4 on an H200.)
  expect_cuda_matches_cpu(norm_fn(false, false, false), {x + 1000.0}, {1e-3, 5e-4}, "large mean");
  // No rows: dweight and dbias are zero sums.
  expect_cuda_matches_cpu(norm_fn(false, true, true), {zeros({0, 8}), ones({8}), ones({8})}, {0, 0}, "no rows");
}

testing::OpFn ce_fn(int64_t ignore_index, Reduction r) {
  return [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{cross_entropy(in[0], in[1], ignore_index, r)}; };
}

Tensor targets_with_ignored(int64_t N, int64_t C, Generator& gen, int64_t ignore_index, DType dtype) {
  std::vector<int64_t> t = randint(0, C, {N}, Device::cpu(), &gen).to_vector<int64_t>();
  for (int64_t i = 0; i < N; i += 3) t[size_t(i)] = ignore_index;
  return cast(tensor_i64(t, {N}), dtype);
}

TEST(CudaCrossEntropy, ReductionsIgnoreIndexAndTargetDtypes) {
  EMBER_REQUIRE_GPU();
  Generator gen(25);
  Tensor z = randn({10, 13}, DType::f32, Device::cpu(), &gen) * 2.0;
  for (DType tdt : {DType::i64, DType::i32})
    for (int64_t ignore : {int64_t(-100), int64_t(4)})
      for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
        Tensor t = targets_with_ignored(10, 13, gen, ignore, tdt);
        expect_cuda_matches_cpu(ce_fn(ignore, r), {z, t}, {1e-5, 1e-6}, "cross_entropy");
      }
  // [B, T, C] logits with [B, T] targets, and a strided (transposed) logits view.
  Tensor z3 = randn({2, 7, 11}, DType::f32, Device::cpu(), &gen);
  Tensor t3 = randint(0, 11, {2, 7}, Device::cpu(), &gen);
  expect_cuda_matches_cpu(ce_fn(-100, Reduction::mean), {z3, t3}, {1e-5, 1e-6}, "cross_entropy 3-d");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{cross_entropy(transpose(in[0], 0, 1), in[1], -100, Reduction::none)};
      },
      {randn({11, 6}, DType::f32, Device::cpu(), &gen), randint(0, 11, {6}, Device::cpu(), &gen)}, {1e-5, 1e-6},
      "cross_entropy strided");
  // Every target ignored: the mean is 0/0 = nan, the gradient zero.
  Tensor all_ignored = full({4}, -100.0, DType::i64);
  expect_cuda_matches_cpu(ce_fn(-100, Reduction::mean), {randn({4, 5}, DType::f32, Device::cpu(), &gen), all_ignored},
                          {0, 0}, "all ignored");
  // No rows at all.
  expect_cuda_matches_cpu(ce_fn(-100, Reduction::sum), {zeros({0, 5}), zeros({0}, DType::i64)}, {0, 0}, "no rows");
}

TEST(CudaCrossEntropy, VocabularyRowsAndDtypes) {
  EMBER_REQUIRE_GPU();
  Generator gen(26);
  const int64_t V = 50257;
  Tensor z = randn({6, V}, DType::f32, Device::cpu(), &gen) * 3.0;
  Tensor t = targets_with_ignored(6, V, gen, -100, DType::i64);
  for (Reduction r : {Reduction::mean, Reduction::none})
    expect_cuda_matches_cpu(ce_fn(-100, r), {z, t}, {1e-5, 1e-6}, "cross_entropy vocab");
  expect_cuda_matches_cpu(ce_fn(-100, Reduction::mean), {cast(z, DType::bf16), t}, {2e-2, 1e-3}, "bf16 vocab");
  expect_cuda_matches_cpu(ce_fn(-100, Reduction::sum), {cast(z, DType::f64), t}, {1e-12, 1e-12}, "f64 vocab");
  expect_cuda_matches_cpu(ce_fn(-100, Reduction::none), {cast(z, DType::f16), t}, {5e-3, 1e-3}, "f16 vocab");
}

TEST(CudaCrossEntropy, BadTargetsFailAsOnTheCpu) {
  EMBER_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  Tensor z = to_device(zeros({3, 13}), gpu);
  EXPECT_ERROR(cross_entropy(z, to_device(tensor_i64({1, 2, 13}, {3}), gpu)),
               "[cross_entropy] target 13 at position 2 is out of range [0, 13)");
  EXPECT_ERROR(cross_entropy(z, to_device(tensor_i64({-1, 2, 3}, {3}), gpu)), "[cross_entropy] target -1 at position 0");
  EXPECT_ERROR(cross_entropy(z, to_device(zeros({3}), gpu)), "[cross_entropy] targets must be int64 or int32");
}

}  // namespace
}  // namespace ember
