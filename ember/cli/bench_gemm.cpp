// `ember bench gemm`: ember's packed float32 GEMM against oneDNN's sgemm on
// the matrix products of a GPT training step (forward x W^T, input gradient
// dY W, weight gradient dY^T X, for each linear layer and the tied lm head),
// plus a square product, timed interleaved in the same process (round by
// round, each library in turn) so that a noisy host slows both alike. One
// JSON line: per shape GFLOP/s of each and their ratio, and the ratio of the
// summed times (what a training step's products would gain).
//
// With --frozen: the inference products x Wᵀ + bias of a prefill of --rows
// tokens instead, the weight row-major (what eager runs: cpu::gemm_bias)
// against the same weight packed once in each layout this machine has
// (cpu/packed_weights.h: ember's panels, oneDNN's blocked layout), as a graph
// compiled with frozen weights and the serving runner multiply.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/packed_weights.h"
#include "ember/backend/cpu/sgemm_packed.h"
#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/core/tensor.h"
#include "ember/models/gpt_config.h"
#include "ember/util/stats.h"

namespace ember::cli {
namespace {

struct GemmShape {
  std::string name;
  bool trans_a, trans_b;
  int64_t m, n, k;
};

// The products of one training step of the preset, by layer kind: the rows are
// the batch's tokens; each layer's three products; the lm head (tied, so no bias).
// (A SwiGLU MLP has two products of the fc shape; they are timed once.)
std::vector<GemmShape> step_shapes(const models::GPTConfig& c, int64_t tokens) {
  const int64_t d = c.n_embd, qkv = c.n_embd + 2 * c.n_kv_head * (c.n_embd / c.n_head), ff = c.mlp_hidden();
  std::vector<GemmShape> out;
  auto layer = [&](const std::string& name, int64_t in, int64_t outf) {
    out.push_back({name + " forward", false, true, tokens, outf, in});
    out.push_back({name + " input grad", false, false, tokens, in, outf});
    out.push_back({name + " weight grad", true, false, outf, in, tokens});
  };
  layer("qkv", d, qkv);
  layer("attn proj", d, d);
  layer("mlp fc", d, ff);
  layer("mlp proj", ff, d);
  layer("lm head", d, c.vocab_size);
  out.push_back({"square 2048", false, false, 2048, 2048, 2048});
  return out;
}

struct BenchGemmOptions {
  std::string preset = "small";
  int threads = 0;  // 0: all cores
  int rounds = 5;
  double min_seconds = 0.2;  // per shape, library and round
  bool frozen = false;
  int64_t rows = 256;  // with frozen
};

// Seconds per call of `run`, repeated for at least `min_seconds` (and twice) after a warm-up call.
template <typename Fn>
double seconds_per_call(Fn&& run, double min_seconds) {
  run();  // warm: page in C, pack buffers, create primitives
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < min_seconds || reps < 2) {
    run();
    ++reps;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return elapsed / reps;
}

void bench_frozen(const BenchGemmOptions& o, const models::GPTConfig& cfg) {
  // The training step's forward products at the prefill's rows; the head
  // multiplies only the last position's row (a sliced prefill).
  std::vector<GemmShape> shapes;
  for (GemmShape s : step_shapes(cfg, o.rows)) {
    const std::string suffix = " forward";
    if (s.name.size() <= suffix.size() || s.name.compare(s.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    s.name.resize(s.name.size() - suffix.size());
    if (s.name == "lm head") s.name += ", last row", s.m = 1;
    shapes.push_back(s);
  }
  std::vector<cpu::WeightLayout> layouts;
  for (cpu::WeightLayout l : {cpu::WeightLayout::ember_panels, cpu::WeightLayout::onednn_blocked})
    if (cpu::packed_weight_floats(l, 64, 64) > 0) layouts.push_back(l);
  nlohmann::json rows = nlohmann::json::array();
  std::vector<double> total(layouts.size() + 1, 0.0);
  for (const GemmShape& s : shapes) {
    std::vector<float> a(size_t(s.m * s.k), 0.5f), w(size_t(s.n * s.k), 0.25f), bias(size_t(s.n), 1.0f),
        c(size_t(s.m * s.n));
    std::vector<Tensor> packed;
    for (cpu::WeightLayout l : layouts) {
      packed.push_back(Tensor::empty({cpu::packed_weight_floats(l, s.k, s.n)}));
      cpu::pack_weight(l, true, s.k, s.n, w.data(), s.k, packed.back().data<float>());
    }
    std::vector<std::vector<double>> times(layouts.size() + 1);
    for (int r = 0; r < o.rounds; ++r) {
      times[0].push_back(seconds_per_call(
          [&] {
            cpu::gemm_bias(false, true, s.m, s.n, s.k, a.data(), s.k, w.data(), s.k, bias.data(), c.data(), s.n);
          },
          o.min_seconds));
      for (size_t i = 0; i < layouts.size(); ++i)
        times[i + 1].push_back(seconds_per_call(
            [&] {
              cpu::gemm_packed_weights(layouts[i], s.m, s.n, s.k, a.data(), s.k, packed[i].data<float>(),
                                       bias.data(), c.data(), s.n);
            },
            o.min_seconds));
    }
    const double flop = 2.0 * double(s.m) * double(s.n) * double(s.k), plain = median(times[0]);
    nlohmann::json row = {{"name", s.name}, {"m", s.m}, {"n", s.n}, {"k", s.k}, {"row_major_gflops", flop / plain / 1e9}};
    total[0] += plain;
    for (size_t i = 0; i < layouts.size(); ++i) {
      const double t = median(times[i + 1]);
      const std::string name = cpu::weight_layout_name(layouts[i]);
      row[name + "_gflops"] = flop / t / 1e9;
      row[name + "_over_row_major"] = plain / t;
      total[i + 1] += t;
    }
    rows.push_back(row);
  }
  nlohmann::json j = {{"bench", "gemm"},       {"frozen", true},       {"preset", o.preset},
                      {"rows", o.rows},        {"threads", omp_get_max_threads()},
                      {"rounds", o.rounds},    {"frozen_layout", cpu::weight_layout_name(cpu::frozen_weight_layout())},
                      {"shapes", rows}};
  for (size_t i = 0; i < layouts.size(); ++i)
    j[std::string("total_time_row_major_over_") + cpu::weight_layout_name(layouts[i])] = total[0] / total[i + 1];
  std::cout << j.dump() << std::endl;
}

void bench_gemm(const BenchGemmOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const models::GPTConfig cfg = models::GPTConfig::preset(o.preset);
  if (o.frozen) return bench_frozen(o, cfg);
  const int64_t tokens = cfg.block_size * cfg.batch_size;
  const cpu::SgemmImpl before = cpu::sgemm_impl();
  const bool packed_available = cpu::sgemm_packed_available();
  nlohmann::json rows = nlohmann::json::array();
  double total_ember = 0, total_onednn = 0;
  for (const GemmShape& s : step_shapes(cfg, tokens)) {
    std::vector<float> a(size_t(s.m * s.k), 0.5f), b(size_t(s.k * s.n), 0.25f), c(size_t(s.m * s.n));
    const int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    auto time_one = [&](cpu::SgemmImpl impl) {
      cpu::set_sgemm_impl(impl);
      return seconds_per_call(
          [&] {
            cpu::gemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
          },
          o.min_seconds);
    };
    std::vector<double> te, td;
    for (int r = 0; r < o.rounds; ++r) {
      if (packed_available) te.push_back(time_one(cpu::SgemmImpl::ember));
      td.push_back(time_one(cpu::SgemmImpl::onednn));
    }
    const double flop = 2.0 * double(s.m) * double(s.n) * double(s.k);
    const double d = median(td);
    nlohmann::json row = {{"name", s.name}, {"m", s.m}, {"n", s.n}, {"k", s.k},
                          {"op", std::string(s.trans_a ? "T" : "N") + (s.trans_b ? "T" : "N")},
                          {"onednn_gflops", flop / d / 1e9}};
    total_onednn += d;
    if (packed_available) {
      const double e = median(te);
      row["ember_gflops"] = flop / e / 1e9;
      row["ember_over_onednn"] = d / e;
      total_ember += e;
    }
    rows.push_back(row);
  }
  cpu::set_sgemm_impl(before);
  nlohmann::json j = {{"bench", "gemm"},
                      {"preset", o.preset},
                      {"tokens", tokens},
                      {"threads", omp_get_max_threads()},
                      {"rounds", o.rounds},
                      {"ember_available", packed_available},
                      {"shapes", rows}};
  if (total_ember > 0) j["total_time_onednn_over_ember"] = total_onednn / total_ember;
  std::cout << j.dump() << std::endl;
}

}  // namespace

void register_bench_gemm(CLI::App& bench) {
  auto o = std::make_shared<BenchGemmOptions>();
  auto* cmd = bench.add_subcommand(
      "gemm", "ember's packed float32 GEMM against oneDNN's sgemm on a GPT preset's training-step products");
  cmd->add_option("--preset", o->preset, "Model preset whose products are timed")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_option("--rounds", o->rounds, "Interleaved rounds per shape (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--min-seconds", o->min_seconds, "Minimum time per shape, library and round")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  cmd->add_flag("--frozen", o->frozen,
                 "Time the inference products x Wᵀ + bias of a prefill (--rows tokens) with the weight row-major "
                 "against the weight packed once in each layout this machine has (frozen weights)");
  cmd->add_option("--rows", o->rows, "Prefill tokens (rows) with --frozen")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->callback([o] { bench_gemm(*o); });
}

}  // namespace ember::cli
