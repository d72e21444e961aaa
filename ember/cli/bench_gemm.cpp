// `ember bench gemm`: ember's packed float32 GEMM against oneDNN's sgemm on
// the matrix products of a GPT training step (forward x W^T, input gradient
// dY W, weight gradient dY^T X, for each linear layer and the tied lm head),
// plus a square product, timed interleaved in the same process (round by
// round, each library in turn) so that a noisy host slows both alike. One
// JSON line: per shape GFLOP/s of each and their ratio, and the ratio of the
// summed times (what a training step's products would gain).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <vector>

#include "ember/backend/cpu/gemm.h"
#include "ember/backend/cpu/sgemm_packed.h"
#include "ember/cli/commands.h"
#include "ember/core/error.h"
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
};

void bench_gemm(const BenchGemmOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const models::GPTConfig cfg = models::GPTConfig::preset(o.preset);
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
      auto run = [&] {
        cpu::gemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), s.n);
      };
      run();  // warm: page in C, pack buffers
      int reps = 0;
      const auto t0 = std::chrono::steady_clock::now();
      double elapsed = 0;
      while (elapsed < o.min_seconds || reps < 2) {
        run();
        ++reps;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      return elapsed / reps;
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
  cmd->callback([o] { bench_gemm(*o); });
}

}  // namespace ember::cli
