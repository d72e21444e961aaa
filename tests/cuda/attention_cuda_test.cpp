// CUDA scaled dot-product attention against the CPU's flash kernels: outputs,
// the saved logsumexp and the gradients (the fused backward primitive), causal
// and not, grouped-query heads, more or fewer queries than keys, lengths that
// are not multiples of 32, strided [B, T, H, D] head views, float64 and bf16.
#include "cuda/cuda_test_util.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/primitive_registry.h"
#include "test_util.h"

namespace ember {
namespace {

using testing::CudaCheck;
using testing::expect_cuda_matches_cpu;

struct Case {
  int64_t B, H, Hkv, T, S, D;
  bool causal;
};

std::string name_of(const Case& c, const char* what) {
  return std::string(what) + " B" + std::to_string(c.B) + " H" + std::to_string(c.H) + "/" + std::to_string(c.Hkv) +
         " T" + std::to_string(c.T) + " S" + std::to_string(c.S) + " D" + std::to_string(c.D) +
         (c.causal ? " causal" : "");
}

std::vector<Tensor> inputs_for(const Case& c, DType dt, Generator& gen) {
  return {randn({c.B, c.H, c.T, c.D}, dt, Device::cpu(), &gen), randn({c.B, c.Hkv, c.S, c.D}, dt, Device::cpu(), &gen),
          randn({c.B, c.Hkv, c.S, c.D}, dt, Device::cpu(), &gen)};
}

const Case kCases[] = {
    {2, 4, 2, 5, 5, 4, true},     {2, 4, 2, 37, 37, 16, false}, {1, 2, 1, 3, 7, 8, true},
    {1, 2, 2, 7, 3, 8, true},     // more queries than keys: the first four see no key
    {1, 3, 3, 1, 6, 8, true},     {2, 2, 1, 130, 150, 16, true}, {1, 2, 1, 70, 90, 24, false},
    {3, 6, 2, 33, 33, 5, true},   {1, 1, 1, 1, 1, 1, false},
};

TEST(CudaAttention, ForwardAndGradientsMatchCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(21);
  for (const Case& c : kCases) {
    const bool causal = c.causal;
    expect_cuda_matches_cpu(
        [causal](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2], causal)};
        },
        inputs_for(c, DType::f32, gen), {1e-4, 1e-5}, name_of(c, "f32").c_str());
  }
}

TEST(CudaAttention, LogsumexpMatchesCpu) {
  EMBER_REQUIRE_GPU();
  Generator gen(22);
  for (const Case& c : kCases) {
    const bool causal = c.causal;
    // The primitive itself, for its second output; -inf rows must agree exactly.
    expect_cuda_matches_cpu(
        [causal](const std::vector<Tensor>& in) {
          PrimitivePtr prim = make_primitive("scaled_dot_product_attention",
                                             {{"causal", int64_t(causal)}, {"scale", 0.3}}, 3);
          return ember::apply(prim, in);
        },
        inputs_for(c, DType::f32, gen), {1e-4, 1e-5, false}, name_of(c, "lse").c_str());
  }
}

TEST(CudaAttention, StridedHeadViewsAndScale) {
  EMBER_REQUIRE_GPU();
  Generator gen(23);
  // [B, T, H, D] projections viewed as [B, H, T, D]: read in place for H == Hkv,
  // copied for grouped heads (the group's heads are not adjacent rows).
  for (int64_t Hkv : {3, 1}) {
    Tensor q = randn({2, 19, 3, 8}, DType::f32, Device::cpu(), &gen);
    Tensor k = randn({2, 23, Hkv, 8}, DType::f32, Device::cpu(), &gen);
    Tensor v = randn({2, 23, Hkv, 8}, DType::f32, Device::cpu(), &gen);
    for (bool causal : {true, false})
      expect_cuda_matches_cpu(
          [causal](const std::vector<Tensor>& in) {
            auto heads = [](const Tensor& x) { return permute(x, {0, 2, 1, 3}); };
            return std::vector<Tensor>{
                scaled_dot_product_attention(heads(in[0]), heads(in[1]), heads(in[2]), causal, 0.7)};
          },
          {q, k, v}, {1e-4, 1e-5}, Hkv == 3 ? "strided heads" : "strided grouped heads");
  }
  // A non-contiguous last dimension (every other element) is copied.
  Tensor q = randn({1, 2, 9, 12}, DType::f32, Device::cpu(), &gen);
  Tensor k = randn({1, 1, 11, 6}, DType::f32, Device::cpu(), &gen);
  Tensor v = randn({1, 1, 11, 6}, DType::f32, Device::cpu(), &gen);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{scaled_dot_product_attention(slice(in[0], 3, 0, 12, 2), in[1], in[2], true)};
      },
      {q, k, v}, {1e-4, 1e-5}, "strided last dimension");
}

TEST(CudaAttention, Float64AndBf16) {
  EMBER_REQUIRE_GPU();
  Generator gen(24);
  for (const Case& c : {Case{2, 4, 2, 37, 37, 16, true}, Case{1, 2, 1, 7, 3, 8, true}, Case{1, 2, 2, 20, 45, 8, false}}) {
    const bool causal = c.causal;
    auto fn = [causal](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2], causal)};
    };
    expect_cuda_matches_cpu(fn, inputs_for(c, DType::f64, gen), {1e-10, 1e-12}, name_of(c, "f64").c_str());
    expect_cuda_matches_cpu(fn, inputs_for(c, DType::bf16, gen), {2e-2, 2e-2}, name_of(c, "bf16").c_str());
    expect_cuda_matches_cpu(
        [causal](const std::vector<Tensor>& in) {
          PrimitivePtr prim = make_primitive("scaled_dot_product_attention",
                                             {{"causal", int64_t(causal)}, {"scale", 0.25}}, 3);
          return ember::apply(prim, in);
        },
        inputs_for(c, DType::bf16, gen), {2e-2, 2e-2, false}, name_of(c, "bf16 lse").c_str());
  }
}

TEST(CudaAttention, LongerSequence) {
  EMBER_REQUIRE_GPU();
  Generator gen(25);
  // Rows longer than one block of the softmax kernel, a batch of eight.
  const Case c{8, 4, 2, 300, 300, 32, true};
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2], true)};
      },
      inputs_for(c, DType::f32, gen), {1e-4, 2e-5}, "T300");
}

}  // namespace
}  // namespace ember
