// CUDA movement ops against the CPU: concat / stack / split, slice and its
// gradient, permute + contiguous, reshape of non-contiguous views, expand;
// dropout (the same mask as the CPU for the same seed); sort / topk / argsort
// with ties, NaN and signed zeros (indices must agree exactly).
#include <cmath>
#include <string>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_cuda_matches_cpu;

std::vector<Tensor> one(const Tensor& t) { return {t}; }

TEST(CudaShape, ConcatStackAndSplitMatchCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(1);
  Tensor a = randn({3, 5, 7}, DType::f32, Device::cpu(), &gen);
  Tensor b = randn({3, 2, 7}, DType::f32, Device::cpu(), &gen);
  Tensor c = randn({7, 9, 3}, DType::f32, Device::cpu(), &gen);  // transposed below: a strided input
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(concat({in[0], in[1], transpose(in[2], 0, 2)}, 1)); },
      {a, b, c}, {}, "concat axis 1");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(concat({in[0], in[0], in[1]}, -2)); },
                          {a, b}, {}, "concat repeated input");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(concat({in[0], slice(in[1], 1, 0, 0), in[0]}, 1)); }, {a, b},
      {}, "concat empty piece");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(stack({in[0], in[1], in[0]}, 0)); },
                          {a, slice(a, 0, 0, 3)}, {}, "stack");
  // Mixed dtypes promote; bf16 and integer pieces.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(concat({in[0], cast(in[1], DType::bf16)}, 1)); }, {a, b},
      {1e-2, 1e-2}, "concat promote");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return one(concat({cast(in[0] * 10.0, DType::i64), cast(in[1] * 10.0, DType::i64)}, 2));
      },
      {a, randn({3, 5, 4}, DType::f32, Device::cpu(), &gen)}, {0, 0, false}, "concat i64");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        std::vector<Tensor> parts = split(in[0], {2, 0, 3}, 1);
        std::vector<Tensor> chunks = chunk(in[0], 3, -1);
        return std::vector<Tensor>{contiguous(parts[0]) * 2.0, parts[2] + 1.0, contiguous(chunks[2])};
      },
      {a}, {}, "split and chunk");
}

TEST(CudaShape, SliceAndItsGradientMatchCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(2);
  Tensor x = randn({9, 11, 6}, DType::f32, Device::cpu(), &gen);
  // The gradient of a slice is slice_backward: the cotangent placed into zeros.
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(slice(in[0], 1, 2, 10, 3)); }, {x}, {},
                          "slice step 3");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(slice(in[0], -1, -4, 100)); }, {x}, {},
                          "slice negative");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(select(in[0], 0, -1)); }, {x}, {},
                          "select");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(narrow(transpose(in[0], 0, 2), 0, 1, 4)); },
                          {x}, {}, "narrow of a transpose");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(slice(in[0], 0, 3, 3)); }, {x}, {},
                          "empty slice");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(slice(in[0], 2, 1, 6, 2)); },
                          {cast(x, DType::bf16)}, {0, 0}, "slice bf16");
  // slice of a slice (offset views) summed with another slice.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        Tensor s = slice(slice(in[0], 0, 1, 8), 1, 3, 11, 2);
        return one(s * s + slice(slice(in[0], 0, 0, 7), 1, 0, 8, 2));
      },
      {x}, {1e-5, 1e-5}, "nested slices");
}

TEST(CudaShape, PermuteReshapeAndExpandMatchCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(3);
  Tensor x = randn({4, 6, 10}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(contiguous(permute(in[0], {2, 0, 1}))); },
                          {x}, {}, "permute + contiguous");
  // A transposed view cannot be viewed as [.., 60]: reshape copies.
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(reshape(transpose(in[0], 1, 2), {4, 60})); },
                          {x}, {}, "reshape of non-contiguous");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(flatten(permute(in[0], {1, 0, 2}))); }, {x},
                          {}, "flatten of a permute");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(reshape(slice(in[0], 2, 0, 10, 2), {4, 3, 2, 5})); }, {x}, {},
      "reshape of a strided slice");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(unsqueeze(squeeze(in[0]), -1)); },
                          {randn({3, 1, 5}, DType::f32, Device::cpu(), &gen)}, {}, "squeeze / unsqueeze");
  // expand: a stride-0 view; contiguous() materialises it and the gradient sums.
  Tensor row = randn({1, 6, 1}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(contiguous(expand(in[0], {5, 6, 7}))); },
                          {row}, {1e-5, 1e-5}, "expand");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(expand(in[0], {2, -1, -1, 3}) * in[1]); },
      {row, randn({2, 1, 6, 3}, DType::f32, Device::cpu(), &gen)}, {1e-5, 1e-5}, "expand new dim");
}

TEST(CudaShape, DropoutDrawsTheCpuMask) {
  EMBER_REQUIRE_GPU();
  Generator gen(4);
  Tensor x = rand({7, 129}, DType::f32, Device::cpu(), &gen) + 0.5;  // no zeros: output zeros are the mask
  for (double p : {0.1, 0.5, 0.9}) {
    auto fn = [p](const std::vector<Tensor>& in) {
      manual_seed(1234);  // the same generator state on both devices
      return one(dropout(in[0], p));
    };
    expect_cuda_matches_cpu(fn, {x}, {1e-6, 1e-6}, ("dropout " + std::to_string(p)).c_str());
    expect_cuda_matches_cpu(fn, {cast(x, DType::bf16)}, {1e-2, 1e-2}, "dropout bf16");
  }
  // A strided input; and the mask really drops about p of the elements.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        manual_seed(99);
        return one(dropout(transpose(in[0], 0, 1), 0.3));
      },
      {x}, {1e-6, 1e-6}, "dropout strided");
  manual_seed(5);
  Tensor y = to_device(dropout(to_device(ones({100, 100}), Device::cuda(0)), 0.25), Device::cpu());
  int64_t zeros_n = 0;
  for (float v : y.to_vector<float>()) zeros_n += v == 0.0f;
  EXPECT_NEAR(double(zeros_n) / 10000.0, 0.25, 0.03);
}

TEST(CudaShape, SortTopkArgsortMatchCpuExactly) {
  EMBER_REQUIRE_GPU();
  Generator gen(5);
  // Few distinct values: many ties, which must keep their original order.
  Tensor ties = cast(randint(-3, 4, {6, 41, 5}, Device::cpu(), &gen), DType::f32);
  CudaCheck exact{0, 0};
  for (bool desc : {false, true})
    for (int64_t axis : {0, 1, -1}) {
      std::string what = std::string("sort ") + (desc ? "desc" : "asc") + " axis " + std::to_string(axis);
      expect_cuda_matches_cpu(
          [axis, desc](const std::vector<Tensor>& in) {
            ValuesIndices r = sort(in[0], axis, desc);
            return std::vector<Tensor>{r.values, r.indices};
          },
          {ties}, exact, what.c_str());
    }
  // NaN sorts last ascending / first descending; -0 and +0 tie.
  Tensor special = tensor({1.0, NAN, -0.0, 0.0, -INFINITY, 3.0, NAN, INFINITY, 0.0, -0.0, -2.0, 1.0}, {12});
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (bool desc : {false, true})
      expect_cuda_matches_cpu(
          [desc, dt](const std::vector<Tensor>& in) {
            ValuesIndices r = sort(cast(in[0], dt), 0, desc);
            return std::vector<Tensor>{r.values, r.indices};
          },
          {special}, {0, 0, false}, ("sort special " + dtype_name(dt)).c_str());
  // Integer and bool keys.
  for (DType dt : {DType::i32, DType::i64, DType::u8, DType::b8})
    for (bool desc : {false, true})
      expect_cuda_matches_cpu(
          [desc, dt](const std::vector<Tensor>& in) {
            ValuesIndices r = sort(cast(in[0] + 3.0, dt), 1, desc);
            return std::vector<Tensor>{r.values, r.indices};
          },
          {ties}, {0, 0, false}, ("sort " + dtype_name(dt)).c_str());
  // topk over a vocabulary-sized row (one long segment), with gradients.
  Tensor logits = randn({3, 50257}, DType::f32, Device::cpu(), &gen);
  for (bool largest : {true, false})
    expect_cuda_matches_cpu(
        [largest](const std::vector<Tensor>& in) {
          ValuesIndices r = topk(in[0], 50, -1, largest);
          return std::vector<Tensor>{r.values, r.indices};
        },
        {logits}, exact, largest ? "topk largest" : "topk smallest");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        ValuesIndices r = topk(in[0], 3, 1);
        return std::vector<Tensor>{r.values, r.indices};
      },
      {ties}, exact, "topk middle axis");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(argsort(transpose(in[0], 0, 2), 1, true)); },
                          {ties}, exact, "argsort strided");
  // Edge cases: k = 0, a 0-D input, an empty axis.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        ValuesIndices r = topk(in[0], 0, 1);
        ValuesIndices s = sort(in[1]);
        ValuesIndices e = sort(in[2], 1);
        return std::vector<Tensor>{r.values, r.indices, s.values, s.indices, e.values, e.indices};
      },
      {ties, scalar(1.5), zeros({3, 0})}, exact, "sort edge cases");
}

}  // namespace
}  // namespace ember
