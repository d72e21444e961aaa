// Tests for index_select, gather, scatter_add, embedding, one_hot, tril/triu:
// hand-computed values (checked against PyTorch), float64 gradchecks, the
// determinism of the scatter-add gradients, and every argument error.
#include <omp.h>

#include "index_test_util.h"

using namespace ember;

namespace {
Tensor iota(const Shape& shape, DType dtype = DType::f32) {
  return reshape(arange(0.0, double(numel(shape)), 1.0, dtype), shape);
}
Tensor rnd(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, DType::f64, Device::cpu(), &gen);
}
}  // namespace

TEST(IndexOps, IndexSelectValues) {
  Tensor x = iota({3, 4});
  EXPECT_EQ(fvec(index_select(x, 0, tensor_i64({2, 0, 2}, {3}))), (std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11}));
  Tensor i32 = cast(tensor_i64({3, 1}, {2}), DType::i32);
  Tensor c = index_select(x, -1, i32);
  EXPECT_EQ(c.shape(), (Shape{3, 2}));
  EXPECT_EQ(fvec(c), (std::vector<float>{3, 1, 7, 5, 11, 9}));
  // Non-contiguous input, 0-D index, empty index.
  EXPECT_EQ(fvec(index_select(transpose(x, 0, 1), 0, tensor_i64({1}, {}))), (std::vector<float>{1, 5, 9}));
  EXPECT_EQ(index_select(x, 1, tensor_i64({}, {0})).shape(), (Shape{3, 0}));
  Tensor b = index_select(iota({2, 3, 2}, DType::i64), 1, tensor_i64({2, 2}, {2}));
  EXPECT_EQ(ivec(b), (std::vector<int64_t>{4, 5, 4, 5, 10, 11, 10, 11}));
}

TEST(IndexOps, IndexSelectGradcheck) {
  Tensor idx = tensor_i64({1, 1, 0, 3, 1}, {5});  // repeats accumulate
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return index_select(v[0], 1, idx); },
                   (std::vector<Tensor>{rnd({2, 4, 3}, 1)}));
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return index_select(v[0], 0, idx); },
                   (std::vector<Tensor>{rnd({4, 3}, 2)}));
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return index_select(v[0], -1, idx); },
                   (std::vector<Tensor>{rnd({2, 4}, 3)}));
}

TEST(IndexOps, IndexSelectSecondOrder) {
  // The gradient (an index-add) is itself differentiable.
  Tensor idx = tensor_i64({0, 2, 2}, {3});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& v) {
        GradModeGuard on(true);  // gradcheck evaluates fn under no_grad for the finite differences
        Tensor y = index_select(v[0], 0, idx);
        Tensor g = grad({sum(y * y * y)}, {v[0]}, {}, true, true)[0];
        return g;
      },
      (std::vector<Tensor>{rnd({3, 2}, 4)}));
}

TEST(IndexOps, IndexSelectErrors) {
  Tensor x = zeros({3, 4});
  EXPECT_EMBER_ERROR(index_select(x, 0, tensor_i64({0, 3}, {2})), "[index_select]", "index 3", "[0, 3)", "dimension 0");
  EXPECT_EMBER_ERROR(index_select(x, 1, tensor_i64({-1}, {1})), "[index_select]", "index -1", "[0, 4)");
  EXPECT_EMBER_ERROR(index_select(x, 0, tensor({0}, {1})), "[index_select]", "int64 or int32", "float32");
  EXPECT_EMBER_ERROR(index_select(x, 0, tensor_i64({0, 1}, {1, 2})), "[index_select]", "1-D", "[1, 2]");
  EXPECT_EMBER_ERROR(index_select(x, 2, tensor_i64({0}, {1})), "[index_select]", "axis 2");
  EXPECT_EMBER_ERROR(index_select(scalar(1), 0, tensor_i64({0}, {1})), "[index_select]", "0-D");
}

TEST(IndexOps, GatherValues) {
  Tensor x = iota({3, 4});
  Tensor g1 = gather(x, 1, tensor_i64({0, 3, 2, 2, 1, 0}, {3, 2}));
  EXPECT_EQ(fvec(g1), (std::vector<float>{0, 3, 6, 6, 9, 8}));
  Tensor g0 = gather(x, 0, cast(tensor_i64({2, 0, 1, 1, 1, 0}, {2, 3}), DType::i32));  // index smaller off-axis
  EXPECT_EQ(g0.shape(), (Shape{2, 3}));
  EXPECT_EQ(fvec(g0), (std::vector<float>{8, 1, 6, 4, 5, 2}));
  // Strided input and a 3-D case along the middle axis.
  EXPECT_EQ(fvec(gather(transpose(x, 0, 1), 1, tensor_i64({2, 0}, {2, 1}))), (std::vector<float>{8, 1}));
  Tensor y = iota({2, 3, 2});
  EXPECT_EQ(fvec(gather(y, 1, tensor_i64({2, 0, 1, 1}, {2, 1, 2}))), (std::vector<float>{4, 1, 8, 9}));
}

TEST(IndexOps, GatherGradcheck) {
  Tensor idx = tensor_i64({0, 0, 2, 1, 2, 2}, {2, 3});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return gather(v[0], 1, idx); },
                   (std::vector<Tensor>{rnd({3, 3}, 5)}));
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return gather(v[0], 0, idx); },
                   (std::vector<Tensor>{rnd({3, 4}, 6)}));
}

TEST(IndexOps, GatherSecondOrder) {
  // gather's gradient (a scatter into zeros) is itself differentiable.
  Tensor idx = tensor_i64({1, 1, 0, 2}, {2, 2});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& v) {
        GradModeGuard on(true);
        Tensor y = gather(v[0], 1, idx);
        return grad({sum(y * y * y)}, {v[0]}, {}, true, true)[0];
      },
      (std::vector<Tensor>{rnd({2, 3}, 15)}));
}

TEST(IndexOps, GatherErrors) {
  Tensor x = zeros({3, 4});
  EXPECT_EMBER_ERROR(gather(x, 1, tensor_i64({4}, {1, 1})), "[gather]", "index 4", "[0, 4)", "dimension 1");
  EXPECT_EMBER_ERROR(gather(x, 0, tensor_i64({-1}, {1, 1})), "[gather]", "index -1", "[0, 3)");
  EXPECT_EMBER_ERROR(gather(x, 1, tensor_i64({0}, {1})), "[gather]", "1 dimensions", "2");
  EXPECT_EMBER_ERROR(gather(x, 1, zeros({4, 1}, DType::i64)), "[gather]", "larger", "dimension 0");
  EXPECT_EMBER_ERROR(gather(x, 1, zeros({1, 1}, DType::u8)), "[gather]", "int64 or int32", "uint8");
  EXPECT_EMBER_ERROR(gather(x, -3, zeros({1, 1}, DType::i64)), "[gather]", "axis -3");
}

TEST(IndexOps, ScatterAddValues) {
  Tensor idx = tensor_i64({0, 0, 3, 1, 2, 2}, {3, 2});
  Tensor src = tensor({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor out = scatter_add(zeros({3, 4}), 1, idx, src);
  EXPECT_EQ(fvec(out), (std::vector<float>{3, 0, 0, 0, 0, 4, 0, 3, 0, 0, 11, 0}));
  // The base is not modified; src may be larger than index (its leading block is used).
  Tensor base = ones({2, 2});
  Tensor big = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = scatter_add(base, 0, tensor_i64({1, 1}, {1, 2}), big);
  EXPECT_EQ(fvec(r), (std::vector<float>{1, 1, 2, 3}));
  EXPECT_EQ(fvec(base), (std::vector<float>{1, 1, 1, 1}));
  Tensor bf = scatter_add(zeros({3}, DType::bf16), 0, tensor_i64({2, 2, 0}, {3}), tensor({1, 2, 3}, {3}, DType::bf16));
  EXPECT_EQ(fvec(bf), (std::vector<float>{3, 0, 3}));
}

TEST(IndexOps, ScatterAddGradcheck) {
  Tensor idx = tensor_i64({0, 0, 2, 1, 2, 2}, {2, 3});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return scatter_add(v[0], 1, idx, v[1]) * v[0]; },
                   (std::vector<Tensor>{rnd({2, 4}, 7), rnd({2, 3}, 8)}));
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return scatter_add(v[0], 0, idx, v[1]); },
                   (std::vector<Tensor>{rnd({3, 3}, 9), rnd({3, 4}, 10)}));  // larger src
}

TEST(IndexOps, ScatterAddErrors) {
  Tensor x = zeros({3, 4});
  Tensor idx = tensor_i64({0, 4}, {1, 2});
  EXPECT_EMBER_ERROR(scatter_add(x, 1, idx, ones({1, 2})), "[scatter_add]", "index 4", "[0, 4)");
  EXPECT_EMBER_ERROR(scatter_add(x, 1, tensor_i64({0, 1}, {1, 2}), ones({1, 2}, DType::f64)), "[scatter_add]",
                     "float64", "float32");
  EXPECT_EMBER_ERROR(scatter_add(x, 1, tensor_i64({0, 1}, {1, 2}), ones({1, 1})), "[scatter_add]", "src");
  EXPECT_EMBER_ERROR(scatter_add(x, 1, zeros({4, 1}, DType::i64), ones({4, 1})), "[scatter_add]", "larger");
  EXPECT_EMBER_ERROR(scatter_add(x, 1, tensor({0}, {1, 1}), ones({1, 1})), "[scatter_add]", "int64 or int32");
  EXPECT_EMBER_ERROR(scatter_add(x, 2, zeros({1, 1}, DType::i64), ones({1, 1})), "[scatter_add]", "axis 2");
}

TEST(IndexOps, EmbeddingValues) {
  Tensor w = iota({5, 3});
  Tensor ids = tensor_i64({4, 0, 4, 2}, {2, 2});
  Tensor e = embedding(w, ids);
  EXPECT_EQ(e.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(fvec(e), (std::vector<float>{12, 13, 14, 0, 1, 2, 12, 13, 14, 6, 7, 8}));
  EXPECT_EQ(embedding(w, cast(tensor_i64({1}, {}), DType::i32)).shape(), (Shape{3}));
  EXPECT_EQ(fvec(embedding(cast(w, DType::bf16), tensor_i64({3}, {1}))), (std::vector<float>{9, 10, 11}));
  EXPECT_EQ(embedding(w, zeros({2, 0}, DType::i64)).shape(), (Shape{2, 0, 3}));
}

TEST(IndexOps, EmbeddingGradcheck) {
  Tensor ids = tensor_i64({1, 3, 1, 1, 0, 3}, {2, 3});
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return embedding(v[0], ids); },
                   (std::vector<Tensor>{rnd({4, 3}, 11)}));
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& v) { return embedding(v[0], cast(ids, DType::i32)) * 3.0; },
                   (std::vector<Tensor>{rnd({5, 2}, 12)}));
}

TEST(IndexOps, EmbeddingBackwardIsDeterministicAcrossThreadCounts) {
  // Many repeated ids: the gradient sums collide; the result must not depend
  // on scheduling. Compare to a serial float accumulation in index order.
  const int64_t V = 97, D = 64, N = 4096;
  Generator gen(13);
  Tensor w = randn({V, D}, DType::f32, Device::cpu(), &gen);
  Tensor ids = randint(0, V, {N}, Device::cpu(), &gen);
  Tensor g = randn({N, D}, DType::f32, Device::cpu(), &gen);
  auto run = [&] {
    Tensor wv = w.detach();
    wv.requires_grad_(true);
    return grad({embedding(wv, ids)}, {wv}, {g})[0].to_vector<float>();
  };
  std::vector<float> a = run();
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<float> b = run();
  omp_set_num_threads(std::max(saved, 3));
  std::vector<float> c = run();
  omp_set_num_threads(saved);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  std::vector<float> ref(size_t(V * D), 0.0f);
  std::vector<int64_t> id = ivec(ids);
  std::vector<float> gv = fvec(g);
  for (int64_t j = 0; j < N; ++j)
    for (int64_t d = 0; d < D; ++d) ref[size_t(id[size_t(j)] * D + d)] += gv[size_t(j * D + d)];
  EXPECT_EQ(a, ref);
}

TEST(IndexOps, EmbeddingErrors) {
  Tensor w = zeros({5, 3});
  EXPECT_EMBER_ERROR(embedding(w, tensor_i64({1, 5}, {2})), "[embedding]", "index 5", "[0, 5)", "5 rows");
  EXPECT_EMBER_ERROR(embedding(w, tensor_i64({-2}, {1})), "[embedding]", "index -2");
  EXPECT_EMBER_ERROR(embedding(zeros({5}), tensor_i64({1}, {1})), "[embedding]", "2-D", "[5]");
  EXPECT_EMBER_ERROR(embedding(w, tensor({1}, {1})), "[embedding]", "ids", "float32");
}

TEST(IndexOps, OneHot) {
  Tensor h = one_hot(tensor_i64({2, 0, 1, 2}, {2, 2}), 3);
  EXPECT_EQ(h.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(h.dtype(), DType::f32);
  EXPECT_EQ(fvec(h), (std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1}));
  Tensor hi = one_hot(cast(tensor_i64({1}, {1}), DType::i32), 2, DType::i64);
  EXPECT_EQ(ivec(hi), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(one_hot(tensor_i64({0}, {1}), 2, DType::b8).to_vector<bool>(), (std::vector<bool>{true, false}));
  EXPECT_EMBER_ERROR(one_hot(tensor_i64({3}, {1}), 3), "[one_hot]", "index 3", "[0, 3)", "3 classes");
  EXPECT_EMBER_ERROR(one_hot(tensor_i64({-1}, {1}), 3), "[one_hot]", "index -1");
  EXPECT_EMBER_ERROR(one_hot(tensor_i64({0}, {1}), 0), "[one_hot]", "num_classes", "0");
  EXPECT_EMBER_ERROR(one_hot(tensor({0}, {1}), 2), "[one_hot]", "ids", "float32");
}

TEST(IndexOps, TrilTriuValues) {
  Tensor x = iota({3, 4});
  EXPECT_EQ(fvec(tril(x)), (std::vector<float>{0, 0, 0, 0, 4, 5, 0, 0, 8, 9, 10, 0}));
  EXPECT_EQ(fvec(triu(x, 1)), (std::vector<float>{0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11}));
  EXPECT_EQ(fvec(tril(x, -1)), (std::vector<float>{0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0}));
  EXPECT_EQ(fvec(triu(x, -1)), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11}));
  EXPECT_EQ(fvec(tril(x, 100)), fvec(x));
  EXPECT_EQ(fvec(triu(x, -100)), fvec(x));
  EXPECT_EQ(fvec(tril(x, -100)), std::vector<float>(12, 0.0f));
  // Batched, strided, and a causal mask in bool.
  Tensor b = stack({x, x * 2.0}, 0);
  EXPECT_EQ(fvec(select(tril(b), 0, 1)), (std::vector<float>{0, 0, 0, 0, 8, 10, 0, 0, 16, 18, 20, 0}));
  EXPECT_EQ(fvec(triu(transpose(x, 0, 1))), (std::vector<float>{0, 4, 8, 0, 5, 9, 0, 0, 10, 0, 0, 0}));
  EXPECT_EQ(tril(ones({2, 2}, DType::b8)).to_vector<bool>(), (std::vector<bool>{true, false, true, true}));
}

TEST(IndexOps, TrilTriuGradcheckAndErrors) {
  EXPECT_GRADCHECK([](const std::vector<Tensor>& v) { return tril(v[0], 1) * triu(v[0], -1); },
                   (std::vector<Tensor>{rnd({2, 3, 4}, 14)}));
  EXPECT_EMBER_ERROR(tril(zeros({3})), "[tril]", "2 dimensions", "[3]");
  EXPECT_EMBER_ERROR(triu(scalar(1)), "[triu]", "2 dimensions");
}
