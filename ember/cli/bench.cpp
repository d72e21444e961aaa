// `ember bench train`: end-to-end training throughput of a GPT preset on
// random tokens, as one JSON line (tokens_per_s, step_ms, mfu, peak_rss_mb).
// A step is what `ember pretrain` does per step: forward, cross-entropy,
// backward, gradient clipping and a fused AdamW update; with --compile the
// whole step (forward, loss, backward, clipping, AdamW) runs as one compiled
// graph (ember::compile). Under mpirun the ranks train data parallel and the
// line adds how much of the gradient all-reduce backward hides
// (allreduce_overlap, allreduce_exposed_ms against allreduce_alone_ms); with
// --zero they train with ZeRO-1 instead (optimizer_state_mib per rank); with
// --tensor-parallel all ranks train one model split across them on the same
// batch (tokens_per_s counts that batch once).
// `ember bench generate`: batch-1 prefill and decode speed of the inference
// path (infer/gpt_runner) for a preset with random weights or a checkpoint,
// float32 or weight-only quantized (--quant f16|int8|int4, or a quantized checkpoint);
// with --compile, prefill through the GPT module compiled against the same code eager.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ember/autograd/grad_mode.h"
#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/infer/gpt_runner.h"
#include "ember/infer/quant_io.h"
#include "ember/nn/module_io.h"
#include "ember/dist/communicator.h"
#include "ember/dist/data_parallel.h"
#include "ember/dist/tensor_parallel_train.h"
#include "ember/dist/zero.h"
#include "ember/graph/compile.h"
#include "ember/models/gpt.h"
#include "ember/models/gpt_tensor_parallel.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/train/checkpoint.h"
#include "ember/train/machine_peak.h"
#include "ember/util/stats.h"

namespace ember::cli {
namespace {

struct BenchTrainOptions {
  std::string preset = "small";
  int64_t steps = 10, warmup = 2, batch = 0, seq_len = 0;
  int threads = 0;
  std::string device = "cpu";
  double peak_gflops = 0;
  bool compile = false;  // the whole step as one compiled graph (ember::compile)
  bool zero = false;     // ZeRO-1 (dist::ZeroAdamW) in place of data parallel + AdamW
  bool tensor_parallel = false;  // one model split across the ranks (models::make_tensor_parallel)
};

void bench_train(const BenchTrainOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  models::GPTConfig cfg = models::GPTConfig::preset(o.preset);
  cfg.dropout = 0.0;
  const int64_t B = o.batch > 0 ? o.batch : cfg.batch_size;
  const int64_t T = o.seq_len > 0 ? o.seq_len : cfg.block_size;
  if (T > cfg.block_size) fail("bench", "--seq-len ", T, " exceeds block_size ", cfg.block_size);
  // Under mpirun every rank trains B sequences of its own, data parallel
  // (dist::DataParallel), and tokens_per_s counts all ranks.
  std::shared_ptr<dist::Communicator> comm = dist::world();
  const int world = comm->size(), rank = comm->rank();
  auto all_ranks = [&](double v, dist::CommOp op) {
    if (world == 1) return v;
    Tensor t = tensor({v}, {1}, DType::f64);
    comm->all_reduce(t, op);
    return t.item<double>();
  };
  const Device device = Device::parse(o.device);
  if (device.is_cuda() && (world > 1 || o.zero || o.tensor_parallel))
    fail("bench", "--device ", o.device, " runs one process (no mpirun, --zero or --tensor-parallel there yet)");
  // The machine's peak is the sum of what the ranks reach side by side.
  double peak = o.peak_gflops > 0 ? o.peak_gflops
                                  : all_ranks(train::measure_gemm_peak_gflops(device), dist::CommOp::sum);
  const bool tp = o.tensor_parallel;
  if (tp && (o.zero || o.compile)) fail("bench", "--tensor-parallel does not combine with --zero or --compile");
  Generator gen(1234);
  auto model_ptr = std::make_shared<models::GPT>(cfg, &gen);
  models::GPT& model = *model_ptr;
  const int64_t full_params = model.num_parameters(), flops_per_token = model.flops_per_token(T);
  if (tp) models::make_tensor_parallel(model, comm);
  model.to(device);
  optim::AdamWOptions adam;
  adam.lr = 1e-4;  // small, so that repeated steps on random data stay finite
  adam.weight_decay = 0.1;
  optim::AdamW opt(optim::make_param_groups(model, adam.weight_decay), adam);
  // --zero: the moments sharded over the ranks, gradients reduce-scattered
  // after backward (no overlap); otherwise data parallel's overlapped buckets.
  std::unique_ptr<dist::ZeroAdamW> zero;
  std::unique_ptr<dist::DataParallel> ddp;
  if (o.zero)
    zero = std::make_unique<dist::ZeroAdamW>(optim::make_param_groups(model, adam.weight_decay), comm, adam);
  else if (world > 1 && !tp)
    ddp = std::make_unique<dist::DataParallel>(model_ptr, comm);
  Generator data_gen(1234 + uint64_t(tp ? 0 : rank));
  Tensor x = to_device(randint(0, cfg.vocab_size, {B, T}, Device::cpu(), &data_gen), device);
  Tensor y = to_device(randint(0, cfg.vocab_size, {B, T}, Device::cpu(), &data_gen), device);
  // The compiled step is the eager one traced: forward, loss, backward,
  // clipping (its tensor form), AdamW and zero_grad, so that gradients never
  // leave the graph. Data parallel runs sync gradients between backward and
  // clipping, outside any graph: they keep the eager step.
  CompiledFunction compiled_step = compile([&](const std::vector<Tensor>& in) {
    Tensor loss = model.loss(in[0], in[1]);
    loss.backward();
    optim::clip_grad_norm_traceable_(model.parameters(), 1.0);
    opt.step();
    opt.zero_grad();
    return std::vector<Tensor>{loss};
  });
  if (o.compile && (ddp || zero))
    fail("bench", "--compile does not combine with data parallel ranks or --zero yet (run one process)");
  std::vector<double> ms;
  std::vector<dist::DataParallel::SyncTiming> sync;
  double loss_value = 0;
  Allocator& alloc = allocator_for(device);
  for (int64_t i = 0; i < o.warmup + o.steps; ++i) {
    if (i == o.warmup) alloc.reset_peak();
    const auto t0 = std::chrono::steady_clock::now();
    Tensor loss;
    if (o.compile) {
      loss = compiled_step({x, y})[0];
    } else if (zero) {
      zero->zero_grad();
      loss = model.loss(x, y);
      loss.backward();
      zero->sync_gradients(1.0);
      zero->step();
    } else {
      opt.zero_grad();
      loss = model.loss(x, y);
      loss.backward();
      if (ddp) {
        ddp->finish_gradient_sync();
        if (i >= o.warmup) sync.push_back(ddp->last_sync_timing());
      }
      if (tp) dist::clip_grad_norm_(model, 1.0);
      else optim::clip_grad_norm_(model.parameters(), 1.0);
      opt.step();
    }
    loss_value = loss.item<double>();  // waits for a device's queued work
    // A step lasts as long as its slowest rank.
    const double t = all_ranks(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(), dist::CommOp::max);
    if (i >= o.warmup) ms.push_back(t);
  }
  const double step_ms = median(ms);
  const double tps = double(B * T * (tp ? 1 : world)) / (step_ms / 1e3);
  const double rss_max = all_ranks(train::peak_rss_mb(), dist::CommOp::max);
  const double alloc_peak_mb = all_ranks(double(alloc.stats().peak_allocated_bytes) / (1 << 20), dist::CommOp::max);
  // Data parallel: how much of the gradient averaging backward hides. The
  // window measure (see DataParallel::SyncTiming) is checked against the same
  // bytes all-reduced alone, with nothing to overlap (median of 3, slowest rank).
  nlohmann::json overlap = nlohmann::json::object();
  if (ddp) {
    double overlap_ms = 0, exposed_ms = 0;
    std::vector<double> exposed;
    for (const auto& t : sync) overlap_ms += t.overlap_ms, exposed_ms += t.exposed_ms, exposed.push_back(t.exposed_ms);
    const double fraction = all_ranks(overlap_ms / std::max(1e-9, overlap_ms + exposed_ms), dist::CommOp::sum) / world;
    const double exposed_median = all_ranks(median(exposed), dist::CommOp::max);
    Tensor grads = zeros({ddp->gradient_bytes() / int64_t(sizeof(float))}, DType::f32);
    std::vector<double> alone;
    for (int k = 0; k < 3; ++k) {
      comm->barrier();
      const auto t0 = std::chrono::steady_clock::now();
      comm->all_reduce(grads, dist::CommOp::avg);
      alone.push_back(all_ranks(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(), dist::CommOp::max));
    }
    const double alone_ms = median(alone);
    overlap = {{"allreduce_overlap", fraction},
               {"allreduce_exposed_ms", exposed_median},
               {"allreduce_alone_ms", alone_ms},
               {"allreduce_hidden", std::clamp(1.0 - exposed_median / std::max(1e-9, alone_ms), 0.0, 1.0)},
               {"gradient_mb", double(ddp->gradient_bytes()) / (1 << 20)},
               {"buckets", ddp->bucket_params().size()}};
  }
  const double state_mib =
      double(zero ? zero->state_bytes() : 2 * model.num_parameters() * int64_t(sizeof(float))) / (1 << 20);
  if (rank != 0) return;
  const double mfu = train::model_flops_utilisation(tps * double(flops_per_token), peak);
  nlohmann::json j = {{"bench", "train"},
                      {"preset", o.preset},
                      {"threads", omp_get_max_threads()},
                      {"device", device.str()},
                      {"ranks", world},
                      {"batch", B},
                      {"seq_len", T},
                      {"params", full_params},
                      {"steps", o.steps},
                      {"tokens_per_s", tps},
                      {"step_ms", step_ms},
                      {"step_ms_min", ms.front()},
                      {"step_ms_max", ms.back()},
                      {"mfu", mfu},
                      {"gemm_peak_gflops", peak},
                      {"flops_per_token", flops_per_token},
                      {"peak_rss_mb", rss_max},
                      {"peak_alloc_mb", alloc_peak_mb},
                      {"compile", o.compile},
                      {"zero", o.zero},
                      {"tensor_parallel", tp},
                      {"optimizer_state_mib", state_mib},
                      {"final_loss", loss_value}};
  j.update(overlap);
  std::cout << j.dump() << std::endl;
}

struct BenchGenerateOptions {
  std::string preset = "small", checkpoint;
  int64_t prompt_len = 256, tokens = 128, runs = 5;
  std::string quant = "none";  // none: as stored; f16 / int8 / int4: convert float weights in memory first
  int64_t group_size = 64;
  int threads = 0;
  bool compile = false;  // also time prefill through the GPT module, eager and compiled
};

// Prefill through the GPT module itself (tensor ops, no KV cache): the final
// hidden states of the prompt, then the logits of its last position. Returns
// the median seconds of `runs` calls of `fn` after one warm-up call.
double median_prefill_s(const std::function<Tensor()>& fn, int64_t runs) {
  std::vector<double> s;
  for (int64_t r = 0; r < runs + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor logits = fn();
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) s.push_back(t);
  }
  return median(s);
}

// Prefill: prompt_len tokens into an empty cache (logits of the last only), the
// median of `runs`. Decode: `tokens` greedy steps of one token each, after a
// prompt short enough that they fit in block_size; the median over runs of the
// mean step time. decode_bandwidth_fraction: the weights' bytes read per second
// while decoding over the machine's measured memory bandwidth (its ceiling).
void bench_generate(const BenchGenerateOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  models::GPTConfig cfg;
  std::string dir;
  if (!o.checkpoint.empty()) {
    dir = train::resolve_checkpoint(o.checkpoint);
    const nlohmann::json trainer = train::read_trainer_json(dir);
    if (!trainer.contains("config")) fail("bench", dir, "/trainer.json has no \"config\" (not a GPT checkpoint?)");
    cfg = models::GPTConfig::from_json(trainer.at("config"));
  } else {
    cfg = models::GPTConfig::preset(o.preset);
  }
  cfg.dropout = 0.0;
  Generator gen(1234);
  std::shared_ptr<infer::RunnerWeights> weights =
      dir.empty() ? infer::runner_weights(models::GPT(cfg, &gen))
                  : infer::load_runner_weights(dir + "/model.safetensors", cfg, /*prepack=*/false);
  const infer::WeightFormat want = infer::weight_format_from_name(o.quant, "bench", /*allow_float=*/true);
  if (want != infer::WeightFormat::f32) {
    if (weights->format == infer::WeightFormat::f32)
      weights = infer::quantize_weights(*weights, want, o.group_size);
    else if (weights->format != want)
      fail("bench", dir, " holds ", infer::weight_format_name(weights->format), " weights; --quant ", o.quant,
           " needs a float32 checkpoint");
  }
  weights->prepack();  // the float Linear weights left, packed as serving loads them
  infer::GPTRunner runner(weights);
  const int64_t block = cfg.block_size;
  const int64_t P = std::min(o.prompt_len, block);
  const int64_t decode_tokens = std::min(o.tokens, block - 1);
  const int64_t decode_start = std::max<int64_t>(1, std::min(P, block - decode_tokens));
  Tensor ids = randint(0, cfg.vocab_size, {P}, Device::cpu(), &gen);
  std::vector<int64_t> prompt = ids.to_vector<int64_t>();
  infer::KVCache cache = runner.new_cache();
  std::vector<float> logits;
  auto now = [] { return std::chrono::steady_clock::now(); };
  std::vector<double> prefill_s, decode_s;
  for (int64_t run = 0; run < o.runs + 1; ++run) {  // run 0 warms up
    cache.reset();
    auto t0 = now();
    runner.forward({infer::SeqChunk{prompt.data(), P, &cache}}, logits);
    const double tp = std::chrono::duration<double>(now() - t0).count();
    cache.reset();
    runner.forward({infer::SeqChunk{prompt.data(), decode_start, &cache}}, logits);
    int64_t tok = 0;
    t0 = now();
    for (int64_t i = 0; i < decode_tokens; ++i) {
      tok = int64_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      runner.forward({infer::SeqChunk{&tok, 1, &cache}}, logits);
    }
    const double td = std::chrono::duration<double>(now() - t0).count();
    if (run > 0) prefill_s.push_back(tp), decode_s.push_back(td);
  }
  double tp = median(prefill_s);
  const double td = median(decode_s);
  // The decode's ceiling on this machine, measured after the timed runs so
  // that they do not start in the wake of 512 MiB of page faults.
  const train::MemoryBandwidth bandwidth = train::measure_memory_bandwidth();
  const double weight_read_gbps = double(runner.weight_bytes()) * double(decode_tokens) / td / 1e9;
  // --compile: the same prefill as the GPT module's code, eagerly and as a
  // compiled graph (passes and planned memory: slice sinking runs the last
  // block on one row, and with frozen weights each weight is packed once),
  // interleaved so that they see the same machine; prefill_tokens_per_s is
  // then the frozen compiled one. Decode stays on the runner (the graph has
  // no cache).
  double eager_tp = 0, live_tp = 0, runner_tp = tp;
  if (o.compile) {
    if (weights->format != infer::WeightFormat::f32) fail("bench", "--compile runs the float32 model; drop --quant");
    Generator model_gen(1234);
    models::GPT model(cfg, &model_gen);
    if (!dir.empty()) nn::load_module(model, dir + "/model.safetensors");
    model.eval();
    NoGradGuard no_grad;
    auto prefill = [&](const Tensor& x) { return model.last_logits(x); };
    auto fn = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{prefill(in[0])}; };
    // Frozen weights (inference: each weight packed once for the GEMM, as
    // torch.compile's freezing does) and, for comparison, weights read live.
    CompileOptions frozen;
    frozen.passes.prepack_weights = true;
    CompiledFunction compiled = compile(fn, frozen);
    CompiledFunction compiled_live = compile(fn);
    Tensor x = reshape(ids, {1, P});
    std::vector<double> eager_s, compiled_s, live_s;
    for (int round = 0; round < 3; ++round) {
      eager_s.push_back(median_prefill_s([&] { return prefill(x); }, o.runs));
      compiled_s.push_back(median_prefill_s([&] { return compiled({x})[0]; }, o.runs));
      live_s.push_back(median_prefill_s([&] { return compiled_live({x})[0]; }, o.runs));
    }
    std::sort(eager_s.begin(), eager_s.end());
    std::sort(compiled_s.begin(), compiled_s.end());
    std::sort(live_s.begin(), live_s.end());
    eager_tp = double(P) / eager_s[1];
    tp = compiled_s[1];
    live_tp = double(P) / live_s[1];
  }
  nlohmann::json j = {{"bench", "generate"},
                      {"preset", dir.empty() ? o.preset : std::string()},
                      {"checkpoint", dir},
                      {"quant", weights->format == infer::WeightFormat::f32 ? "none" : infer::weight_format_name(weights->format)},
                      {"group_size", weights->group_size},
                      {"threads", omp_get_max_threads()},
                      {"params", weights->parameters},
                      {"weight_bytes", runner.weight_bytes()},
                      {"prompt_len", P},
                      {"prefill_tokens_per_s", double(P) / tp},
                      {"prefill_ms", tp * 1e3},
                      {"decode_tokens", decode_tokens},
                      {"decode_start_pos", decode_start},
                      {"decode_tokens_per_s", double(decode_tokens) / td},
                      {"decode_ms_per_token", td * 1e3 / double(decode_tokens)},
                      {"decode_weight_gb_per_s", weight_read_gbps},
                      {"memory_read_gb_per_s", bandwidth.read_gbps},
                      {"memory_copy_gb_per_s", bandwidth.copy_gbps},
                      {"decode_bandwidth_fraction", bandwidth.best() > 0 ? weight_read_gbps / bandwidth.best() : 0.0},
                      {"runs", o.runs},
                      {"compile", o.compile}};
  if (o.compile) {
    j["prefill_eager_tokens_per_s"] = eager_tp;
    j["prefill_compiled_vs_eager"] = (double(P) / tp) / eager_tp;
    j["prefill_runner_tokens_per_s"] = double(P) / runner_tp;
    j["prefill_compiled_live_weights_tokens_per_s"] = live_tp;
    j["prefill_compiled_live_weights_vs_eager"] = live_tp / eager_tp;
  }
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
  cmd->add_option("--device", o->device, "cpu, or cuda[:N] (one process, eager)")->capture_default_str();
  cmd->add_option("--peak-gflops", o->peak_gflops, "GEMM peak for MFU (default: measured first)");
  cmd->add_flag("--compile", o->compile,
                "Run the whole step (forward, loss, backward, clipping, AdamW) as one compiled graph (ember::compile)");
  cmd->add_flag("--zero", o->zero,
                "ZeRO-1 under mpirun: AdamW's moments sharded over the ranks (optimizer_state_mib is per rank)");
  cmd->add_flag("--tensor-parallel", o->tensor_parallel,
                "Under mpirun: all ranks train one model split across them (heads and MLP) on the same batch");
  cmd->callback([o] { bench_train(*o); });

  auto g = std::make_shared<BenchGenerateOptions>();
  auto* gcmd = bench->add_subcommand("generate", "Batch-1 prefill and decode speed (KV-cache inference path)");
  gcmd->add_option("--preset", g->preset, "Model preset (random weights)")->capture_default_str();
  gcmd->add_option("--checkpoint", g->checkpoint, "Checkpoint or run folder (instead of a preset)");
  gcmd->add_option("--threads", g->threads, "OpenMP threads (default: all cores)");
  gcmd->add_option("--prompt-len", g->prompt_len, "Prefill length")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  gcmd->add_option("--tokens", g->tokens, "Decode steps per run")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  gcmd->add_option("--runs", g->runs, "Timed runs (the median is reported)")->capture_default_str()->check(CLI::Range(1, 1000));
  gcmd->add_option("--quant", g->quant, "Weights: none (as stored) or f16 / int8 / int4 (float weights converted in memory)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "f16", "int8", "int4"}));
  gcmd->add_option("--group-size", g->group_size, "int4 columns per scale (32, 64 or 128)")->capture_default_str();
  gcmd->add_flag("--compile", g->compile,
                 "Prefill through the GPT module as a compiled graph (ember::compile) with frozen weights (each "
                 "packed once for the GEMM), timed against the same code run eagerly (prefill_eager_tokens_per_s) "
                 "and compiled with live weights (prefill_compiled_live_weights_tokens_per_s); decode stays on the "
                 "KV-cache runner");
  gcmd->callback([g] { bench_generate(*g); });
  register_bench_gemm(*bench);
  register_bench_ops(*bench);
}

}  // namespace ember::cli
