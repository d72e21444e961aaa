// `ember bench train`: end-to-end training throughput of a GPT preset on
// random tokens, as one JSON line (tokens_per_s, step_ms, mfu, peak_rss_mb).
// A step is what `ember pretrain` does per step: forward, cross-entropy,
// backward, gradient clipping and a fused AdamW update.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/models/gpt.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/train/machine_peak.h"

namespace ember::cli {
namespace {

struct BenchTrainOptions {
  std::string preset = "small";
  int64_t steps = 10, warmup = 2, batch = 0, seq_len = 0;
  int threads = 0;
  double peak_gflops = 0;
};

void bench_train(const BenchTrainOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  models::GPTConfig cfg = models::GPTConfig::preset(o.preset);
  cfg.dropout = 0.0;
  const int64_t B = o.batch > 0 ? o.batch : cfg.batch_size;
  const int64_t T = o.seq_len > 0 ? o.seq_len : cfg.block_size;
  if (T > cfg.block_size) fail("bench", "--seq-len ", T, " exceeds block_size ", cfg.block_size);
  const double peak = o.peak_gflops > 0 ? o.peak_gflops : train::measure_gemm_peak_gflops();
  Generator gen(1234);
  models::GPT model(cfg, &gen);
  optim::AdamWOptions adam;
  adam.lr = 1e-4;  // small, so that repeated steps on random data stay finite
  adam.weight_decay = 0.1;
  optim::AdamW opt(optim::make_param_groups(model, adam.weight_decay), adam);
  Tensor x = randint(0, cfg.vocab_size, {B, T}, Device::cpu(), &gen);
  Tensor y = randint(0, cfg.vocab_size, {B, T}, Device::cpu(), &gen);
  std::vector<double> ms;
  double loss_value = 0;
  for (int64_t i = 0; i < o.warmup + o.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    Tensor loss = model.loss(x, y);
    loss.backward();
    optim::clip_grad_norm_(model.parameters(), 1.0);
    opt.step();
    loss_value = loss.item<double>();
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= o.warmup) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double step_ms = ms[ms.size() / 2];
  const double tps = double(B * T) / (step_ms / 1e3);
  const double mfu = tps * double(model.flops_per_token(T)) / (peak * 1e9);
  nlohmann::json j = {{"bench", "train"},
                      {"preset", o.preset},
                      {"threads", omp_get_max_threads()},
                      {"batch", B},
                      {"seq_len", T},
                      {"params", model.num_parameters()},
                      {"steps", o.steps},
                      {"tokens_per_s", tps},
                      {"step_ms", step_ms},
                      {"step_ms_min", ms.front()},
                      {"step_ms_max", ms.back()},
                      {"mfu", mfu},
                      {"gemm_peak_gflops", peak},
                      {"flops_per_token", model.flops_per_token(T)},
                      {"peak_rss_mb", train::peak_rss_mb()},
                      {"final_loss", loss_value}};
  std::cout << j.dump() << std::endl;
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "End-to-end benchmarks, one JSON line each");
  bench->require_subcommand(1);
  auto o = std::make_shared<BenchTrainOptions>();
  auto* cmd = bench->add_subcommand("train", "Training throughput of a GPT preset on random tokens");
  cmd->add_option("--preset", o->preset, "Model preset")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Timed steps (the median is reported)")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", o->warmup, "Untimed steps first")->capture_default_str()->check(CLI::Range(0, 1000));
  cmd->add_option("--batch", o->batch, "Sequences per step (default: the preset's)");
  cmd->add_option("--seq-len", o->seq_len, "Tokens per sequence (default: block_size)");
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_option("--peak-gflops", o->peak_gflops, "GEMM peak for MFU (default: measured first)");
  cmd->callback([o] { bench_train(*o); });
}

}  // namespace ember::cli
