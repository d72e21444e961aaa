// CUDA indexing kernels against the CPU kernels: index_select and embedding
// (forward, and the atomic scatter-add gradient, also at GPT-2's vocabulary
// size), gather / scatter_add over strided views and every accumulating dtype,
// one_hot, tril / triu and cumsum; out-of-range indices give the CPU's error.
#include <functional>
#include <string>

#include "cuda/cuda_test_util.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_cuda_matches_cpu;

std::vector<Tensor> one(const Tensor& t) { return {t}; }

// Random int64 indices in [0, n) of `shape`.
Tensor random_index(const Shape& shape, int64_t n, uint64_t seed) {
  Generator gen(seed);
  return randint(0, n, shape, Device::cpu(), &gen);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The op throws on both devices, with the same message.
void expect_same_error(const std::function<void(Device)>& f, const std::string& prefix) {
  std::string cpu = error_of([&] { f(Device::cpu()); });
  std::string gpu = error_of([&] { f(Device::cuda(0)); });
  EXPECT_EQ(cpu.rfind(prefix, 0), 0u) << "cpu: " << cpu;
  EXPECT_EQ(gpu, cpu);
}

TEST(CudaIndex, IndexSelectEveryAxisWithRepeatsMatchesCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(1);
  Tensor x = randn({7, 37, 5}, DType::f32, Device::cpu(), &gen);
  Tensor idx = tensor_i64({0, 36, 3, 3, 11, 3, 20}, {7});
  for (int64_t axis : {0, 1, 2, -1}) {
    int64_t n = x.shape(axis);
    Tensor index = tensor_i64({0, n - 1, 1 % n, 1 % n, n / 2}, {5});
    expect_cuda_matches_cpu(
        [axis](const std::vector<Tensor>& in) { return one(index_select(in[0], axis, in[1])); }, {x, index}, {},
        ("index_select axis " + std::to_string(axis)).c_str());
  }
  // int32 indices, a transposed (strided) input, a 0-D index, an empty index.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(index_select(transpose(in[0], 0, 1), 0, in[1])); },
      {x, cast(idx, DType::i32)}, {}, "index_select strided i32");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(index_select(in[0], 1, in[1])); },
                          {x, tensor_i64({4}, {})}, {}, "index_select 0-D index");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(index_select(in[0], 1, in[1])); },
                          {x, tensor_i64({}, {0})}, {}, "index_select empty index");
  // Every dtype moves bit for bit (1-, 2-, 4- and 8-byte words).
  for (DType dt : {DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::b8})
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(index_select(in[0], 1, in[1])); },
                            {cast(x * 3.0, dt), idx}, {0, 0, false}, dtype_name(dt).c_str());
  // bf16 gradient: float scratch accumulation, rounded once.
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(index_select(in[0], 1, in[1])); },
                          {cast(x, DType::bf16), idx}, {1e-2, 1e-2}, "index_select bf16");
}

TEST(CudaIndex, EmbeddingForwardAndAtomicBackwardMatchCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(2);
  // Odd row width (4-byte words) and repeated ids.
  Tensor w = randn({1003, 67}, DType::f32, Device::cpu(), &gen);
  Tensor ids = random_index({5, 31}, 30, 3);  // many repeats within 30 rows
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(embedding(in[0], in[1])); }, {w, ids}, {},
                          "embedding odd width");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(embedding(in[0], in[1])); },
                          {w, cast(ids, DType::i32)}, {}, "embedding i32 ids");
  // GPT-2's vocabulary: 16-byte words, a table bigger than any block.
  Tensor big = randn({50257, 96}, DType::f32, Device::cpu(), &gen);
  Tensor tok = random_index({4, 129}, 50257, 4);
  Tensor hot = concat({tok, full({4, 7}, 50256, DType::i64), zeros({4, 3}, DType::i64)}, 1);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(embedding(in[0], in[1])); }, {big, hot},
                          {1e-5, 1e-5}, "embedding vocab 50257");
  for (DType dt : {DType::bf16, DType::f16, DType::f64})
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(embedding(in[0], in[1])); },
                            {cast(randn({211, 768}, DType::f32, Device::cpu(), &gen), dt), random_index({3, 65}, 50, 5)},
                            {1e-2, 1e-2}, ("embedding " + dtype_name(dt)).c_str());
  // No ids: an empty output and a zero gradient.
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(embedding(in[0], in[1])); },
                          {w, tensor_i64({}, {0, 3})}, {}, "embedding no ids");
}

TEST(CudaIndex, GatherAndScatterAddMatchCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(6);
  Tensor x = randn({6, 9, 5}, DType::f32, Device::cpu(), &gen);
  for (int64_t axis : {0, 1, 2}) {
    Shape s = {4, 4, 3};
    s[size_t(axis)] = 7;  // longer than x along the axis: repeats
    Tensor index = random_index(s, x.shape(axis), 7 + uint64_t(axis));
    expect_cuda_matches_cpu([axis](const std::vector<Tensor>& in) { return one(gather(in[0], axis, in[1])); },
                            {x, index}, {}, ("gather axis " + std::to_string(axis)).c_str());
  }
  // A permuted (strided) source and int32 indices; a negative axis.
  Tensor idx = random_index({5, 4, 6}, 9, 8);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(gather(permute(in[0], {2, 1, 0}), 1, in[1])); },
      {x, cast(idx, DType::i32)}, {}, "gather strided");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(gather(in[0], -2, in[1])); },
                          {cast(x, DType::bf16), random_index({6, 11, 5}, 9, 9)}, {1e-2, 1e-2}, "gather bf16");

  // scatter_add: gradients of both x and src; src larger than index (narrowed).
  Tensor sidx = random_index({4, 12, 3}, 9, 10);
  Tensor src = randn({5, 12, 4}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(scatter_add(in[0], 1, in[1], in[2])); }, {x, sidx, src}, {},
      "scatter_add");
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return one(scatter_add(in[0], 1, in[1], transpose(in[2], 0, 2))); },
      {x, sidx, randn({3, 12, 4}, DType::f32, Device::cpu(), &gen)}, {}, "scatter_add strided src");
  // Every accumulating dtype: float atomics, float scratch for 16-bit, integer
  // atomics, compare-and-swap bytes (u8 wraps like the CPU).
  Tensor ints = cast(randint(0, 200, {6, 9, 5}, Device::cpu(), &gen), DType::f32);
  Tensor isrc = cast(randint(0, 200, {4, 12, 3}, Device::cpu(), &gen), DType::f32);
  for (DType dt : {DType::f64, DType::i32, DType::i64, DType::u8})
    expect_cuda_matches_cpu(
        [dt](const std::vector<Tensor>& in) {
          return one(scatter_add(cast(in[0], dt), 1, in[1], cast(in[2], dt)));
        },
        {ints, sidx, isrc}, {0, 0, false}, ("scatter_add " + dtype_name(dt)).c_str());
  for (DType dt : {DType::bf16, DType::f16})
    expect_cuda_matches_cpu(
        [dt](const std::vector<Tensor>& in) { return one(scatter_add(cast(in[0], dt), 1, in[1], cast(in[2], dt))); },
        {x, sidx, src}, {1e-2, 1e-2}, ("scatter_add " + dtype_name(dt)).c_str());
}

TEST(CudaIndex, OneHotAndTrianglesMatchCpu) {
  EMBER_REQUIRE_GPU();
  Tensor ids = random_index({3, 7}, 11, 11);
  for (DType dt : {DType::f32, DType::bf16, DType::i64, DType::u8, DType::b8})
    expect_cuda_matches_cpu([dt](const std::vector<Tensor>& in) { return one(one_hot(in[0], 11, dt)); }, {ids},
                            {0, 0, false}, ("one_hot " + dtype_name(dt)).c_str());
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(one_hot(in[0], 11)); },
                          {cast(ids, DType::i32)}, {0, 0, false}, "one_hot i32 ids");

  Generator gen(12);
  Tensor x = randn({3, 5, 7}, DType::f32, Device::cpu(), &gen);
  for (int64_t k : {-100, -2, 0, 3, 100}) {
    expect_cuda_matches_cpu([k](const std::vector<Tensor>& in) { return one(tril(in[0], k)); }, {x}, {},
                            ("tril " + std::to_string(k)).c_str());
    expect_cuda_matches_cpu([k](const std::vector<Tensor>& in) { return one(triu(in[0], k)); }, {x}, {},
                            ("triu " + std::to_string(k)).c_str());
  }
  // A strided input (made contiguous first), bf16, and a bool causal mask.
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(triu(transpose(in[0], 1, 2), 1)); }, {x}, {},
                          "triu strided");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(tril(in[0], -1)); },
                          {cast(x, DType::bf16)}, {0, 0}, "tril bf16");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(tril(in[0])); },
                          {ones({129, 129}, DType::b8)}, {0, 0, false}, "tril bool");
}

TEST(CudaIndex, CumsumMatchesCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(13);
  // A long innermost axis (block scan over several tiles) and its gradient (the reverse scan).
  Tensor rows = randn({5, 5000}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(cumsum(in[0], 1)); }, {rows}, {1e-5, 1e-4},
                          "cumsum long rows");
  // Outer axes (one thread per line), negative axis, a strided input.
  Tensor x = randn({6, 37, 5}, DType::f32, Device::cpu(), &gen);
  for (int64_t axis : {0, 1, -1})
    expect_cuda_matches_cpu([axis](const std::vector<Tensor>& in) { return one(cumsum(in[0], axis)); }, {x},
                            {1e-5, 1e-5}, ("cumsum axis " + std::to_string(axis)).c_str());
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(cumsum(transpose(in[0], 0, 2), 1)); }, {x},
                          {1e-5, 1e-5}, "cumsum strided");
  // Integers widen to int64; f64; bf16; a 0-D input.
  Tensor ints = randint(-50, 50, {4, 3001}, Device::cpu(), &gen);
  for (DType dt : {DType::i32, DType::i64, DType::u8, DType::b8})
    expect_cuda_matches_cpu([dt](const std::vector<Tensor>& in) { return one(cumsum(cast(in[0], dt), -1)); },
                            {ints}, {0, 0, false}, ("cumsum " + dtype_name(dt)).c_str());
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(cumsum(in[0], 1)); },
                          {cast(rows, DType::f64)}, {1e-12, 1e-12}, "cumsum f64");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(cumsum(in[0], 0)); },
                          {cast(x, DType::bf16)}, {1e-2, 1e-2}, "cumsum bf16");
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return one(cumsum(in[0], 0)); },
                          {scalar(2.5)}, {}, "cumsum 0-D");
}

TEST(CudaIndex, OutOfRangeIndicesGiveTheCpuError) {
  EMBER_REQUIRE_GPU();
  Tensor x = randn({7, 4});
  auto on = [](const Tensor& t, Device d) { return to_device(t, d); };
  expect_same_error([&](Device d) { index_select(on(x, d), 0, on(tensor_i64({1, 9, -2}, {3}), d)); },
                    "[index_select] index 9 is out of range [0, 7)");
  expect_same_error([&](Device d) { index_select(on(x, d), 1, on(tensor_i64({-1}, {1}), d)); },
                    "[index_select] index -1 is out of range [0, 4)");
  expect_same_error([&](Device d) { embedding(on(x, d), on(cast(tensor_i64({0, 7}, {2}), DType::i32), d)); },
                    "[embedding] index 7 is out of range [0, 7)");
  // An empty row still checks its indices.
  expect_same_error([&](Device d) { embedding(on(zeros({7, 0}), d), on(tensor_i64({3, 8}, {2}), d)); },
                    "[embedding] index 8 is out of range [0, 7)");
  expect_same_error([&](Device d) { gather(on(x, d), 1, on(tensor_i64({0, 4, 1, 2}, {2, 2}), d)); },
                    "[gather] index 4 is out of range [0, 4)");
  expect_same_error(
      [&](Device d) { scatter_add(on(x, d), 0, on(tensor_i64({0, 7}, {1, 2}), d), on(ones({1, 2}), d)); },
      "[scatter_add] index 7 is out of range [0, 7)");
  expect_same_error([&](Device d) { one_hot(on(tensor_i64({2, 5, 11}, {3}), d), 5); },
                    "[one_hot] index 5 is out of range [0, 5)");
  // The device is still usable after a reported bad index.
  Tensor g = to_device(x, Device::cuda(0));
  testing::expect_close(index_select(g, 0, to_device(tensor_i64({6, 0}, {2}), Device::cuda(0))),
                        index_select(x, 0, tensor_i64({6, 0}, {2})), {0, 0}, "after error");
}

}  // namespace
}  // namespace ember
