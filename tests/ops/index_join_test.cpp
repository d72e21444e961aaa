// Tests for concat, stack, split and chunk: values, views, gradients, errors.
#include "index_test_util.h"

using namespace ember;

TEST(IndexJoin, ConcatValues) {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({5, 6}, {1, 2});
  Tensor c = concat({a, b}, 0);
  EXPECT_EQ(c.shape(), (Shape{3, 2}));
  EXPECT_EQ(fvec(c), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor d = concat({a, tensor({7, 8, 9, 10, 11, 12}, {2, 3})}, -1);
  EXPECT_EQ(d.shape(), (Shape{2, 5}));
  EXPECT_EQ(fvec(d), (std::vector<float>{1, 2, 7, 8, 9, 3, 4, 10, 11, 12}));
  // Strided (transposed) inputs are read in logical order.
  Tensor t = concat({transpose(a, 0, 1), a}, 1);
  EXPECT_EQ(fvec(t), (std::vector<float>{1, 3, 1, 2, 2, 4, 3, 4}));
  // Empty pieces are fine.
  EXPECT_EQ(fvec(concat({zeros({0, 2}), a}, 0)), fvec(a));
}

TEST(IndexJoin, ConcatPromotesDtypes) {
  Tensor i = tensor_i64({1, 2}, {2});
  Tensor f = tensor({0.5}, {1}, DType::f32);
  Tensor c = concat({i, f}, 0);
  EXPECT_EQ(c.dtype(), DType::f32);
  EXPECT_EQ(fvec(c), (std::vector<float>{1, 2, 0.5f}));
  Tensor bf = concat({tensor({1, 2}, {2}, DType::bf16), tensor({3}, {1}, DType::bf16)}, 0);
  EXPECT_EQ(bf.dtype(), DType::bf16);
  EXPECT_EQ(fvec(bf), (std::vector<float>{1, 2, 3}));
}

TEST(IndexJoin, ConcatGradcheck) {
  Generator gen(1);
  Tensor a = randn({2, 3}, DType::f64, Device::cpu(), &gen);
  Tensor b = randn({2, 1}, DType::f64, Device::cpu(), &gen);
  Tensor c = randn({2, 2}, DType::f64, Device::cpu(), &gen);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return concat({x[0], x[1], x[2]}, 1) * concat({x[2], x[0], x[1]}, 1); },
                   (std::vector<Tensor>{a, b, c}));
  EXPECT_GRADCHECK([](const std::vector<Tensor>& x) { return concat({x[0], x[0]}, 0); }, (std::vector<Tensor>{a}));
}

TEST(IndexJoin, ConcatErrors) {
  Tensor a = zeros({2, 3});
  EXPECT_EMBER_ERROR(concat({}, 0), "[concat]", "at least one");
  EXPECT_EMBER_ERROR(concat({a, zeros({3, 2})}, 0), "[concat]", "tensor 1", "[3, 2]");
  EXPECT_EMBER_ERROR(concat({a, zeros({2, 3, 1})}, 0), "[concat]", "tensor 1");
  EXPECT_EMBER_ERROR(concat({a, a}, 2), "[concat]", "axis 2");
  EXPECT_EMBER_ERROR(concat({scalar(1), scalar(2)}, 0), "[concat]", "0-D");
  EXPECT_EMBER_ERROR(concat({a, Tensor()}, 0), "[concat]", "undefined");
}

TEST(IndexJoin, StackValuesAndGradcheck) {
  Tensor a = tensor({1, 2, 3}, {3});
  Tensor b = tensor({4, 5, 6}, {3});
  Tensor s0 = stack({a, b}, 0);
  EXPECT_EQ(s0.shape(), (Shape{2, 3}));
  EXPECT_EQ(fvec(s0), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor s1 = stack({a, b}, -1);
  EXPECT_EQ(s1.shape(), (Shape{3, 2}));
  EXPECT_EQ(fvec(s1), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(stack({scalar(1), scalar(2)}, 0).shape(), (Shape{2}));
  Generator gen(2);
  Tensor x = randn({2, 2}, DType::f64, Device::cpu(), &gen);
  Tensor y = randn({2, 2}, DType::f64, Device::cpu(), &gen);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return stack({v[0], v[1] * v[0]}, 1); },
                   (std::vector<Tensor>{x, y}));
}

TEST(IndexJoin, StackErrors) {
  EXPECT_EMBER_ERROR(stack({}, 0), "[stack]", "at least one");
  EXPECT_EMBER_ERROR(stack({zeros({2}), zeros({3})}, 0), "[stack]", "tensor 1", "[3]", "[2]");
  EXPECT_EMBER_ERROR(stack({zeros({2}), zeros({2})}, 2), "[stack]", "axis 2");
}

TEST(IndexJoin, SplitIsViews) {
  Tensor x = reshape(arange(0.0, 12.0, 1.0, DType::f32), {2, 6});
  std::vector<Tensor> parts = split(x, {1, 2, 3}, 1);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(fvec(parts[1]), (std::vector<float>{1, 2, 7, 8}));
  EXPECT_EQ(fvec(parts[2]), (std::vector<float>{3, 4, 5, 9, 10, 11}));
  for (const Tensor& p : parts) EXPECT_EQ(p.storage(), x.storage());
  EXPECT_EQ(split(x, {0, 2}, 0)[0].shape(), (Shape{0, 6}));
}

TEST(IndexJoin, SplitGradcheck) {
  Generator gen(3);
  Tensor x = randn({3, 5}, DType::f64, Device::cpu(), &gen);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& v) {
        std::vector<Tensor> p = split(v[0], {2, 3}, -1);
        return concat({p[1] * 2.0, p[0] * p[0]}, 1);
      },
      (std::vector<Tensor>{x}));
}

TEST(IndexJoin, SplitErrors) {
  Tensor x = zeros({2, 6});
  EXPECT_EMBER_ERROR(split(x, {2, 3}, 1), "[split]", "add up to 5", "size 6");
  EXPECT_EMBER_ERROR(split(x, {7, -1}, 1), "[split]", "non-negative");
  EXPECT_EMBER_ERROR(split(x, {6}, 2), "[split]", "axis 2");
  EXPECT_EMBER_ERROR(split(scalar(1), {1}, 0), "[split]", "0-D");
}

TEST(IndexJoin, ChunkMatchesTorch) {
  auto sizes = [](const std::vector<Tensor>& parts) {
    std::vector<int64_t> s;
    for (const Tensor& p : parts) s.push_back(p.shape(0));
    return s;
  };
  EXPECT_EQ(sizes(chunk(arange(5), 3, 0)), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(sizes(chunk(arange(6), 4, 0)), (std::vector<int64_t>{2, 2, 2}));  // fewer pieces than asked
  EXPECT_EQ(sizes(chunk(arange(6), 3, 0)), (std::vector<int64_t>{2, 2, 2}));
  EXPECT_EQ(sizes(chunk(arange(2), 5, 0)), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(sizes(chunk(zeros({0}), 3, 0)), (std::vector<int64_t>{0, 0, 0}));
  Tensor q = chunk(reshape(arange(12), {2, 6}), 3, -1)[2];
  EXPECT_EQ(ivec(q), (std::vector<int64_t>{4, 5, 10, 11}));
  EXPECT_EMBER_ERROR(chunk(arange(4), 0, 0), "[chunk]", "positive", "0");
  EXPECT_EMBER_ERROR(chunk(arange(4), 2, 1), "[chunk]", "axis 1");
}
