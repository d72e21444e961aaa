// Quantized GPT inference end to end below the CLI: the runner on quantized
// weights equals the float runner on the dequantized weights (so prefill, decode
// and every layer use the quantized kernels correctly), stays close to the float
// model (logits and greedy generations of a small trained model), and the
// quantized model file round-trips and refuses damaged or foreign content with
// an error naming the file and tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>

#include "ember/infer/engine.h"
#include "ember/infer/gpt_runner.h"
#include "ember/infer/quant_io.h"
#include "ember/io/mapped_file.h"
#include "ember/io/safetensors_format.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/train/model_checkpoint.h"
#include "models/gpt_test_configs.h"
#include "test_util.h"

namespace ember::infer {
namespace {
namespace fs = std::filesystem;

models::GPTConfig classic() {
  models::GPTConfig c;
  c.n_layer = 2, c.n_head = 4, c.n_kv_head = 4, c.n_embd = 64, c.vocab_size = 97, c.block_size = 64;
  return c;
}

// RoPE, RMSNorm, SwiGLU (hidden 192), grouped-query attention, no biases,
// untied head, and n_embd 48: rows of 48 columns are not a whole number of int4
// groups of 32, 64 or 128.
models::GPTConfig modern() {
  models::GPTConfig c = models::test_configs::with_modern_features(classic());
  c.n_embd = 48, c.n_kv_head = 2;
  return c;
}

std::string tmp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("ember_quant_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// Logits of every position of `prompt` (prefill), then of `decode` more tokens
// one at a time (decode), concatenated.
std::vector<float> run(GPTRunner& runner, const std::vector<int64_t>& prompt, const std::vector<int64_t>& decode) {
  KVCache cache = runner.new_cache();
  std::vector<float> all = runner.forward(prompt, cache);
  for (int64_t t : decode) {
    std::vector<float> l = runner.forward(std::vector<int64_t>{t}, cache);
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

const std::vector<int64_t> kPrompt = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50, 28, 8, 41};
const std::vector<int64_t> kDecode = {97 - 1, 0, 17, 42, 5};

TEST(QuantWeights, TensorShapesMatchTheModel) {
  for (models::GPTConfig c : {classic(), modern()})
    for (bool tied : {true, false}) {
      c.tied_embeddings = tied;
      models::GPT model(c);
      std::map<std::string, std::vector<int64_t>> got;
      for (const auto& [name, t] : model.state_dict()) got[name] = t.shape();
      EXPECT_EQ(gpt_tensor_shapes(c), got);
    }
}

TEST(QuantRunner, EqualsFloatRunnerOnDequantizedWeights) {
  for (const models::GPTConfig& c : {classic(), modern()})
    for (auto [format, group] : {std::pair{WeightFormat::int8, int64_t(0)}, {WeightFormat::int4, int64_t(32)},
                                 {WeightFormat::int4, int64_t(128)}, {WeightFormat::f16, int64_t(0)}}) {
      SCOPED_TRACE(testing::Message() << models::position_name(c.position) << " " << weight_format_name(format) << " g"
                                      << group);
      Generator gen(7);
      models::GPT model(c, &gen);
      const auto q = quantize_weights(*runner_weights(model), format, group);
      EXPECT_EQ(q->quantized.size(), size_t(4 * c.n_layer + 1));
      GPTRunner quant(q);
      const auto deq = dequantized_model(*q);
      GPTRunner reference(*deq);
      const std::vector<float> a = run(quant, kPrompt, kDecode), b = run(reference, kPrompt, kDecode);
      EXPECT_LE(max_abs_diff(a, b), 1e-4f * max_abs(b) + 1e-6f);
      // Biases stay float32, so f16 reads a little more than half.
      const double shrink = format == WeightFormat::int8 ? 3 : format == WeightFormat::int4 ? 5 : 1.9;
      EXPECT_LT(double(quant.weight_bytes()), double(GPTRunner(model).weight_bytes()) / shrink);
    }
}

// A model trained to follow next = (5 t + 3) mod V (a permutation, so greedy
// decoding walks a long cycle): its predictions are confident, as a useful
// model's are, which is where quantization must not change the argmax.
std::unique_ptr<models::GPT> trained_model(models::GPTConfig c) {
  c.vocab_size = 64;
  Generator gen(3);
  auto model = std::make_unique<models::GPT>(c, &gen);
  optim::AdamW opt(optim::make_param_groups(*model, 0.0), {1e-2});
  std::mt19937 rng(11);
  const int64_t B = 8, T = 32;
  for (int step = 0; step < 25; ++step) {
    std::vector<int64_t> ids(size_t(B * (T + 1)));
    for (int64_t b = 0; b < B; ++b) {
      int64_t t = int64_t(rng() % 64);
      for (int64_t i = 0; i <= T; ++i, t = (5 * t + 3) % 64) ids[size_t(b * (T + 1) + i)] = t;
    }
    std::vector<int64_t> x, y;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < T; ++i) x.push_back(ids[size_t(b * (T + 1) + i)]), y.push_back(ids[size_t(b * (T + 1) + i + 1)]);
    Tensor loss = model->loss(tensor_i64(x, {B, T}), tensor_i64(y, {B, T}));
    opt.zero_grad();
    loss.backward();
    optim::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
  }
  model->eval();
  return model;
}

std::vector<std::vector<int64_t>> greedy(std::shared_ptr<const RunnerWeights> w, int64_t tokens) {
  Engine engine(std::move(w), {/*max_slots=*/4});
  std::vector<std::vector<int64_t>> out(8);
  for (int64_t s = 0; s < 8; ++s) {
    Request r;
    r.prompt = {s * 7 % 64, (s * 7 + 1) % 64};  // not on the rule's path: the model must recover
    r.max_tokens = tokens;
    r.sampling.temperature = 0;
    r.on_event = [&out, s](const TokenEvent& e) {
      if (e.token >= 0) out[size_t(s)].push_back(e.token);
    };
    engine.submit(std::move(r));
  }
  engine.run_until_idle();
  return out;
}

TEST(QuantRunner, CloseToFloatOnATrainedModel) {
  for (const models::GPTConfig& c : {classic(), modern()}) {
    const auto model = trained_model(c);
    const auto fw = runner_weights(*model);
    GPTRunner f(fw);
    std::vector<int64_t> prompt;
    for (int64_t i = 0, t = 9; i < 24; ++i, t = (5 * t + 3) % 64) prompt.push_back(t);
    const std::vector<float> ref = run(f, prompt, {});
    const auto float_gen = greedy(fw, 40);
    // The float model has learned the rule, so agreement below is not agreement on noise.
    int64_t follows = 0, generated = 0;
    for (int64_t s = 0; s < 8; ++s) {
      int64_t prev = (s * 7 + 1) % 64;
      for (int64_t t : float_gen[size_t(s)]) follows += t == (5 * prev + 3) % 64, ++generated, prev = t;
    }
    std::cout << "[quant] " << models::position_name(c.position) << " float32 follows the rule for " << follows
              << " / " << generated << " tokens\n";
    EXPECT_GE(double(follows) / double(generated), 0.9);
    // Measured (max |logit difference| / max |float logit|): int8 0.0025,
    // int4 (groups of 32) 0.035 to 0.041, f16 0.00012; greedy tokens: all
    // 320 equal for each. f16's bound: each weight is off by at most 2^-11
    // relative, so a logit by about that times the sum of |terms|.
    for (auto [format, group, tol] : {std::tuple{WeightFormat::int8, int64_t(0), 0.01f},
                                      {WeightFormat::int4, int64_t(32), 0.1f},
                                      {WeightFormat::f16, int64_t(0), 2e-3f}}) {
      const auto q = quantize_weights(*fw, format, group);
      GPTRunner qr(q);
      const float diff = max_abs_diff(run(qr, prompt, {}), ref) / max_abs(ref);
      const auto gen = greedy(q, 40);
      int64_t same = 0, total = 0;
      for (size_t s = 0; s < gen.size(); ++s)
        for (size_t i = 0; i < gen[s].size(); ++i) same += gen[s][i] == float_gen[s][i], ++total;
      std::cout << "[quant] " << models::position_name(c.position) << " " << weight_format_name(format)
                << ": max |logit - float logit| / max |float logit| = " << diff << ", greedy tokens equal "
                << same << " / " << total << "\n";
      EXPECT_LE(diff, tol);
      EXPECT_GE(double(same) / double(total), format == WeightFormat::int4 ? 0.9 : 0.97);
    }
  }
}

TEST(QuantIo, FileRoundTripGivesTheSameLogits) {
  const std::string dir = tmp_dir("io");
  for (const models::GPTConfig& c : {classic(), modern()})
    for (bool head : {true, false})
      for (WeightFormat format : {WeightFormat::int4, WeightFormat::f16}) {
        Generator gen(5);
        models::GPT model(c, &gen);
        const int64_t group = format == WeightFormat::int4 ? 64 : 0;
        const auto q = quantize_weights(*runner_weights(model), format, group, head);
        q->prepack();  // a float head is packed as the loaded file's is, so both take the same kernels
        const std::string path = dir + "/model.safetensors";
        save_runner_weights(*q, path);
        const auto loaded = load_runner_weights(path, c);
        EXPECT_EQ(loaded->format, format);
        EXPECT_EQ(loaded->group_size, group);
        for (const auto& [name, m] : q->quantized) EXPECT_EQ(loaded->quantized.at(name).data, m.data) << name;
        EXPECT_EQ(loaded->head_quantized, head);
        EXPECT_EQ(loaded->parameters, model.num_parameters());
        GPTRunner a(q), b(loaded);
        EXPECT_EQ(run(a, kPrompt, kDecode), run(b, kPrompt, kDecode));
      }
  // A float file loads through the model's own loader.
  Generator gen(6);
  models::GPT model(classic(), &gen);
  save_runner_weights(*runner_weights(model), dir + "/float.safetensors");
  const auto loaded = load_runner_weights(dir + "/float.safetensors", classic());
  EXPECT_EQ(loaded->format, WeightFormat::f32);
  EXPECT_TRUE(loaded->quantized.empty());
  // The file's weights are packed for the GEMM as they load (prefill
  // products then read them packed, with GELU applied as they are written):
  // the model's weights packed alike give the same bits.
  auto live = runner_weights(model);
  live->prepack();
  GPTRunner a(live), b(loaded);
  EXPECT_EQ(run(a, kPrompt, {}), run(b, kPrompt, {}));
  fs::remove_all(dir);
}

// Rewrites a file's tensors and metadata through `edit`, keeping the data.
void rewrite(const std::string& from, const std::string& to,
             const std::function<void(std::vector<SafetensorsWriteItem>&, std::map<std::string, std::string>&)>& edit) {
  MappedFile f(from);
  const SafetensorsHeader h = parse_safetensors_header(f.data(), f.size(), from);
  std::vector<SafetensorsWriteItem> items;
  for (const auto& e : h.entries)
    items.push_back({e.name, e.dtype, e.shape, f.data() + h.data_start + e.begin, size_t(e.end - e.begin)});
  std::map<std::string, std::string> meta = h.metadata;
  edit(items, meta);
  write_safetensors(to, items, meta);
}

TEST(QuantIo, DamagedFilesGiveOneClearError) {
  const std::string dir = tmp_dir("damaged");
  const models::GPTConfig c = classic();
  Generator gen(5);
  models::GPT model(c, &gen);
  const std::string good = dir + "/good.safetensors", bad = dir + "/bad.safetensors";
  save_runner_weights(*quantize_weights(*runner_weights(model), WeightFormat::int8, 0), good);
  const std::string scale = "transformer.h.0.attn.c_attn.weight_scale";
  auto find = [](std::vector<SafetensorsWriteItem>& items, const std::string& name) -> SafetensorsWriteItem& {
    for (auto& i : items)
      if (i.name == name) return i;
    throw std::runtime_error("no " + name);
  };
  // The scales' bytes reshaped: [192] -> [96, 2].
  rewrite(good, bad, [&](auto& items, auto&) { find(items, scale).shape = {96, 2}; });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad + ": scales " + scale +
                                                " are F32 [96, 2], expected F32 [192]");
  std::vector<float> negative(192, -1.0f);
  rewrite(good, bad, [&](auto& items, auto&) { find(items, scale).data = negative.data(); });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad + ": scales " + scale + " hold -1 at index 0");
  rewrite(good, bad, [&](auto& items, auto&) {
    items.erase(std::find_if(items.begin(), items.end(), [&](auto& i) { return i.name == scale; }));
  });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad + ": int8 tensor transformer.h.0.attn.c_attn.weight has no " + scale);
  rewrite(good, bad, [&](auto&, auto& meta) { meta["quantization"] = "int4"; });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad + ": metadata \"quantization_group_size\" is ''");
  rewrite(good, bad, [&](auto&, auto& meta) { meta.erase("quantization"); });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad + " holds I8/U8 tensors but no \"quantization\" metadata");
  float extra = 0;
  rewrite(good, bad, [&](auto& items, auto&) { items.push_back({"extra", "F32", {1}, &extra, 4}); });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad + ": unexpected tensor extra (F32 [1])");
  models::GPTConfig other = c;
  other.n_embd = 32;
  EXPECT_ERROR(load_runner_weights(good, other),
               "[quantized model] " + good + ": int8 tensor lm_head.weight has shape [97, 64], expected [97, 32]");
  // f16: no scales, and every weight must be finite.
  const std::string good16 = dir + "/good16.safetensors";
  save_runner_weights(*quantize_weights(*runner_weights(model), WeightFormat::f16, 0), good16);
  EXPECT_NO_THROW(load_runner_weights(good16, c));
  std::vector<uint16_t> infinite(size_t(192 * 64), 0);
  infinite[70] = 0xFC00;  // -inf at [1, 6]
  rewrite(good16, bad, [&](auto& items, auto&) { find(items, "transformer.h.0.attn.c_attn.weight").data = infinite.data(); });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad +
                                                ": f16 tensor transformer.h.0.attn.c_attn.weight holds -inf at [1, 6]");
  rewrite(good16, bad, [&](auto&, auto& meta) { meta["quantization"] = "int8"; });
  EXPECT_ERROR(load_runner_weights(bad, c), "[quantized model] " + bad +
                                                ": tensor lm_head.weight has dtype F16, expected F32 or I8 (int8)");
  fs::remove_all(dir);
}

TEST(QuantIo, TrainingRefusesAQuantizedCheckpoint) {
  const std::string dir = tmp_dir("ckpt");
  std::ofstream(dir + "/trainer.json") << R"({"kind": "sft", "quantization": {"scheme": "int8"}})";
  EXPECT_ERROR(train::open_model_checkpoint(dir, {"pretrain", "sft"}, "sft", "--init"),
               "[sft] " + dir + " holds int8-quantized weights; quantized checkpoints are for inference (serve, chat, eval, sample)");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ember::infer
