// CUDA reductions against the CPU kernels: sum, max, min and prod over every
// kind of axis set (innermost rows, outer columns, several axes, all axes),
// keepdim, strided and broadcast inputs, every dtype, NaN, long rows and
// columns that take the split (two-pass) paths, empty tensors; argmax/argmin
// with ties and NaN. Gradients (the vjps, which reduce again) included.
#include <cmath>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_cuda_matches_cpu;

testing::OpFn reduce_fn(ReduceOp op, Axes axes, bool keepdim) {
  return [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{reduce(op, in[0], axes, keepdim)}; };
}

std::string label(ReduceOp op, const Axes& axes, bool keepdim) {
  std::string s = std::string(reduce_op_name(op)) + " axes [";
  for (int64_t a : axes) s += std::to_string(a) + " ";
  return s + "] keepdim " + std::to_string(int(keepdim));
}

TEST(CudaReduce, EveryOpOverEveryAxisSet) {
  EMBER_REQUIRE_GPU();
  Generator gen(11);
  Tensor x = randn({5, 37, 3, 9}, DType::f32, Device::cpu(), &gen);
  // prod of values near 1 stays finite; smaller so that the products are well-conditioned.
  Tensor y = rand({4, 7, 3, 5}, DType::f32, Device::cpu(), &gen) * 0.5 + 0.75;
  const std::vector<Axes> axis_sets = {{}, {-1}, {0}, {1}, {2}, {1, 2}, {0, 3}, {1, 3}, {0, 1, 2, 3}, {-3, -1}};
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::prod})
    for (const Axes& axes : axis_sets)
      for (bool keepdim : {false, true})
        expect_cuda_matches_cpu(reduce_fn(op, axes, keepdim), {op == ReduceOp::prod ? y : x}, {1e-5, 1e-5},
                                label(op, axes, keepdim).c_str());
}

TEST(CudaReduce, StridedAndBroadcastInputs) {
  EMBER_REQUIRE_GPU();
  Generator gen(12);
  Tensor x = randn({6, 11, 13}, DType::f32, Device::cpu(), &gen);
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::prod})
    for (const Axes& axes : std::vector<Axes>{{0}, {-1}, {1, 2}, {}}) {
      expect_cuda_matches_cpu(
          [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{reduce(op, permute(in[0], {2, 0, 1}), axes, false)}; },
          {x}, {1e-5, 1e-5}, ("permuted " + label(op, axes, false)).c_str());
      expect_cuda_matches_cpu(
          [=](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{reduce(op, broadcast_to(slice(in[0], 1, 0, 1), {6, 4, 13}), axes, true)};
          },
          {x}, {1e-5, 1e-5}, ("broadcast " + label(op, axes, true)).c_str());
    }
}

TEST(CudaReduce, LongRowsAndColumnsTakeTheSplitPaths) {
  EMBER_REQUIRE_GPU();
  Generator gen(13);
  // Few long rows (split rows), one huge full reduction, few wide columns over many rows.
  Tensor rows = randn({3, 100003}, DType::f32, Device::cpu(), &gen);
  Tensor big = randn({1 << 21}, DType::f32, Device::cpu(), &gen);
  Tensor cols = randn({20011, 40}, DType::f32, Device::cpu(), &gen);
  Tensor mid = randn({2, 3001, 3}, DType::f32, Device::cpu(), &gen);
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min}) {
    expect_cuda_matches_cpu(reduce_fn(op, {-1}, false), {rows}, {1e-4, 1e-3, false}, label(op, {-1}, false).c_str());
    expect_cuda_matches_cpu(reduce_fn(op, {}, false), {big}, {1e-4, 1e-2, false}, label(op, {}, false).c_str());
    expect_cuda_matches_cpu(reduce_fn(op, {0}, true), {cols}, {1e-4, 1e-3, false}, label(op, {0}, true).c_str());
    expect_cuda_matches_cpu(reduce_fn(op, {1}, false), {mid}, {1e-4, 1e-3}, label(op, {1}, false).c_str());
  }
  // Rows between one warp and one block of 1024 threads.
  Tensor medium = randn({9, 2500}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(reduce_fn(ReduceOp::sum, {1}, false), {medium}, {1e-5, 1e-4}, "sum medium rows");
}

TEST(CudaReduce, EveryDtype) {
  EMBER_REQUIRE_GPU();
  Generator gen(14);
  Tensor f = randn({7, 33}, DType::f32, Device::cpu(), &gen);
  Tensor ints = randint(-50, 50, {7, 33}, Device::cpu(), &gen);
  Tensor bytes = randint(0, 256, {7, 33}, Device::cpu(), &gen);
  Tensor small = randint(1, 3, {5, 9}, Device::cpu(), &gen);  // products of 1s and 2s: exact, wrapping in int32
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::prod})
    for (const Axes& axes : std::vector<Axes>{{0}, {1}, {}}) {
      std::string what = label(op, axes, false);
      Tensor fin = op == ReduceOp::prod ? f * 0.1 + 1.0 : f;
      expect_cuda_matches_cpu(reduce_fn(op, axes, false), {cast(fin, DType::f64)}, {1e-12, 1e-12}, (what + " f64").c_str());
      expect_cuda_matches_cpu(reduce_fn(op, axes, false), {cast(fin, DType::bf16)}, {3e-2, 3e-2}, (what + " bf16").c_str());
      expect_cuda_matches_cpu(reduce_fn(op, axes, false), {cast(fin, DType::f16)}, {5e-3, 5e-3}, (what + " f16").c_str());
      Tensor iin = op == ReduceOp::prod ? small : ints;
      expect_cuda_matches_cpu(reduce_fn(op, axes, false), {iin}, {0, 0}, (what + " i64").c_str());
      expect_cuda_matches_cpu(reduce_fn(op, axes, false), {cast(iin, DType::i32)}, {0, 0}, (what + " i32").c_str());
      expect_cuda_matches_cpu(reduce_fn(op, axes, false), {cast(op == ReduceOp::prod ? small : bytes, DType::u8)},
                              {0, 0}, (what + " u8").c_str());
    }
  // sum() widens integers and bools to int64.
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(in[0], {1})}; },
                          {cast(bytes, DType::u8)}, {0, 0}, "sum u8 -> i64");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(gt(in[0], scalar_like(0.0, in[0])), {0})}; },
      {f}, {0, 0, false}, "sum bool -> i64");
}

TEST(CudaReduce, NanAndInfinity) {
  EMBER_REQUIRE_GPU();
  const double nan = std::nan(""), inf = INFINITY;
  Tensor x = tensor({1, nan, 3, -inf, 2, 5, inf, -1, 0, 4, nan, nan}, {3, 4});
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::prod})
    for (const Axes& axes : std::vector<Axes>{{0}, {1}, {}})
      expect_cuda_matches_cpu(reduce_fn(op, axes, false), {x}, {0, 0, false}, label(op, axes, false).c_str());
  for (bool is_max : {true, false})
    for (int64_t axis : {0, 1})
      expect_cuda_matches_cpu(
          [=](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{is_max ? argmax(in[0], axis) : argmin(in[0], axis)};
          },
          {x}, {0, 0, false}, is_max ? "argmax nan" : "argmin nan");
}

TEST(CudaReduce, EmptyAndZeroDimensional) {
  EMBER_REQUIRE_GPU();
  Tensor e = zeros({3, 0, 4});
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::prod})
    for (const Axes& axes : std::vector<Axes>{{1}, {0}, {}, {1, 2}})
      expect_cuda_matches_cpu(reduce_fn(op, axes, true), {e}, {0, 0}, label(op, axes, true).c_str());
  EXPECT_ERROR(max(to_device(e, Device::cuda(0)), {1}), "[max]");
  Tensor s = scalar(2.5);
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::prod}) {
    expect_cuda_matches_cpu(reduce_fn(op, {}, false), {s}, {0, 0}, label(op, {}, false).c_str());
    expect_cuda_matches_cpu(reduce_fn(op, {-1}, true), {s}, {0, 0}, label(op, {-1}, true).c_str());
  }
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return std::vector<Tensor>{argmax(in[0], 0)}; }, {s},
                          {0, 0}, "argmax 0-d");
}

TEST(CudaReduce, ArgmaxArgminTiesAxesAndDtypes) {
  EMBER_REQUIRE_GPU();
  Generator gen(15);
  Tensor ties = randint(0, 4, {6, 45, 7}, Device::cpu(), &gen);  // many equal values: the first index wins
  Tensor f = randn({6, 45, 7}, DType::f32, Device::cpu(), &gen);
  for (bool is_max : {true, false})
    for (int64_t axis : {0, 1, 2, -1})
      for (bool keepdim : {false, true}) {
        auto fn = [=](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{is_max ? argmax(in[0], axis, keepdim) : argmin(in[0], axis, keepdim)};
        };
        const char* what = is_max ? "argmax" : "argmin";
        expect_cuda_matches_cpu(fn, {ties}, {0, 0}, what);
        expect_cuda_matches_cpu(fn, {cast(ties, DType::i32)}, {0, 0}, what);
        expect_cuda_matches_cpu(fn, {cast(ties, DType::u8)}, {0, 0}, what);
        expect_cuda_matches_cpu(fn, {cast(ties, DType::bf16)}, {0, 0}, what);
        expect_cuda_matches_cpu(fn, {f}, {0, 0}, what);
        expect_cuda_matches_cpu(fn, {cast(f, DType::f64)}, {0, 0}, what);
        expect_cuda_matches_cpu(fn, {transpose(f, 0, 2)}, {0, 0}, what);
      }
  // A vocabulary-sized row (a block per row) with a tie between two maxima.
  Tensor logits = randn({3, 50257}, DType::f32, Device::cpu(), &gen);
  std::vector<float> v = logits.to_vector<float>();
  v[size_t(1 * 50257 + 40000)] = 100.0f;
  v[size_t(1 * 50257 + 45000)] = 100.0f;
  v[size_t(2 * 50257 + 50256)] = -100.0f;
  std::vector<double> vd(v.begin(), v.end());
  Tensor l2 = tensor(vd, {3, 50257});
  for (bool is_max : {true, false})
    expect_cuda_matches_cpu(
        [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{is_max ? argmax(in[0], -1) : argmin(in[0], -1)}; },
        {l2}, {0, 0}, "arg over a vocabulary row");
  EXPECT_EQ(argmax(to_device(l2, Device::cuda(0)), -1).to_vector<int64_t>()[1], 40000);
}

}  // namespace
}  // namespace ember
