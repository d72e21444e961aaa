// `ember bench ops`: the primitives of a GPT preset's training step, one at a
// time on one device, against that device's copy bandwidth and GEMM rate: what
// each kernel moves (each input read once, each output written once) over its
// median time, as GB/s and as a fraction of a plain copy of the same size
// measured in the same run. One JSON line. On a GPU every call is bracketed by
// device synchronisations, so a time is the kernels' own, launches included.
#include <omp.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ember/autograd/grad_mode.h"
#include "ember/cli/commands.h"
#include "ember/core/allocator.h"
#include "ember/models/gpt_config.h"
#include "ember/ops/ops.h"
#include "ember/optim/fused_updates.h"
#include "ember/util/stats.h"

namespace ember::cli {
namespace {

struct BenchOpsOptions {
  std::string preset = "gpt2", device = "cpu";
  int64_t batch = 0, seq_len = 0, repeats = 10;
  int threads = 0;
};

void bench_ops(const BenchOpsOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const Device device = Device::parse(o.device);
  const models::GPTConfig cfg = models::GPTConfig::preset(o.preset);
  const int64_t B = o.batch > 0 ? o.batch : cfg.batch_size, T = o.seq_len > 0 ? o.seq_len : cfg.block_size;
  const int64_t N = B * T, C = cfg.n_embd, H = cfg.n_head, D = C / H, V = cfg.vocab_size, F = cfg.mlp_hidden();
  DeviceInterface& iface = device_interface(device);
  Generator gen(11);
  auto rnd = [&](const Shape& s) { return to_device(randn(s, DType::f32, Device::cpu(), &gen), device); };

  // Median milliseconds of `repeats` calls after one warm-up, each between synchronisations.
  auto time_ms = [&](const std::function<void()>& fn) {
    fn();
    iface.synchronize();
    std::vector<double> ms;
    for (int64_t r = 0; r < o.repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      iface.synchronize();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(ms);
  };
  nlohmann::json ops = nlohmann::json::object();
  double copy_gbps = 0;
  auto record = [&](const std::string& name, double ms, double bytes) {
    const double gbps = bytes / (ms * 1e6);
    ops[name] = {{"ms", ms}, {"gbps", gbps}, {"of_copy", copy_gbps > 0 ? gbps / copy_gbps : 1.0}};
  };

  NoGradGuard no_grad;
  const double f4 = 4.0;  // bytes per float32
  Tensor hidden = rnd({N, F});
  copy_gbps = 2 * f4 * double(N * F) / (time_ms([&] { (void)clone(hidden); }) * 1e6);
  record("copy [N, 4C]", 2 * f4 * double(N * F) / (copy_gbps * 1e6), 2 * f4 * double(N * F));
  Tensor bias = rnd({F});
  record("add bias [N, 4C] + [4C]", time_ms([&] { (void)(hidden + bias); }), f4 * double(2 * N * F + F));
  record("gelu_tanh [N, 4C]", time_ms([&] { (void)gelu(hidden, true); }), 2 * f4 * double(N * F));
  Tensor x = rnd({N, C}), w = rnd({C}), b = rnd({C});
  record("layer_norm [N, C]", time_ms([&] { (void)layer_norm(x, w, b); }), f4 * double(2 * N * C + 2 * C));
  Tensor big_w = rnd({F, C}), big_p = rnd({F, C}), m = zeros({F, C}, DType::f32, device), v = zeros({F, C}, DType::f32, device);
  optim::AdamWHyper h;
  h.step = 1;
  record("adamw_update [4C, C]", time_ms([&] { optim::adamw_update_(big_p, big_w, m, v, h); }),
         f4 * double(F * C) * 7);  // reads p, g, m, v; writes p, m, v
  Tensor logits = rnd({N, V});
  Tensor targets = to_device(randint(0, V, {N}, Device::cpu(), &gen), device);
  record("cross_entropy forward [N, V]", time_ms([&] { (void)cross_entropy(logits, targets); }), f4 * double(N * V));
  {
    GradModeGuard grad(true);
    Tensor z = logits.detach().requires_grad_();
    record("cross_entropy forward+backward [N, V]", time_ms([&] {
             z.set_grad(Tensor());
             cross_entropy(z, targets).backward();
           }),
           3 * f4 * double(N * V));
  }
  const double gemm_flops = 2.0 * double(N) * double(C) * double(F);
  const double gemm_ms = time_ms([&] { (void)linear(x, big_w); });
  Tensor q = rnd({B, H, T, D}), k = rnd({B, H, T, D}), vv = rnd({B, H, T, D});
  const double attn_flops = 2.0 * 2.0 * double(B * H) * double(T) * double(T) * double(D) / 2.0;  // causal half
  const double attn_ms = time_ms([&] { (void)scaled_dot_product_attention(q, k, vv, true); });
  double attn_bwd_ms = 0;
  {
    GradModeGuard grad(true);
    Tensor qg = q.detach().requires_grad_();
    attn_bwd_ms = time_ms([&] {
      qg.set_grad(Tensor());
      sum(scaled_dot_product_attention(qg, k, vv, true)).backward();
    });
  }
  nlohmann::json j = {{"bench", "ops"},
                      {"device", device.str()},
                      {"preset", o.preset},
                      {"threads", omp_get_max_threads()},
                      {"tokens", N},
                      {"repeats", o.repeats},
                      {"copy_gbps", copy_gbps},
                      {"ops", ops},
                      {"linear_gflops", gemm_flops / (gemm_ms * 1e6)},
                      {"linear_shape", std::to_string(N) + "x" + std::to_string(C) + " @ " + std::to_string(C) + "x" +
                                           std::to_string(F)},
                      {"attention_forward_ms", attn_ms},
                      {"attention_forward_gflops", attn_flops / (attn_ms * 1e6)},
                      {"attention_forward_backward_ms", attn_bwd_ms}};
  std::cout << j.dump() << std::endl;
}

}  // namespace

void register_bench_ops(CLI::App& bench) {
  auto o = std::make_shared<BenchOpsOptions>();
  auto* cmd = bench.add_subcommand(
      "ops", "A training step's primitives one by one (bias add, GELU, layer norm, AdamW, cross-entropy, linear, "
             "attention) against the device's copy bandwidth, one JSON line");
  cmd->add_option("--preset", o->preset, "Model preset whose shapes are used")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu, or cuda[:N]")->capture_default_str();
  cmd->add_option("--batch", o->batch, "Sequences (default: the preset's)");
  cmd->add_option("--seq-len", o->seq_len, "Tokens per sequence (default: block_size)");
  cmd->add_option("--repeats", o->repeats, "Timed calls per op (the median is reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->callback([o] { bench_ops(*o); });
}

}  // namespace ember::cli
