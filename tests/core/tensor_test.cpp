// Tests for tensors: creation, dtypes, views, printing, read-back.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>

#include "ember/ember.h"
#include "test_util.h"

using namespace ember;

TEST(Tensor, CreateAndReadBack) {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kCpuAlignment, 0u);
}

TEST(Tensor, TransposeIsAViewAndReadsStrided) {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor tt = transpose(t, 0, 1);
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_EQ(tt.storage(), t.storage());
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  Tensor c = contiguous(tt);
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage(), t.storage());
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Tensor, ReshapeOfTransposedCopies) {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = reshape(transpose(t, 0, 1), {6});
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  Tensor v = reshape(t, {3, 2});
  EXPECT_EQ(v.storage(), t.storage());
}

TEST(Tensor, SliceExpandSqueeze) {
  Tensor t = arange(0.0, 12.0, 1.0, DType::f32);
  Tensor m = reshape(t, {3, 4});
  Tensor s = slice(m, 1, 1, 4, 2);
  EXPECT_EQ(s.shape(), (Shape{3, 2}));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 3, 5, 7, 9, 11}));
  EXPECT_EQ(slice(m, 0, -1, 100).to_vector<float>(), (std::vector<float>{8, 9, 10, 11}));
  Tensor e = broadcast_to(tensor({1, 2}, {2, 1}), {2, 3});
  EXPECT_EQ(e.to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(unsqueeze(t, 0).shape(), (Shape{1, 12}));
  EXPECT_EQ(squeeze(unsqueeze(t, 1)).shape(), (Shape{12}));
  EXPECT_EQ(select(m, 1, -1).to_vector<float>(), (std::vector<float>{3, 7, 11}));
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor t = tensor({1.5, -2.25, 3.0e5, 1e-3}, {4}, DType::f32);
  EXPECT_EQ(cast(t, DType::bf16).to_vector<float>()[0], 1.5f);
  EXPECT_EQ(cast(t, DType::f16).to_vector<float>()[1], -2.25f);
  EXPECT_EQ(cast(t, DType::i32).to_vector<int32_t>()[1], -2);
  EXPECT_EQ(cast(t, DType::b8).to_vector<bool>()[0], true);
  EXPECT_FLOAT_EQ(float16(65504.0f), 65504.0f);
  EXPECT_EQ(float16::from_float(1e-8f), 0);  // underflows to zero
  EXPECT_EQ(bfloat16(1.00390625f).bits, bfloat16(1.0f).bits);  // ties to even
}

TEST(Tensor, PrintShowsShapeDtypeDevice) {
  std::string s = tensor({1, 2, 3, 4}, {2, 2}).str();
  EXPECT_NE(s.find("shape=[2, 2]"), std::string::npos);
  EXPECT_NE(s.find("dtype=float32"), std::string::npos);
  EXPECT_NE(s.find("device=cpu"), std::string::npos);
  EXPECT_NE(s.find("[[1, 2],"), std::string::npos);
  std::string big = zeros({100, 100}).str();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 2000u);
}

TEST(Tensor, BadInputGivesErrors) {
  EXPECT_THROW(tensor({1, 2, 3}, {2, 2}), Error);
  EXPECT_THROW(reshape(zeros({2, 3}), {4}), Error);
  EXPECT_THROW(transpose(zeros({2, 3}), 0, 2), Error);
  EXPECT_THROW(zeros({2, 3}) + zeros({4}), Error);
  EXPECT_THROW(zeros({2}).item(), Error);
  EXPECT_THROW(Device::parse("tpu"), Error);
  try {
    zeros({2, 3}) + zeros({4});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[add] shapes [2, 3] and [4] cannot be broadcast"), std::string::npos);
  }
}

TEST(Random, SeededAndRestorable) {
  manual_seed(42);
  Tensor a = randn({1000});
  GeneratorState st = default_generator().state();
  Tensor b = rand({10});
  default_generator().set_state(st);
  Tensor c = rand({10});
  EXPECT_EQ(b.to_vector<float>(), c.to_vector<float>());
  manual_seed(42);
  EXPECT_EQ(randn({1000}).to_vector<float>(), a.to_vector<float>());
  double m = mean(a).item(), v = var(a).item();
  EXPECT_NEAR(m, 0.0, 0.1);
  EXPECT_NEAR(v, 1.0, 0.1);
  Tensor r = randint(3, 7, {1000});
  EXPECT_GE(min(r).item(), 3);
  EXPECT_LE(max(r).item(), 6);
  double frac = mean(cast(bernoulli_mask({10000}, 0.3), DType::f32)).item();
  EXPECT_NEAR(frac, 0.3, 0.02);
}

TEST(Tensor, AccessorsAndErrors) {
  Tensor t = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.shape(-1), 3);
  EXPECT_EQ(t.shape(0), 2);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.itemsize(), 4u);
  EXPECT_THROW(t.shape(2), Error);
  EXPECT_THROW(scalar(1).shape(0), Error);  // a 0-d tensor has no axes to ask about
  EXPECT_THROW(t.data<double>(), Error);
  try {
    t.data<int64_t>();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "[tensor] data<int64>() called on a float32 tensor");
  }
  EXPECT_THROW(Tensor().shape(), Error);
  EXPECT_THROW(Tensor::empty({2, -1}), Error);
  EXPECT_THROW(Tensor::unallocated({2}, DType::f32, Device::cpu()).raw_data(), Error);
  EXPECT_THROW(copy_bytes(zeros({2}), zeros({3})), Error);
  EXPECT_EQ(scalar(2.5, DType::f64).item<double>(), 2.5);
  EXPECT_EQ(scalar(7, DType::i32).item<int64_t>(), 7);
  EXPECT_EQ(tensor_i64({1, 2}, {2}).dtype(), DType::i64);
  EXPECT_THROW(tensor_i64({1, 2}, {3}), Error);
}

TEST(Tensor, ReadBackFollowsStridesAndOffsets) {
  Tensor base = reshape(arange(0.0, 24.0, 1.0, DType::f64), {2, 3, 4});
  Tensor v = slice(permute(base, {2, 0, 1}), 0, 1, 4, 2);  // [2, 2, 3], offset 1
  EXPECT_EQ(v.offset(), 1);
  EXPECT_EQ(v.to_vector<double>(), (std::vector<double>{1, 5, 9, 13, 17, 21, 3, 7, 11, 15, 19, 23}));
  EXPECT_EQ(v.to_vector<int32_t>()[1], 5);
  EXPECT_EQ(cast(v, DType::bf16).to_vector<bfloat16>()[2].bits, bfloat16(9.0f).bits);
  EXPECT_EQ(select(select(v, 0, 1), 0, 1).to_vector<float>(), (std::vector<float>{15, 19, 23}));
  EXPECT_EQ(zeros({0, 3}).to_vector<float>().size(), 0u);
  // str() prints a strided view in logical order.
  EXPECT_NE(transpose(tensor({1, 2, 3, 4}, {2, 2}), 0, 1).str().find("[[1, 3],"), std::string::npos);
}

TEST(Tensor, DetachSharesStorageWithoutHistory) {
  Tensor x = tensor({1, 2}, {2}, DType::f64);
  x.requires_grad_();
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  EXPECT_EQ(d.storage(), y.storage());
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.grad_fn(), nullptr);
  EXPECT_NE(y.str().find("requires_grad"), std::string::npos);
}

TEST(Random, UniformStaysBelowHighInEveryFloatType) {
  // A double just below `high` rounds up to it in a narrower type; bfloat16 has
  // only 8 significant bits, so among 20k draws from [0, 1) about 40 would be 1.0.
  Generator g(3);
  for (DType dt : {DType::bf16, DType::f16, DType::f32, DType::f64}) {
    Tensor u = uniform({20000}, 0.0, 1.0, dt, Device::cpu(), &g);
    EXPECT_LT(max(u).item<double>(), 1.0) << dtype_name(dt);
    EXPECT_GE(min(u).item<double>(), 0.0) << dtype_name(dt);
  }
  Tensor n = uniform({20000}, -3.0, -2.0, DType::bf16, Device::cpu(), &g);
  EXPECT_LT(max(n).item<double>(), -2.0);
  EXPECT_GE(min(n).item<double>(), -3.0);
  Tensor z = uniform({1000}, -1.0, 0.0, DType::bf16, Device::cpu(), &g);
  EXPECT_LT(max(z).item<double>(), 0.0);
  EXPECT_EQ(uniform({3}, 2.0, 2.0, DType::f32, Device::cpu(), &g).to_vector<float>(), (std::vector<float>{2, 2, 2}));
}

TEST(Random, IndependentOfThreadCountAndArgumentErrors) {
  Generator a(9), b(9);
  Tensor x = randn({50000}, DType::f32, Device::cpu(), &a);
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor y = randn({50000}, DType::f32, Device::cpu(), &b);
  omp_set_num_threads(threads);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  EXPECT_THROW(uniform({2}, 1.0, 0.0), Error);
  EXPECT_THROW(normal({2}, 0.0, -1.0), Error);
  EXPECT_THROW(randn({2}, DType::i64), Error);
  EXPECT_THROW(randint(5, 5, {2}), Error);
  EXPECT_THROW(bernoulli_mask({2}, 1.5), Error);
  EXPECT_THROW(randn({-1}), Error);
  Tensor r = randint(-2, 2, {10000});
  EXPECT_EQ(r.dtype(), DType::i64);
  EXPECT_EQ(min(r).item<int64_t>(), -2);
  EXPECT_EQ(max(r).item<int64_t>(), 1);
}

TEST(Creation, ValuesAndErrors) {
  EXPECT_EQ(full({2, 2}, 3.5).to_vector<float>(), (std::vector<float>{3.5, 3.5, 3.5, 3.5}));
  EXPECT_EQ(zeros({3}, DType::i64).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(ones({2}, DType::b8).to_vector<bool>(), (std::vector<bool>{true, true}));
  EXPECT_EQ(full_like(tensor({1, 2}, {2}, DType::bf16), -2).to_vector<float>(), (std::vector<float>{-2, -2}));
  EXPECT_EQ(zeros_like(tensor({1, 2}, {2}, DType::f64)).dtype(), DType::f64);
  EXPECT_EQ(ones_like(scalar(1)).shape(), Shape{});
  EXPECT_EQ(arange(5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(5).dtype(), DType::i64);
  EXPECT_EQ(arange(1.0, 2.0, 0.25, DType::f32).to_vector<float>(), (std::vector<float>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(arange(5.0, 0.0, -2.0, DType::f64).to_vector<double>(), (std::vector<double>{5, 3, 1}));
  EXPECT_EQ(arange(3.0, 3.0).numel(), 0);
  EXPECT_EQ(eye(3).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(eye(0).shape(), (Shape{0, 0}));
  EXPECT_FALSE(full({2}, 1.0, DType::f64).requires_grad());

  EXPECT_ERROR(arange(0.0, 1.0, 0.0), "[arange] needs finite start/stop and a non-zero step");
  EXPECT_ERROR(arange(0.0, INFINITY), "[arange]");
  EXPECT_ERROR(eye(-1), "[eye] size must be non-negative, got -1");
  EXPECT_ERROR(zeros({2, -3}), "[empty] negative dimension in shape [2, -3]");
  EXPECT_ERROR(uniform({2}, 1.0, 0.0), "[uniform]");
  EXPECT_ERROR(normal({2}, 0.0, -1.0), "[normal]");
  EXPECT_ERROR(randint(2, 1, {2}), "[randint] empty range [2, 1)");
  EXPECT_ERROR(bernoulli_mask({2}, -0.1), "[bernoulli]");
  EXPECT_ERROR(rand({2}, DType::i32), "[uniform] needs a floating-point dtype, got int32");
}
