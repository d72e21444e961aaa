// The pretraining loop (see pretrain.h).
#include "ember/train/pretrain.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <iostream>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/data/loader.h"
#include "ember/data/meta.h"
#include "ember/dist/communicator.h"
#include "ember/dist/data_parallel.h"
#include "ember/dist/replica_check.h"
#include "ember/dist/tensor_parallel.h"
#include "ember/dist/tensor_parallel_train.h"
#include "ember/dist/zero.h"
#include "ember/graph/compile.h"
#include "ember/infer/generate.h"
#include "ember/models/gpt.h"
#include "ember/models/gpt_tensor_parallel.h"
#include "ember/nn/module_io.h"
#include "ember/nn/parameter_namer.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/train/checkpoint.h"
#include "ember/train/machine_peak.h"
#include "ember/util/stats.h"
#include "ember/train/metrics_log.h"
#include "ember/train/stop_signals.h"
#include "ember/util/progress.h"

namespace ember::train {
namespace fs = std::filesystem;
namespace {

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("pretrain", "cannot read config file ", path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail("pretrain", path, ": not valid JSON");
  return j;
}

models::GPTConfig resolve_config(const PretrainOptions& o) {
  models::GPTConfig cfg = models::GPTConfig::preset(o.preset);
  if (!o.config_json.empty()) {
    // The file overrides the preset field by field; unknown fields stay errors (from_json).
    nlohmann::json merged = cfg.to_json();
    const nlohmann::json given = read_json_file(o.config_json);
    if (!given.is_object()) fail("pretrain", o.config_json, ": a config file must hold a JSON object");
    merged.update(given);
    cfg = models::GPTConfig::from_json(merged);
  }
  cfg.validate();
  return cfg;
}

struct EvalResult {
  double loss = 0, bpb = 0;
};

// The validation loss over eval_batches global batches of sequential windows
// (the same windows, in order, at every evaluation, so the numbers compare),
// computed in chunks of `chunk` rows spread over the data-parallel ranks
// (`data`; null without data parallelism: under tensor parallelism the ranks
// of a group run the same chunks, so that the collectives inside the model
// match): the result does not depend on how the global batch is cut into ranks
// and micro-batches.
EvalResult evaluate(models::GPT& model, const PretrainOptions& o, int64_t global, int64_t chunk, int64_t T,
                    double bytes_per_token, dist::Communicator* data) {
  NoGradGuard no_grad;
  model.eval();
  data::TokenLoader val(o.data_dir, "val", chunk, T, 0, data::Order::sequential);
  const int64_t chunks = o.eval_batches * (global / chunk);
  const int first = data ? data->rank() : 0, stride = data ? data->size() : 1;
  double total = 0;
  const Device device = Device::parse(o.device);
  for (int64_t c = first; c < chunks; c += stride) {
    auto [x, y] = val.batch_at(uint64_t(c));
    total += model.loss(to_device(x, device), to_device(y, device)).item<double>();
  }
  if (stride > 1) {
    Tensor t = tensor({total}, {1}, DType::f64);
    data->all_reduce(t, dist::CommOp::sum);
    total = t.item<double>();
  }
  model.train();
  EvalResult r;
  r.loss = total / double(chunks);
  // nats per token -> bits per byte of the original text.
  r.bpb = bytes_per_token > 0 ? r.loss / std::log(2.0) / bytes_per_token : 0.0;
  return r;
}

// --tensor-parallel: the split sizes, named by the config fields they come
// from, before any model is built (every rank reaches the same verdict).
void check_tensor_parallel(const models::GPTConfig& cfg, int ranks) {
  const std::string on = "--tensor-parallel on " + std::to_string(ranks) + (ranks > 1 ? " ranks: " : " rank: ");
  if (cfg.n_head % ranks != 0)
    fail("pretrain", on, "n_head = ", cfg.n_head, " does not divide by ", ranks,
         " (each rank takes whole attention heads; run on a number of ranks that divides n_head)");
  if (cfg.n_kv_head % ranks != 0)
    fail("pretrain", on, "n_kv_head = ", cfg.n_kv_head, " does not divide by ", ranks,
         " (the key/value heads are split across the ranks too)");
  if (cfg.mlp_hidden() % ranks != 0)
    fail("pretrain", on, "the MLP hidden width ", cfg.mlp_hidden(), " (from n_embd = ", cfg.n_embd,
         cfg.mlp == models::MlpKind::gelu ? ", 4 x n_embd" : ", SwiGLU's 8/3 x n_embd rounded up to 64",
         ") does not divide by ", ranks);
}

// --tensor-parallel's value: -1 (the bare flag) is every rank; otherwise a
// group size that divides the rank count.
int tensor_parallel_size(int asked, int ranks) {
  if (asked == -1) return ranks;
  if (asked < 1) fail("pretrain", "--tensor-parallel ", asked, ": the group size must be a positive number of ranks");
  if (asked > ranks)
    fail("pretrain", "--tensor-parallel ", asked, ": groups of ", asked, " ranks need at least ", asked,
         " ranks, the run has ", ranks);
  if (ranks % asked != 0)
    fail("pretrain", "--tensor-parallel ", asked, ": ", ranks, " ranks do not split into groups of ", asked,
         " (run a multiple of ", asked, " ranks)");
  return asked;
}

// Sampling under tensor parallelism runs on every rank of a group (the logits
// are replicated, so the ranks draw the same tokens from generators seeded alike);
// each token is compared across the ranks and sampling stops on all of them at
// the first disagreement, so they never run different forwards.
std::function<bool(int64_t)> tokens_agree(dist::Communicator& comm) {
  return [&comm](int64_t token) {
    Tensor mine = tensor_i64({token}, {1});
    Tensor all = zeros({comm.size()}, DType::i64);
    comm.all_gather(mine, all);
    for (int64_t t : all.to_vector<int64_t>())
      if (t != token) return false;
    return true;
  };
}

}  // namespace

nlohmann::json PretrainOptions::to_json() const {
  return {{"preset", preset},   {"steps", steps},         {"batch_size", batch_size},     {"seq_len", seq_len},
          {"grad_accum", grad_accum}, {"lr", lr},           {"min_lr_ratio", min_lr_ratio}, {"warmup_steps", warmup_steps},
          {"weight_decay", weight_decay}, {"beta1", beta1}, {"beta2", beta2},               {"eps", eps},
          {"grad_clip", grad_clip}, {"eval_every", eval_every}, {"eval_batches", eval_batches},
          {"checkpoint_every", checkpoint_every}, {"seed", seed}};
}

void PretrainOptions::update_from_json(const nlohmann::json& j) {
  auto take = [&](const char* key, auto& field) {
    if (j.contains(key)) field = j.at(key).get<std::remove_reference_t<decltype(field)>>();
  };
  take("preset", preset);
  take("steps", steps);
  take("batch_size", batch_size);
  take("seq_len", seq_len);
  take("grad_accum", grad_accum);
  take("lr", lr);
  take("min_lr_ratio", min_lr_ratio);
  take("warmup_steps", warmup_steps);
  take("weight_decay", weight_decay);
  take("beta1", beta1);
  take("beta2", beta2);
  take("eps", eps);
  take("grad_clip", grad_clip);
  take("eval_every", eval_every);
  take("eval_batches", eval_batches);
  take("checkpoint_every", checkpoint_every);
  take("seed", seed);
}

PretrainResult pretrain(const PretrainOptions& given) {
  PretrainOptions o = given;
  if (o.out_dir.empty()) fail("pretrain", "--out is required (the run folder for checkpoints and metrics)");
  if (o.data_dir.empty()) fail("pretrain", "--data is required (a folder made by `ember data prepare`)");
  if (o.threads > 0) omp_set_num_threads(o.threads);

  // Resuming: the checkpoint's hyper-parameters and model config win, except
  // for the step count (a run may be extended).
  nlohmann::json resumed;
  std::string resume_dir;
  if (o.resume) {
    if (!has_checkpoint(o.out_dir))
      fail("pretrain", "--resume: ", o.out_dir, " has no checkpoint (no ", o.out_dir, "/latest)");
    resume_dir = resolve_checkpoint(o.out_dir);
    resumed = read_trainer_json(resume_dir);
    const int64_t steps = o.steps;
    o.update_from_json(resumed.at("options"));
    o.steps = steps;
  }
  models::GPTConfig cfg = o.resume ? models::GPTConfig::from_json(resumed.at("config")) : resolve_config(o);
  if (o.resume && !given.config_json.empty()) {
    models::GPTConfig asked = resolve_config(given);
    if (asked.to_json() != cfg.to_json())
      fail("pretrain", "--config ", given.config_json, " does not match the checkpoint in ", resume_dir,
           " (resume without --config, or start a new --out)");
  }
  // Data parallel under mpirun: every rank builds the same model, reads its
  // own rows of one global batch, and the gradients are averaged (dist/).
  // --tensor-parallel [N]: groups of N consecutive ranks (all ranks without N)
  // each train one model split across them on the same rows; the groups are
  // data parallel to each other (ranks at the same place in every group
  // average their shards' gradients), so the data-parallel world is the number
  // of groups. Rank 0 alone writes metrics, plots and checkpoints.
  std::shared_ptr<dist::Communicator> comm = dist::world();
  const int rank = comm->rank(), world = comm->size();
  const bool lead = rank == 0;
  const bool tp = o.tensor_parallel != 0;
  const int tp_size = tp ? tensor_parallel_size(o.tensor_parallel, world) : 1;
  const int dp_rank = rank / tp_size, dp_world = world / tp_size;
  if (tp) {
    if (o.zero) fail("pretrain", "--tensor-parallel does not combine with --zero (ZeRO-1 is not built for sharded models)");
    if (o.compile) fail("pretrain", "--tensor-parallel does not combine with --compile (the collectives run outside the graph)");
    check_tensor_parallel(cfg, tp_size);
  }
  // tp_comm: this rank's tensor-parallel group; dp_comm: the ranks its
  // gradients are averaged with (null when there are none).
  std::shared_ptr<dist::Communicator> tp_comm = tp ? comm : nullptr, dp_comm = dp_world > 1 ? comm : nullptr;
  if (tp && dp_world > 1) {
    tp_comm = comm->split(dp_rank, rank);
    dp_comm = comm->split(rank % tp_size, rank);
  }
  if (!o.resume) {
    if (o.grad_accum == 0) o.grad_accum = 1;
    if (o.batch_size == 0) o.batch_size = cfg.batch_size;
  } else {
    // The global batch (sequences per optimizer step) is the checkpoint's; the
    // ranks here may differ from those that wrote it, so the per-rank batch
    // and grad-accum are derived (or checked, when given) to keep it.
    const data::LoaderState saved = data::LoaderState::from_json(resumed.at("data"));
    const int64_t global = saved.batch_size * std::max<int64_t>(1, o.grad_accum);
    o.grad_accum = given.grad_accum > 0                   ? given.grad_accum
                   : (dp_world > 1 && !o.zero) ? int64_t(1)
                                               : std::max<int64_t>(1, o.grad_accum);
    o.batch_size = given.batch_size > 0 ? given.batch_size : global / (dp_world * o.grad_accum);
    if (o.batch_size <= 0 || dp_world * o.grad_accum * o.batch_size != global)
      fail("pretrain", "--resume: the checkpoint in ", resume_dir, " trains ", global, " sequences per step, which ",
           dp_world, tp ? (dp_world > 1 ? " tensor-parallel groups" : " tensor-parallel group")
                        : dp_world > 1 ? " ranks" : " rank",
           given.batch_size > 0 ? " x --batch " + std::to_string(o.batch_size) : std::string(), " x --grad-accum ",
           o.grad_accum, given.batch_size > 0 ? " does not make" : " cannot divide",
           " (choose --batch and --grad-accum with ranks x batch x grad-accum = ", global, ")");
  }
  const int64_t B = o.batch_size;
  const int64_t T = o.seq_len > 0 ? o.seq_len : cfg.block_size;
  if (T > cfg.block_size) fail("pretrain", "--seq-len ", T, " exceeds the model's block_size ", cfg.block_size);
  if (o.steps <= 0 || o.grad_accum <= 0 || B <= 0) fail("pretrain", "steps, batch size and grad_accum must be positive");

  const data::DataMeta meta = data::read_meta(o.data_dir);
  if (int64_t(meta.vocab_size) > cfg.vocab_size)
    fail("pretrain", "the data in ", o.data_dir, " uses a vocabulary of ", meta.vocab_size,
         " tokens but the model has vocab_size ", cfg.vocab_size, " (choose a preset or --config that fits)");
  // Bits per byte: the corpus's bytes over all its tokens (both splits).
  uint64_t all_tokens = 0;
  for (const auto& [name, split] : meta.splits) all_tokens += split.tokens;
  const double bytes_per_token = all_tokens > 0 ? double(meta.input_bytes) / double(all_tokens) : 0.0;
  std::string tokenizer_dir = o.tokenizer_dir;
  if (tokenizer_dir.empty() && fs::exists(fs::path(o.data_dir) / "tokenizer")) tokenizer_dir = o.data_dir + "/tokenizer";
  std::optional<Tokenizer> tokenizer;
  if (!tokenizer_dir.empty()) {
    tokenizer.emplace(Tokenizer::load(tokenizer_dir));
    data::check_compatible(meta, o.data_dir, tokenizer->vocab_size(), data::tokenizer_fingerprint(*tokenizer));
  }

  // ZeRO-1 reduces after the last micro-batch, so it accumulates; data
  // parallel's buckets are sent during each backward.
  if (dp_world > 1 && o.grad_accum > 1 && tp)
    fail("pretrain", "--grad-accum ", o.grad_accum, " with ", dp_world,
         " tensor-parallel groups is not supported (data parallel syncs every backward); use --grad-accum 1 or one group");
  if (dp_world > 1 && o.grad_accum > 1 && !o.zero)
    fail("pretrain", "--grad-accum ", o.grad_accum, " with ", world,
         " ranks needs --zero (data parallel syncs every backward); use --zero, --grad-accum 1 or one rank");
  if (!lead) o.quiet = true;

  const Device device = Device::parse(o.device);
  if (device.is_cuda()) {
    if (world > 1 || o.compile || o.zero || tp)
      fail("pretrain", "--device ", o.device, " trains in one process, eager: not under mpirun, --compile, --zero or "
           "--tensor-parallel yet");
    if (device.index >= cuda_device_count())
      fail("pretrain", "--device ", o.device, ": ", cuda_built() ? std::to_string(cuda_device_count()) + " GPUs visible"
                                                                 : std::string("ember was built without CUDA"));
  }
  Generator gen(o.seed);
  auto model_ptr = std::make_shared<models::GPT>(cfg, &gen);
  models::GPT& model = *model_ptr;
  // Before the optimizer and any checkpoint: both follow the parameters' device.
  model.to(device);
  // The full model's figures (a tensor-parallel model counts only its shards).
  const int64_t full_params = model.num_parameters();
  const double flops_per_token = double(model.flops_per_token(T));
  optim::AdamWOptions adam;
  adam.lr = o.lr;
  adam.beta1 = o.beta1;
  adam.beta2 = o.beta2;
  adam.eps = o.eps;
  adam.weight_decay = o.weight_decay;
  // The optimizer is made over the model's final parameters: under
  // --tensor-parallel after the (full) model is converted into this rank's
  // shard, which on --resume is after the checkpoint's weights are loaded.
  std::optional<optim::AdamW> opt_holder;
  auto finish_model = [&] {
    if (tp) models::make_tensor_parallel(model, tp_comm);
    opt_holder.emplace(optim::make_param_groups(model, o.weight_decay), adam);
  };
  if (!o.resume || o.zero) finish_model();
  const int64_t warmup = o.warmup_steps >= 0 ? o.warmup_steps : std::max<int64_t>(1, o.steps / 20);
  const optim::LRLambda schedule = optim::warmup_cosine_schedule(warmup, o.steps, o.min_lr_ratio);
  // One global micro-batch of world x B rows; rank r trains on rows
  // [r B, (r+1) B), so N ranks see exactly what one process with batch N x B
  // would. The loader's rows are one stream, so its position carries over to
  // another world x B with the same global batch per step (a resume on another
  // number of ranks).
  data::TokenLoader loader(o.data_dir, "train", B * dp_world, T, o.seed);
  auto next_batch = [&]() -> std::pair<Tensor, Tensor> {
    auto [x, y] = loader.next();
    if (dp_world == 1) return {to_device(x, device), to_device(y, device)};
    return {contiguous(narrow(x, 0, dp_rank * B, B)), contiguous(narrow(y, 0, dp_rank * B, B))};
  };

  // --zero: ZeRO-1 in place of `opt` (which then never takes a step, so it
  // holds no state): the moments sharded over the ranks, the gradients
  // reduce-scattered instead of all-reduced. Made before loading so that a
  // checkpoint's optimizer file (optim::AdamW's layout) goes straight into the shards.
  std::unique_ptr<dist::ZeroAdamW> zero;
  if (o.zero) {
    if (o.compile) fail("pretrain", "--zero does not combine with --compile (the sharded step runs outside the graph)");
    zero = std::make_unique<dist::ZeroAdamW>(optim::make_param_groups(model, o.weight_decay), comm, adam);
  }
  PretrainResult result;
  int64_t start_step = 0;
  if (o.resume) {
    // The checkpoint holds the single-process layout: the full weights load
    // before the conversion, the optimizer state is sliced after it.
    start_step = restore_checkpoint(
        resume_dir, resumed, model,
        [&](const TensorMap& st) {
          if (zero) return zero->load_state_dict(st);
          finish_model();
          opt_holder->load_state_dict(tp ? dist::slice_optimizer_state(model, *opt_holder, st) : st);
        },
        gen);
    loader.set_state(data::LoaderState::from_json(resumed.at("data")).rebatched(B * dp_world));
  }
  optim::AdamW& opt = *opt_holder;
  // After loading: the wrapper checks that the ranks agree and broadcasts rank 0's weights.
  std::unique_ptr<dist::DataParallel> ddp;
  if (dp_world > 1 && !zero) ddp = std::make_unique<dist::DataParallel>(model_ptr, dp_comm);
  else if (zero) dist::broadcast_tensors(*comm, model.parameters(), "parameter");
  // Optimizer state held by this rank, for the banner and the metrics.
  const int64_t state_bytes = zero ? zero->state_bytes() : 2 * model.num_parameters() * int64_t(sizeof(float));
  result.optimizer_state_bytes = state_bytes;
  std::optional<MetricsLog> metrics;
  if (lead) {
    fs::create_directories(o.out_dir);
    metrics.emplace(o.out_dir + "/metrics.jsonl", o.resume ? start_step : -1);
  }
  double peak = o.peak_gflops > 0 ? o.peak_gflops : measure_gemm_peak_gflops(device);
  const int64_t tokens_per_step = B * T * o.grad_accum * dp_world;

  if (!o.quiet) {
    std::cout << "ember pretrain: " << o.preset << " (" << cfg.n_layer << " layers, " << cfg.n_head << " heads, n_embd "
              << cfg.n_embd << ", vocab " << cfg.vocab_size << ", " << fmt("%.2fM", full_params / 1e6)
              << " parameters), " << tokens_per_step << " tokens/step (" << B << "x" << T << "x" << o.grad_accum
              << (dp_world > 1 ? "x" + std::to_string(dp_world) + (tp ? " groups" : " ranks") : std::string()) << "), "
              << omp_get_max_threads() << " threads, GEMM peak " << fmt("%.0f", peak) << " GFLOP/s\n";
    if (zero)
      std::cout << "ZeRO-1: optimizer state " << fmt("%.1f", state_bytes / 1048576.0) << " MiB per rank ("
                << fmt("%.1f", zero->unsharded_state_bytes() / 1048576.0) << " MiB unsharded, " << world
                << (world > 1 ? " ranks" : " rank") << ")\n";
    if (tp)
      std::cout << "tensor parallel over " << tp_size << (tp_size > 1 ? " ranks" : " rank")
                << (dp_world > 1 ? " in each of " + std::to_string(dp_world) + " groups (data parallel to each other)" : std::string())
                << ": " << fmt("%.2fM", model.num_parameters() / 1e6) << " parameters and "
                << fmt("%.1f", state_bytes / 1048576.0) << " MiB of optimizer state on each\n";
    if (o.resume) std::cout << "resuming from " << resume_dir << " at step " << start_step << "\n";
  }

  // Every rank calls it (so that they stay in step); rank 0 writes, the others
  // wait at the barrier so nobody races ahead of a half-written checkpoint.
  auto checkpoint = [&](int64_t step) -> std::string {
    // The data-parallel replicas (under tensor parallel: the ranks holding the
    // same shard in every group) must agree bitwise before rank 0 saves its copy.
    if (dp_comm)
      dist::check_replicas_agree(*dp_comm, model.parameters(), "pretrain", "step " + std::to_string(step), rank);
    // ZeRO: every rank sends its shard of the moments to rank 0 first; tensor
    // parallel: the ranks of rank 0's group send their shards of the weights
    // and the moments to it, the only rank that holds them whole while the
    // checkpoint is written (the other groups hold the same shards).
    const bool tp_gather = tp && dp_rank == 0;
    const TensorMap zero_state = zero ? zero->state_dict() : TensorMap{};
    const TensorMap tp_model = tp_gather ? dist::gather_full_state_dict(model, 0) : TensorMap{};
    const TensorMap tp_optimizer = tp_gather ? dist::gather_full_optimizer_state(model, opt, 0) : TensorMap{};
    if (!lead) {
      comm->barrier();
      return "";
    }
    nlohmann::json trainer = {{"kind", "pretrain"},
                              {"step", step},
                              {"config", cfg.to_json()},
                              {"options", o.to_json()},
                              {"rng", {{"seed", gen.state().seed}, {"offset", gen.state().offset}}},
                              {"data", loader.state().to_json()},
                              {"world", world},
                              {"tensor_parallel", tp_size},
                              {"data_parallel", dp_world},
                              {"global_batch", tokens_per_step / T},
                              {"data_dir", fs::absolute(o.data_dir).string()}};
    CheckpointSave what{&model, &opt, trainer, {}};
    if (zero) {
      what.optimizer = nullptr;
      what.optimizer_state = &zero_state;
      what.optimizer_name = "AdamW";  // the layout: a plain run loads it
    }
    if (tp) {
      what.model_state = &tp_model;
      what.optimizer = nullptr;
      what.optimizer_state = &tp_optimizer;
      what.optimizer_name = "AdamW";
    }
    if (!tokenizer_dir.empty()) what.copy_dirs.emplace_back(tokenizer_dir, "tokenizer");
    std::string dir = save_checkpoint(o.out_dir, step, what, o.keep_checkpoints);
    if (world > 1) comm->barrier();
    return dir;
  };

  // --compile: the step below, traced once into one graph. The micro-batches
  // are its inputs; it returns the step's loss and gradient norm as tensors.
  std::optional<CompiledFunction> compiled_step;
  if (o.compile) {
    if (world > 1) fail("pretrain", "--compile runs in one process (data parallel syncs gradients outside the graph)");
    if (cfg.dropout > 0)
      fail("pretrain", "--compile needs dropout 0 (the config has ", cfg.dropout, "; random numbers are not compiled yet)");
    CompileOptions co;
    co.names = nn::parameter_namer(model);
    co.mode = [&model] { return int64_t(model.is_training()); };
    compiled_step = compile(
        [&](const std::vector<Tensor>& in) {
          Tensor loss_sum;
          for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
            Tensor loss = model.loss(in[size_t(2 * micro)], in[size_t(2 * micro + 1)]);
            if (o.grad_accum > 1) loss = loss * scalar(1.0 / double(o.grad_accum));
            loss.backward();
            NoGradGuard no_grad;
            loss_sum = loss_sum.defined() ? loss_sum + loss : loss;
          }
          const double clip = o.grad_clip > 0 ? o.grad_clip : std::numeric_limits<double>::infinity();
          Tensor norm = optim::clip_grad_norm_traceable_(model.parameters(), clip);
          opt.step();
          opt.zero_grad();
          return std::vector<Tensor>{loss_sum, norm};
        },
        co);
  }

  result.step = start_step;
  StopSignals signals;
  std::unique_ptr<ProgressBar> bar;
  // A non-finite loss or gradient norm ends the run, naming the checkpoint to resume from.
  auto check_finite = [&](int64_t step, double loss_sum, double norm, const char* what) {
    if (std::isfinite(loss_sum) && std::isfinite(norm)) return;
    if (bar) bar->finish();
    fail("pretrain", "non-finite ", std::isfinite(loss_sum) ? "gradient norm" : "loss", " at step ", step, " (loss ",
         loss_sum, ", grad norm ", norm, "); ", what, ". The last good checkpoint is ",
         result.checkpoint.empty() ? (has_checkpoint(o.out_dir) ? resolve_checkpoint(o.out_dir) : "none")
                                   : result.checkpoint,
         "; lower --lr or raise --warmup and resume");
  };
  if (!o.quiet) {
    bar = std::make_unique<ProgressBar>("pretrain", o.steps, "step");
    bar->update(start_step);
  }
  using clock = std::chrono::steady_clock;
  std::vector<double> recent_ms;
  for (int64_t step = start_step + 1; step <= o.steps; ++step) {
    const auto t0 = clock::now();
    const double lr = o.lr * schedule(step - 1);
    opt.set_lr(lr);
    if (zero) zero->set_lr(lr);
    double loss_sum = 0, norm = 0;
    if (compiled_step) {
      std::vector<Tensor> batches;
      for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
        auto [x, y] = next_batch();
        batches.push_back(x), batches.push_back(y);
      }
      const std::vector<Tensor> out = (*compiled_step)(batches);
      loss_sum = out[0].item<double>();
      norm = out[1].item<double>();
      check_finite(step, loss_sum, norm, "stopped (the compiled step has updated the weights in memory; they are not saved)");
    } else {
      if (zero) zero->zero_grad();
      else opt.zero_grad();
      for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
        auto [x, y] = next_batch();
        Tensor loss = model.loss(x, y);
        if (o.grad_accum > 1) loss = loss * (1.0 / double(o.grad_accum));
        loss.backward();
        loss_sum += loss.item<double>();
      }
      if (ddp) ddp->finish_gradient_sync();
      if (dp_world > 1) {
        Tensor l = tensor({loss_sum}, {1}, DType::f64);
        dp_comm->all_reduce(l, dist::CommOp::avg);  // the global batch's mean loss, the same on every rank
        loss_sum = l.item<double>();
      }
      if (zero) {
        norm = zero->sync_gradients(o.grad_clip);  // reduce-scatter, global norm, clipped shard
      } else if (tp) {
        norm = dist::clip_grad_norm_(model, o.grad_clip);  // split parameters summed over the group's ranks
      } else {
        norm = o.grad_clip > 0 ? optim::clip_grad_norm_(model.parameters(), o.grad_clip)
                               : optim::grad_norm(model.parameters());
      }
      check_finite(step, loss_sum, norm, "stopped without updating");
      if (zero) zero->step();
      else opt.step();
    }
    const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    recent_ms.push_back(ms);
    if (recent_ms.size() > 20) recent_ms.erase(recent_ms.begin());
    const double tps = double(tokens_per_step) / (median(recent_ms) / 1e3);
    const double mfu = model_flops_utilisation(tps * flops_per_token, peak);
    result.step = step;
    result.train_loss = loss_sum;
    result.tokens_per_s = tps;
    result.mfu = mfu;
    if (metrics) metrics->write({{"kind", "train"}, {"step", step}, {"loss", loss_sum}, {"lr", lr}, {"grad_norm", norm},
                   {"step_ms", ms}, {"tokens_per_s", tps}, {"mfu", mfu},
                   {"optimizer_state_mib", double(state_bytes) / 1048576.0}});
    if (bar)
      bar->update(step, {{"loss", fmt("%.4f", loss_sum)}, {"tok/s", fmt("%.0f", tps)}, {"mfu", fmt("%.0f%%", 100 * mfu)}});

    const bool last = step == o.steps;
    if ((o.eval_every > 0 && step % o.eval_every == 0) || last) {
      EvalResult ev = evaluate(model, o, tokens_per_step / T, B, T, bytes_per_token, dp_comm.get());
      result.val_loss = ev.loss;
      result.val_bpb = ev.bpb;
      nlohmann::json rec = {{"kind", "eval"}, {"step", step}, {"val_loss", ev.loss}, {"val_bpb", ev.bpb}};
      std::string sample_text;
      if ((lead || (tp && dp_rank == 0)) && tokenizer && o.sample_tokens > 0) {  // rank 0's group
        // A continuation of the start of a document, drawn from its own
        // generator so that sampling never shifts the training RNG.
        Generator sample_gen(o.seed + uint64_t(step));
        infer::GenerateOptions g;
        g.max_new_tokens = o.sample_tokens;
        g.sampling.temperature = 0.8;
        g.sampling.top_k = 40;
        const int64_t eot = tokenizer->special_tokens().count("<|endoftext|>")
                                ? int64_t(tokenizer->special_id("<|endoftext|>"))
                                : 0;
        g.stop_tokens = {eot};
        std::vector<int64_t> out =
            infer::generate(model, {eot}, g, sample_gen, tp_size > 1 ? tokens_agree(*tp_comm) : nullptr);
        if (!out.empty() && out.back() == eot) out.pop_back();
        std::vector<TokenId> ids(out.begin(), out.end());
        sample_text = tokenizer->decode(ids);
        rec["sample"] = sample_text;
      }
      if (metrics) {
        metrics->write(rec);
        metrics->plot_losses(o.out_dir + "/loss.svg", "ember pretrain: " + o.preset);
      }
      if (!o.quiet) {
        bar->finish();
        std::cout << "step " << step << "  train " << fmt("%.4f", loss_sum) << "  val " << fmt("%.4f", ev.loss)
                  << "  bpb " << fmt("%.3f", ev.bpb) << "  " << fmt("%.0f tok/s", tps) << "  mfu "
                  << fmt("%.1f%%", 100 * mfu) << "\n";
        if (!sample_text.empty()) {
          std::string shown = sample_text.substr(0, 200);
          std::replace(shown.begin(), shown.end(), '\n', ' ');
          std::cout << "  sample: " << shown << "\n";
        }
        bar = std::make_unique<ProgressBar>("pretrain", o.steps, "step");
        bar->update(step);
      }
    }
    // Every rank of every tensor-parallel group stops after the same step.
    const int signal = signals.received();
    const auto [stop, stop_signal] =
        agree_to_stop(comm.get(), {signal != 0 || (o.stop_after > 0 && step == o.stop_after), signal});
    if (last || stop || (o.checkpoint_every > 0 && step % o.checkpoint_every == 0)) result.checkpoint = checkpoint(step);
    if (stop) {
      result.interrupted = true;
      result.signal = stop_signal;
      if (!o.quiet) {
        bar->finish();
        std::cout << "stopped at step " << step << (stop_signal ? " by a signal" : "") << "; checkpoint "
                  << result.checkpoint << " (continue with --resume)\n";
      }
      return result;
    }
  }
  if (bar) bar->finish();
  if (metrics) metrics->plot_losses(o.out_dir + "/loss.svg", "ember pretrain: " + o.preset);
  return result;
}

}  // namespace ember::train
