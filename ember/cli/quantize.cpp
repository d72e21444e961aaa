// `ember quantize`: writes a weight-only quantized copy of a GPT checkpoint
// (int8 per output row, int4 per group of columns, or float16; infer/quant.h)
// for inference. The new folder is a checkpoint like any other (model.safetensors,
// trainer.json, tokenizer/), so `ember serve`, `chat`, `eval`, `sample` and
// `bench generate` run it as they run the float one; training refuses it.
// With --val-data it reports the validation loss of the float and the
// quantized weights, both through the inference runner on the same windows.
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/data/loader.h"
#include "ember/infer/gpt_runner.h"
#include "ember/infer/quant_io.h"
#include "ember/io/atomic_file.h"
#include "ember/nn/module_io.h"
#include "ember/train/checkpoint.h"
#include "ember/train/model_checkpoint.h"

namespace ember::cli {
namespace {
namespace fs = std::filesystem;

struct QuantizeOptions {
  std::string checkpoint, to, out, val_data;
  int64_t group_size = 64;
  bool float_head = false;
  int64_t val_windows = 16, val_seq_len = 0;
  int threads = 0;
  bool json = false;
};

struct ValLoss {
  double loss = 0;
  int64_t tokens = 0;
};

// Mean next-token cross-entropy over `windows` sequential validation windows,
// each run from an empty cache through the runner (every position's logits).
ValLoss runner_val_loss(infer::GPTRunner& runner, const std::string& data_dir, const Tokenizer& tok, int64_t windows,
                        int64_t seq_len) {
  data::TokenLoader loader(data_dir, "val", 1, seq_len, 0, data::Order::sequential);
  loader.check_compatible(tok);
  infer::KVCache cache = runner.new_cache(seq_len);
  const int64_t V = runner.config().vocab_size;
  std::vector<float> logits;
  double total = 0;
  int64_t n = 0;
  for (int64_t w = 0; w < windows; ++w) {
    auto [x, y] = loader.next();
    const std::vector<int64_t> in = x.to_vector<int64_t>(), target = y.to_vector<int64_t>();
    cache.reset();
    runner.forward({infer::SeqChunk{in.data(), seq_len, &cache}}, logits, /*all_logits=*/true);
    for (int64_t t = 0; t < seq_len; ++t) {
      const float* l = logits.data() + t * V;
      double mx = l[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(l[v]));
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(l[v]) - mx);
      total += mx + std::log(sum) - double(l[target[size_t(t)]]);
      ++n;
    }
  }
  return {total / double(n), n};
}

void run_quantize(const QuantizeOptions& o) {
  const char* op = "quantize";
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const infer::WeightFormat format = infer::weight_format_from_name(o.to, op);
  if (format == infer::WeightFormat::int4) infer::check_group_size(o.group_size, op);
  const train::ModelCheckpoint ckpt =
      train::open_model_checkpoint(o.checkpoint, {"pretrain", "sft", "dpo", "ppo"}, op, "--checkpoint", true);
  if (!ckpt.quantization.empty())
    fail(op, ckpt.dir, " is already ", ckpt.quantization, "-quantized; quantize the float32 checkpoint it came from");
  std::error_code ec;
  if (fs::exists(o.out, ec)) fail(op, "--out ", o.out, " already exists; give a new folder");
  if (o.val_windows < 1) fail(op, "--val-windows must be >= 1, got ", o.val_windows);

  models::GPT model(ckpt.config);
  nn::load_module(model, ckpt.model_path);
  model.eval();
  const auto float_weights = infer::runner_weights(model);
  const auto quant = infer::quantize_weights(*float_weights, format, o.group_size, !o.float_head);
  infer::GPTRunner float_runner(float_weights), quant_runner(quant);

  nlohmann::json q = {{"scheme", infer::weight_format_name(format)},
                      {"group_size", quant->group_size},
                      {"head", o.float_head ? "float32" : infer::weight_format_name(format)},
                      {"source", fs::absolute(ckpt.dir).lexically_normal().string()},
                      {"weight_bytes_float32", float_runner.weight_bytes()},
                      {"weight_bytes", quant_runner.weight_bytes()}};
  if (!o.val_data.empty()) {
    const int64_t T = o.val_seq_len > 0 ? o.val_seq_len : std::min<int64_t>(256, ckpt.config.block_size);
    if (T > ckpt.config.block_size) fail(op, "--val-seq-len ", T, " exceeds the model's block_size ", ckpt.config.block_size);
    const Tokenizer tok = train::load_checkpoint_tokenizer(ckpt);
    const ValLoss before = runner_val_loss(float_runner, o.val_data, tok, o.val_windows, T);
    const ValLoss after = runner_val_loss(quant_runner, o.val_data, tok, o.val_windows, T);
    q["val"] = {{"data", o.val_data},         {"windows", o.val_windows},   {"seq_len", T},
                {"tokens", after.tokens},     {"loss_float32", before.loss}, {"loss", after.loss},
                {"loss_delta", after.loss - before.loss}};
  }

  // Assemble under a temporary name beside --out, then rename: a crash or an
  // error never leaves a half-written checkpoint at --out.
  const fs::path out = fs::absolute(o.out).lexically_normal();
  const fs::path parent = out.parent_path();
  fs::create_directories(parent);
  const fs::path tmp = parent / ("." + out.filename().string() + ".tmp." + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    infer::save_runner_weights(*quant, (tmp / "model.safetensors").string());
    nlohmann::json trainer = ckpt.trainer;
    trainer["quantization"] = q;
    write_file_atomic((tmp / "trainer.json").string(), trainer.dump(2) + "\n");
    train::copy_folder(ckpt.tokenizer_dir, (tmp / "tokenizer").string());
    train::sync_folder(tmp.string());
    fs::rename(tmp, out);
    train::sync_folder(parent.string());
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    fail(op, "cannot write ", out.string(), ": ", e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }

  if (o.json) {
    nlohmann::json j = q;
    j["out"] = out.string();
    std::cout << j.dump() << std::endl;
    return;
  }
  auto mb = [](int64_t b) { return str_cat(std::round(double(b) / 1e4) / 100, " MB"); };
  std::cout << "quantized " << ckpt.dir << " -> " << out.string() << " (" << o.to
            << (format == infer::WeightFormat::int4   ? str_cat(", groups of ", o.group_size)
                : format == infer::WeightFormat::int8 ? std::string(", per row")
                                                      : std::string())
            << (o.float_head ? ", float32 lm_head" : "") << ")\n"
            << "weights read per token: " << mb(float_runner.weight_bytes()) << " float32 -> "
            << mb(quant_runner.weight_bytes()) << " " << o.to << "\n";
  if (q.contains("val")) {
    const auto& v = q["val"];
    std::printf("val loss over %lld tokens: float32 %.4f, %s %.4f (%+.4f)\n", (long long)v["tokens"].get<int64_t>(),
                v["loss_float32"].get<double>(), o.to.c_str(), v["loss"].get<double>(), v["loss_delta"].get<double>());
  }
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  auto* cmd = app.add_subcommand("quantize", "Write a weight-only quantized (int8 / int4 / f16) copy of a checkpoint for inference");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint folder (pretrain, sft, dpo, ppo) or its run folder")->required();
  cmd->add_option("--to", o->to, "int8 (a scale per output row), int4 (a scale per group of columns) or f16 (IEEE half)")
      ->required();
  cmd->add_option("--out", o->out, "New checkpoint folder (must not exist)")->required();
  cmd->add_option("--group-size", o->group_size, "int4: columns per scale (32, 64 or 128)")->capture_default_str();
  cmd->add_flag("--float-head", o->float_head, "Keep lm_head in float32 (default: quantized like the blocks)");
  cmd->add_option("--val-data", o->val_data, "Data folder (`ember data prepare`): report the val loss before and after");
  cmd->add_option("--val-windows", o->val_windows, "Validation windows")->capture_default_str();
  cmd->add_option("--val-seq-len", o->val_seq_len, "Tokens per window (default: min(256, block_size))");
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_flag("--json", o->json, "Print one JSON object instead of the summary");
  cmd->callback([o] { run_quantize(*o); });
}

}  // namespace ember::cli
