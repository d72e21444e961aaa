// The GPT model (ember/models): config presets and JSON, forward shapes,
// causality, RoPE, loss at initialisation, gradients (reaching every parameter,
// and against float64 finite differences), overfitting a fixed batch, and the
// Hugging Face GPT-2 import/export round trip.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ember/ember.h"
#include "ember/models/gpt.h"
#include "ember/models/gpt2_hf.h"
#include "ember/optim/optim.h"
#include "models/gpt_test_configs.h"

using namespace ember;
using namespace ember::models;
namespace fs = std::filesystem;

namespace {

using test_configs::gpt2_style;
using test_configs::modern;

Tensor random_ids(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  Generator gen(seed);
  return randint(0, vocab, {B, T}, Device::cpu(), &gen);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return max(abs(cast(a, DType::f64) - cast(b, DType::f64))).item<double>();
}

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() / str_cat("ember_gpt_test_", ::getpid(), "_", tag, "_", counter++);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace

TEST(GptConfig, PresetsValidateAndCountParametersExactly) {
  // wte + wpe + per layer (2 norms, c_attn, c_proj, c_fc, c_proj) + ln_f, embeddings tied.
  const std::vector<std::pair<std::string, int64_t>> expected = {{"tiny", 5'322'240}, {"small", 17'037'312}};
  ASSERT_EQ(GPTConfig::preset_names(), (std::vector<std::string>{"tiny", "small", "gpt2"}));
  for (const auto& [name, count] : expected) {
    GPTConfig c = GPTConfig::preset(name);
    EXPECT_NO_THROW(c.validate()) << name;
    EXPECT_EQ(c.norm, NormKind::layernorm);
    EXPECT_EQ(c.position, PositionKind::learned);
    EXPECT_EQ(c.mlp, MlpKind::gelu);
    EXPECT_TRUE(c.bias && c.tied_embeddings);
    EXPECT_EQ(c.batch_size, 8);
    EXPECT_EQ(GPT(c).num_parameters(), count) << name;
  }
  GPTConfig t = GPTConfig::preset("tiny");
  EXPECT_EQ(t.n_layer, 4);
  EXPECT_EQ(t.n_head, 4);
  EXPECT_EQ(t.n_embd, 256);
  EXPECT_EQ(t.vocab_size, 8192);
  EXPECT_EQ(t.block_size, 256);
  EXPECT_THROW(GPTConfig::preset("huge"), Error);
  try {
    GPTConfig::preset("huge");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny, small, gpt2"), std::string::npos) << e.what();
  }
}

// Separate because initialising 124M parameters takes seconds.
TEST(GptConfig, Gpt2PresetIsHuggingFaceGpt2With124MParameters) {
  GPTConfig c = GPTConfig::preset("gpt2");
  EXPECT_EQ(c.n_layer, 12);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.vocab_size, 50257);
  EXPECT_EQ(c.block_size, 1024);
  GPT model(c);
  EXPECT_EQ(model.num_parameters(), 124'439'808);  // Hugging Face's GPT2LMHeadModel count (tied)
  // 6 * (124,439,808 - 786,432 position parameters) + 12 * 12 * 768 * 1024.
  EXPECT_EQ(model.flops_per_token(), 6LL * 123'653'376 + 113'246'208);
}

TEST(GptConfig, ValidateNamesTheField) {
  auto message = [](GPTConfig c) {
    try {
      c.validate();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  GPTConfig c = gpt2_style();
  EXPECT_EQ(message(c), "no error");
  auto with = [&](auto edit) {
    GPTConfig d = c;
    edit(d);
    return message(d);
  };
  EXPECT_NE(with([](GPTConfig& d) { d.n_layer = 0; }).find("n_layer"), std::string::npos);
  EXPECT_NE(with([](GPTConfig& d) { d.n_head = 3; }).find("n_head"), std::string::npos);
  EXPECT_NE(with([](GPTConfig& d) { d.n_kv_head = 3; }).find("n_kv_head"), std::string::npos);
  EXPECT_NE(with([](GPTConfig& d) { d.dropout = 1.0; }).find("dropout"), std::string::npos);
  EXPECT_NE(with([](GPTConfig& d) { d.norm_eps = 0; }).find("norm_eps"), std::string::npos);
  EXPECT_NE(with([](GPTConfig& d) { d.vocab_size = -1; }).find("vocab_size"), std::string::npos);
  EXPECT_NE(with([](GPTConfig& d) { d.n_embd = 36, d.n_head = 12, d.n_kv_head = 12, d.position = PositionKind::rope; })
                .find("even head_dim"),
            std::string::npos);
  EXPECT_EQ(modern().mlp_hidden(), 128);  // ceil(8/3 * 32) = 86 -> 128
  EXPECT_EQ(GPTConfig::preset("tiny").mlp_hidden(), 1024);
}

TEST(GptConfig, JsonRoundTripAndErrors) {
  for (GPTConfig c : {GPTConfig::preset("small"), modern()}) {
    c.dropout = 0.125, c.rope_theta = 500000.0;
    nlohmann::json j = c.to_json();
    EXPECT_EQ(GPTConfig::from_json(j), c);
    EXPECT_EQ(GPTConfig::from_json(nlohmann::json::parse(j.dump())), c);
  }
  nlohmann::json j = gpt2_style().to_json();
  auto error_of = [](const nlohmann::json& bad) {
    try {
      GPTConfig::from_json(bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  nlohmann::json unknown = j;
  unknown["n_layers"] = 3;
  EXPECT_NE(error_of(unknown).find("unknown field 'n_layers'"), std::string::npos);
  nlohmann::json missing = j;
  missing.erase("block_size");
  EXPECT_NE(error_of(missing).find("missing field 'block_size'"), std::string::npos);
  nlohmann::json mistyped = j;
  mistyped["n_head"] = "4";
  EXPECT_NE(error_of(mistyped).find("'n_head' must be an integer"), std::string::npos);
  mistyped = j;
  mistyped["bias"] = 1;
  EXPECT_NE(error_of(mistyped).find("'bias' must be true or false"), std::string::npos);
  nlohmann::json bad_enum = j;
  bad_enum["norm"] = "batchnorm";
  EXPECT_NE(error_of(bad_enum).find("norm must be layernorm or rmsnorm"), std::string::npos);
  nlohmann::json invalid = j;
  invalid["n_kv_head"] = 3;
  EXPECT_NE(error_of(invalid).find("n_kv_head"), std::string::npos);
  EXPECT_NE(error_of(nlohmann::json::array()).find("JSON object"), std::string::npos);
}

TEST(Gpt, ParameterNamesFollowHuggingFace) {
  GPT model(gpt2_style());
  TensorMap state = model.state_dict();
  for (const char* name : {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                           "transformer.h.0.ln_1.bias", "transformer.h.1.attn.c_attn.weight",
                           "transformer.h.1.attn.c_attn.bias", "transformer.h.1.attn.c_proj.weight",
                           "transformer.h.0.ln_2.bias", "transformer.h.0.mlp.c_fc.weight",
                           "transformer.h.0.mlp.c_proj.bias", "transformer.ln_f.weight", "lm_head.weight"})
    EXPECT_TRUE(state.count(name)) << name;
  EXPECT_EQ(state.size(), size_t(2 + 12 * 2 + 2 + 1));
  EXPECT_TRUE(model.lm_head->weight.same(model.transformer->wte->weight));  // tied: one tensor
  EXPECT_EQ(model.get_tensor("transformer.h.0.attn.c_attn.weight").shape(), (Shape{96, 32}));  // [out, in]

  GPT m2(modern());
  TensorMap s2 = m2.state_dict();
  EXPECT_FALSE(s2.count("transformer.wpe.weight"));
  EXPECT_FALSE(s2.count("transformer.h.0.ln_1.bias"));
  EXPECT_FALSE(m2.lm_head->weight.same(m2.transformer->wte->weight));
  EXPECT_EQ(s2.at("transformer.h.0.attn.c_attn.weight").shape(), (Shape{(4 + 2 * 2) * 8, 32}));
  EXPECT_EQ(s2.at("transformer.h.0.mlp.c_fc.weight").shape(), (Shape{2 * 128, 32}));
}

TEST(Gpt, InitialisationFollowsGpt2) {
  Generator gen(3);
  GPTConfig c = GPTConfig::preset("tiny");
  GPT model(c, &gen);
  auto stddev = [](const Tensor& t) {
    return std::sqrt(var(cast(t.detach(), DType::f64)).item<double>());
  };
  EXPECT_NEAR(stddev(model.transformer->wte->weight), 0.02, 0.001);
  EXPECT_NEAR(stddev(model.get_tensor("transformer.h.0.attn.c_attn.weight")), 0.02, 0.001);
  EXPECT_NEAR(stddev(model.get_tensor("transformer.h.3.mlp.c_proj.weight")), 0.02 / std::sqrt(8.0), 0.0005);
  EXPECT_EQ(max(abs(model.get_tensor("transformer.h.2.attn.c_attn.bias"))).item<double>(), 0.0);
  EXPECT_EQ(min(model.get_tensor("transformer.ln_f.weight")).item<double>(), 1.0);
  // Seeded: the same generator seed gives the same model.
  Generator gen2(3);
  GPT again(c, &gen2);
  EXPECT_EQ(max_abs_diff(again.get_tensor("transformer.h.3.mlp.c_fc.weight"),
                         model.get_tensor("transformer.h.3.mlp.c_fc.weight")),
            0.0);
}

TEST(Gpt, ForwardShapesAndInputErrors) {
  for (const GPTConfig& c : {gpt2_style(), modern()}) {
    GPT model(c);
    Tensor logits = model.forward(random_ids(3, 7, c.vocab_size, 1));
    EXPECT_EQ(logits.shape(), (Shape{3, 7, c.vocab_size}));
    EXPECT_EQ(logits.dtype(), DType::f32);
    EXPECT_EQ(model.forward(random_ids(2, 4, c.vocab_size, 2), /*pos_offset=*/12).shape(), (Shape{2, 4, c.vocab_size}));
    EXPECT_THROW(model.forward(random_ids(1, 17, c.vocab_size, 3)), Error);          // > block_size
    EXPECT_THROW(model.forward(random_ids(1, 5, c.vocab_size, 3), 12), Error);       // offset + T > block_size
    EXPECT_THROW(model.forward(tensor_i64({1, 2, 50}, {1, 3})), Error);                // id == vocab
    EXPECT_THROW(model.forward(tensor_i64({-1, 2}, {1, 2})), Error);                   // negative id
    EXPECT_THROW(model.forward(tensor({1, 2}, {1, 2})), Error);                        // float ids
    EXPECT_THROW(model.forward(tensor_i64({1, 2}, {2})), Error);                       // 1-D
    EXPECT_THROW(model.loss(tensor_i64({1, 2}, {1, 2}), tensor_i64({1}, {1, 1})), Error);  // target shape
  }
  try {
    GPT(gpt2_style()).forward(random_ids(1, 17, 50, 3));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block_size 16"), std::string::npos) << e.what();
  }
}

TEST(Gpt, CausalLaterTokensDoNotChangeEarlierLogits) {
  for (const GPTConfig& c : {gpt2_style(), modern()}) {
    GPT model(c);
    model.eval();
    NoGradGuard no_grad;
    std::vector<int64_t> ids = random_ids(1, 12, c.vocab_size, 5).to_vector<int64_t>();
    Tensor a = model.forward(tensor_i64(ids, {1, 12}));
    ids[7] = (ids[7] + 1) % c.vocab_size;
    Tensor b = model.forward(tensor_i64(ids, {1, 12}));
    EXPECT_LT(max_abs_diff(narrow(a, 1, 0, 7), narrow(b, 1, 0, 7)), 1e-6);
    EXPECT_GT(max_abs_diff(narrow(a, 1, 7, 5), narrow(b, 1, 7, 5)), 1e-4);  // and later ones do change
  }
}

TEST(Gpt, RopeDotProductDependsOnlyOnRelativePosition) {
  const int64_t D = 16;
  nn::RotaryEmbedding rope(D, 64);
  Generator gen(11);
  Tensor q = randn({1, 1, 1, D}, DType::f32, Device::cpu(), &gen);
  Tensor k = randn({1, 1, 1, D}, DType::f32, Device::cpu(), &gen);
  auto dot_at = [&](int64_t m, int64_t n) {
    return sum(rope.forward(q, m) * rope.forward(k, n)).item<double>();
  };
  for (auto [m, n] : std::vector<std::pair<int64_t, int64_t>>{{5, 2}, {9, 9}, {3, 20}}) {
    for (int64_t shift : {1, 7, 30})
      EXPECT_NEAR(dot_at(m + shift, n + shift), dot_at(m, n), 1e-4) << m << "," << n << "+" << shift;
  }
  EXPECT_GT(std::abs(dot_at(5, 2) - dot_at(5, 3)), 1e-4);
  // Norm-preserving (a rotation), and the rotate_half convention: element i pairs with i + D/2.
  std::vector<double> x(D, 0.0);
  x[1] = 1.0;
  Tensor r = rope.forward(tensor(x, {1, 1, 1, D}), 3);
  double angle = 3.0 * std::pow(10000.0, -2.0 / double(D));
  std::vector<double> got = r.to_vector<double>();
  EXPECT_NEAR(got[1], std::cos(angle), 1e-6);
  EXPECT_NEAR(got[1 + D / 2], std::sin(angle), 1e-6);
  double rest = 0;
  for (int64_t i = 0; i < D; ++i)
    if (i != 1 && i != 1 + D / 2) rest += std::abs(got[size_t(i)]);
  EXPECT_EQ(rest, 0.0);
  EXPECT_THROW(rope.forward(q, 64), Error);
}

TEST(Gpt, LossAtInitialisationIsNearLogVocab) {
  // Logits start near zero (weights N(0, 0.02)): the loss is ln(vocab) plus about
  // half the logit variance; within 0.1 of ln(vocab).
  GPTConfig c = GPTConfig::preset("tiny");
  c.n_layer = 2, c.vocab_size = 1024;
  Generator gen(7);
  GPT model(c, &gen);
  model.eval();
  NoGradGuard no_grad;
  double loss = model.loss(random_ids(4, 64, c.vocab_size, 8), random_ids(4, 64, c.vocab_size, 9)).item<double>();
  EXPECT_NEAR(loss, std::log(1024.0), 0.1);
}

TEST(Gpt, IgnoreIndexSkipsTargets) {
  GPT model(gpt2_style());
  model.eval();
  NoGradGuard no_grad;
  Tensor ids = random_ids(2, 6, 50, 12);
  std::vector<int64_t> t = random_ids(2, 6, 50, 13).to_vector<int64_t>();
  double full = model.loss(ids, tensor_i64(t, {2, 6})).item<double>();
  double manual = cross_entropy(narrow(model.forward(ids), 1, 0, 3), narrow(tensor_i64(t, {2, 6}), 1, 0, 3)).item<double>();
  for (int b = 0; b < 2; ++b)
    for (int i = 3; i < 6; ++i) t[size_t(b * 6 + i)] = -1;
  EXPECT_NEAR(model.loss(ids, tensor_i64(t, {2, 6})).item<double>(), manual, 1e-5);
  EXPECT_GT(std::abs(full - manual), 1e-6);
}

TEST(Gpt, DropoutOnlyInTraining) {
  GPTConfig c = gpt2_style();
  c.dropout = 0.3;
  GPT model(c);
  Tensor ids = random_ids(2, 8, 50, 1);
  Tensor a = model.forward(ids), b = model.forward(ids);
  EXPECT_GT(max_abs_diff(a, b), 1e-4);  // two masks
  model.eval();
  EXPECT_EQ(max_abs_diff(model.forward(ids), model.forward(ids)), 0.0);
}

TEST(Gpt, GradientsReachEveryParameter) {
  for (const GPTConfig& c : {gpt2_style(), modern()}) {
    GPT model(c);
    Tensor loss = model.loss(random_ids(2, 10, c.vocab_size, 3), random_ids(2, 10, c.vocab_size, 4));
    loss.backward();
    for (const auto& [name, p] : model.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name;
      EXPECT_EQ(p.grad().shape(), p.shape()) << name;
      double norm = std::sqrt(sum(square(cast(p.grad(), DType::f64))).item<double>());
      EXPECT_TRUE(std::isfinite(norm) && norm > 0.0) << name << " grad norm " << norm;
    }
  }
}

// Central differences on a few elements of every parameter of a float64 model.
TEST(Gpt, GradientsMatchFiniteDifferencesInFloat64) {
  for (GPTConfig c : {gpt2_style(), modern()}) {
    c.n_layer = 1, c.n_embd = 8, c.n_head = 2, c.n_kv_head = c.position == PositionKind::rope ? 1 : 2;
    c.vocab_size = 11, c.block_size = 6;
    Generator gen(21);
    GPT model(c, &gen);
    model.to(DType::f64);
    // Norm gains and biases start at 1 and 0; perturb them so their gradients are generic.
    for (const auto& [name, p] : model.named_parameters()) {
      NoGradGuard no_grad;
      Tensor noise = normal(p.shape(), 0.0, 0.3, DType::f64, Device::cpu(), &gen);
      double* d = p.data<double>();
      std::vector<double> n = noise.to_vector<double>();
      for (size_t i = 0; i < n.size(); ++i) d[i] += n[i];
    }
    Tensor ids = random_ids(2, 6, c.vocab_size, 5), targets = random_ids(2, 6, c.vocab_size, 6);
    auto loss_value = [&] {
      NoGradGuard no_grad;
      return model.loss(ids, targets).item<double>();
    };
    model.zero_grad();
    Tensor loss = model.loss(ids, targets);
    ASSERT_EQ(loss.dtype(), DType::f64);
    loss.backward();
    const double eps = 1e-6;
    double worst = 0;
    for (const auto& [name, p] : model.named_parameters()) {
      std::vector<double> g = p.grad().to_vector<double>();
      double* d = p.data<double>();
      for (int64_t k = 0; k < 4; ++k) {
        size_t i = size_t((k * 7919) % p.numel());
        double keep = d[i];
        d[i] = keep + eps;
        double up = loss_value();
        d[i] = keep - eps;
        double down = loss_value();
        d[i] = keep;
        double fd = (up - down) / (2 * eps);
        double err = std::abs(fd - g[i]) / std::max(1.0, std::abs(fd));
        worst = std::max(worst, err);
        EXPECT_LT(err, 1e-6) << name << "[" << i << "]: autograd " << g[i] << " vs finite difference " << fd;
      }
    }
    RecordProperty(str_cat("worst_rel_err_", position_name(c.position)), str_cat(worst));
  }
}

TEST(Gpt, TinyModelOverfitsAFixedBatch) {
  // 2 layers, n_embd 64, vocab 64: one batch of 4 x 32 random tokens is memorised,
  // loss from ln(64) = 4.16 to below 0.05 within 60 AdamW steps (lr 1e-2; it takes
  // 26 steps with learned positions and 19 with the RoPE/SwiGLU/GQA variant).
  for (GPTConfig c : {gpt2_style(), modern()}) {
    c.n_embd = 64, c.vocab_size = 64, c.block_size = 32;
    Generator gen(1);
    GPT model(c, &gen);
    optim::AdamW opt(optim::make_param_groups(model, 0.0), {1e-2});
    Tensor ids = random_ids(4, 32, c.vocab_size, 2), targets = random_ids(4, 32, c.vocab_size, 3);
    double first = 0, last = 0;
    int step = 0;
    for (; step < 60; ++step) {
      Tensor loss = model.loss(ids, targets);
      last = loss.item<double>();
      if (step == 0) first = last;
      if (last < 0.05) break;
      opt.zero_grad();
      loss.backward();
      optim::clip_grad_norm_(model.parameters(), 1.0);
      opt.step();
    }
    RecordProperty(str_cat("overfit_steps_", position_name(c.position)), step);
    EXPECT_NEAR(first, std::log(64.0), 0.15);
    EXPECT_LT(last, 0.05) << position_name(c.position) << " after " << step << " steps";
  }
}

TEST(Gpt, HuggingFaceExportImportRoundTrip) {
  Generator gen(9);
  GPT model(gpt2_style(), &gen);
  model.eval();
  std::string dir = temp_dir("hf");
  save_gpt2_hf(model, dir);
  ASSERT_TRUE(fs::exists(fs::path(dir) / "model.safetensors"));
  ASSERT_TRUE(fs::exists(fs::path(dir) / "config.json"));
  SafetensorsFile file = load_safetensors((fs::path(dir) / "model.safetensors").string());
  EXPECT_EQ(file.metadata.at("format"), "pt");
  EXPECT_FALSE(file.tensors.count("lm_head.weight"));  // tied: HF does not store it
  EXPECT_EQ(file.tensors.at("transformer.h.0.attn.c_attn.weight").shape(), (Shape{32, 96}));  // Conv1D [in, out]
  EXPECT_EQ(max_abs_diff(file.tensors.at("transformer.h.0.mlp.c_fc.weight"),
                         transpose(model.get_tensor("transformer.h.0.mlp.c_fc.weight"), 0, 1)),
            0.0);

  auto loaded = load_gpt2_hf(dir);
  EXPECT_EQ(loaded->config(), model.config());
  Tensor ids = random_ids(2, 16, 50, 4);
  EXPECT_EQ(max_abs_diff(loaded->forward(ids), model.forward(ids)), 0.0);
  EXPECT_TRUE(loaded->lm_head->weight.same(loaded->transformer->wte->weight));

  // GPT2Model's names (no "transformer."), with the old attention-mask buffers, no config.json.
  TensorMap bare;
  for (const auto& [name, t] : file.tensors) bare.emplace(name.substr(std::string("transformer.").size()), t);
  bare.emplace("h.0.attn.bias", ones({1, 1, 16, 16}));
  std::string dir2 = temp_dir("bare");
  std::string bare_path = (fs::path(dir2) / "model.safetensors").string();
  save_safetensors(bare_path, bare, {{"format", "pt"}});
  GPT same(gpt2_style());
  load_gpt2_hf_weights(same, bare_path);
  same.eval();
  EXPECT_EQ(max_abs_diff(same.forward(ids), model.forward(ids)), 0.0);
  auto inferred = load_gpt2_hf(bare_path);  // sizes from the shapes, n_head = n_embd / 64 -> 1
  EXPECT_EQ(inferred->config().n_layer, 2);
  EXPECT_EQ(inferred->config().vocab_size, 50);
  EXPECT_EQ(inferred->config().block_size, 16);

  // Errors name the tensor and the file; nothing is loaded.
  auto load_error = [&](TensorMap tensors) {
    save_safetensors(bare_path, tensors, {{"format", "pt"}});
    GPT target(gpt2_style());
    Tensor before = clone(target.transformer->wte->weight);
    try {
      load_gpt2_hf_weights(target, bare_path);
    } catch (const Error& e) {
      EXPECT_EQ(max_abs_diff(before, target.transformer->wte->weight), 0.0);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  TensorMap missing = bare;
  missing.erase("h.1.mlp.c_proj.bias");
  std::string msg = load_error(missing);
  EXPECT_NE(msg.find("missing tensors: transformer.h.1.mlp.c_proj.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find(bare_path), std::string::npos) << msg;
  TensorMap misshaped = bare;
  misshaped["h.0.attn.c_attn.weight"] = zeros({96, 32});  // [out, in]: not HF's layout
  msg = load_error(misshaped);
  EXPECT_NE(msg.find("'transformer.h.0.attn.c_attn.weight' has shape [96, 32], expected [32, 96]"), std::string::npos)
      << msg;
  TensorMap extra = bare;
  extra["h.7.ln_1.weight"] = ones({32});
  EXPECT_NE(load_error(extra).find("unexpected tensors: h.7.ln_1.weight"), std::string::npos);

  // Models that GPT-2 cannot represent are refused by name.
  try {
    save_gpt2_hf(GPT(modern()), dir + "/modern");
    ADD_FAILURE() << "exported a RoPE model as GPT-2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("norm must be layernorm"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
  fs::remove_all(dir2);
}

TEST(Gpt, HuggingFaceConfigJson) {
  nlohmann::json j = {{"model_type", "gpt2"}, {"n_layer", 2},   {"n_head", 4},
                      {"n_embd", 64},         {"vocab_size", 300}, {"n_positions", 64},
                      {"layer_norm_epsilon", 1e-5}, {"activation_function", "gelu_new"}};
  GPTConfig c = gpt2_config_from_hf(j, "config.json");
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.block_size, 64);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(gpt2_config_from_hf(gpt2_config_to_hf(c), "x"), c);
  nlohmann::json relu = j;
  relu["activation_function"] = "relu";
  EXPECT_THROW(gpt2_config_from_hf(relu, "config.json"), Error);
  nlohmann::json no_layers = j;
  no_layers.erase("n_layer");
  try {
    gpt2_config_from_hf(no_layers, "dir/config.json");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dir/config.json: missing 'n_layer'"), std::string::npos) << e.what();
  }
}
