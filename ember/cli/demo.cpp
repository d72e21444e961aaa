// `ember demo`: the main job for now. Trains a small transformer from scratch
// on generated data — the task is to sort a sequence of digits:
//     3 1 4 1 5 9 2 6 | 1 1 2 3 4 5 6 9
// — printing the loss as it falls (a progress bar with rate and ETA), then
// greedily decodes unseen sequences and reports how many it sorts exactly.
// Writes metrics (JSON Lines) and a loss curve (SVG) to --out.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <omp.h>

#include "ember/cli/commands.h"
#include "ember/ember.h"
#include "ember/nn/nn.h"
#include "ember/optim/optim.h"
#include "ember/util/plot.h"
#include "ember/util/progress.h"

namespace ember::cli {
namespace {

constexpr int64_t kDigits = 10;          // tokens 0..9
constexpr int64_t kSep = 10;             // the '|' token
constexpr int64_t kVocab = 11;

struct DemoOptions {
  int64_t steps = 400;
  int64_t batch = 64;
  int64_t length = 8;  // digits per sequence
  int64_t n_layer = 2, n_head = 4, n_embd = 64;
  double lr = 3e-3;
  uint64_t seed = 1337;
  int threads = 0;
  std::string out = "runs/demo";
};

// A pre-norm transformer block (GPT-2 layout).
class Block : public nn::UnaryModule {
 public:
  Block(int64_t n_embd, int64_t n_head, Generator* gen) {
    ln_1 = register_module("ln_1", std::make_shared<nn::LayerNorm>(n_embd));
    attn = register_module("attn", std::make_shared<nn::CausalSelfAttention>(n_embd, n_head, 0, true, 0.0, gen));
    ln_2 = register_module("ln_2", std::make_shared<nn::LayerNorm>(n_embd));
    mlp = register_module("mlp", std::make_shared<nn::MLP>(n_embd, 4 * n_embd, nn::Activation::gelu, true, gen));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = x + attn->forward(ln_1->forward(x));
    return h + mlp->forward(ln_2->forward(h));
  }
  std::shared_ptr<nn::LayerNorm> ln_1, ln_2;
  std::shared_ptr<nn::CausalSelfAttention> attn;
  std::shared_ptr<nn::MLP> mlp;
};

class SortTransformer : public nn::Module {
 public:
  SortTransformer(const DemoOptions& o, Generator* gen) {
    wte = register_module("wte", std::make_shared<nn::Embedding>(kVocab, o.n_embd, gen));
    wpe = register_module("wpe", std::make_shared<nn::Embedding>(2 * o.length + 1, o.n_embd, gen));
    blocks = register_module("h", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < o.n_layer; ++i) blocks->push_back(std::make_shared<Block>(o.n_embd, o.n_head, gen));
    ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(o.n_embd));
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(o.n_embd, kVocab, false, gen));
    // Small embeddings, as GPT-2 initialises them, keep early logits tame.
    NoGradGuard no_grad;
    nn::init::normal_(wte->weight, 0.0, 0.02, gen);
    nn::init::normal_(wpe->weight, 0.0, 0.02, gen);
  }
  Tensor forward(const Tensor& ids) {  // [B, T] -> logits [B, T, V]
    int64_t T = ids.shape(1);
    Tensor x = wte->forward(ids) + wpe->forward(arange(T));
    for (const auto& b : *blocks) x = static_cast<Block&>(*b).forward(x);
    return lm_head->forward(ln_f->forward(x));
  }
  std::shared_ptr<nn::Embedding> wte, wpe;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> ln_f;
  std::shared_ptr<nn::Linear> lm_head;
};

// Random digit sequences and their sorted continuation: [B, 2L+1] tokens.
std::vector<int64_t> make_sequences(int64_t batch, int64_t L, Generator& gen) {
  std::vector<int64_t> digits = randint(0, kDigits, {batch, L}, Device::cpu(), &gen).to_vector<int64_t>();
  std::vector<int64_t> seq;
  seq.reserve(size_t(batch * (2 * L + 1)));
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int64_t> row(digits.begin() + b * L, digits.begin() + (b + 1) * L);
    seq.insert(seq.end(), row.begin(), row.end());
    seq.push_back(kSep);
    std::sort(row.begin(), row.end());
    seq.insert(seq.end(), row.begin(), row.end());
  }
  return seq;
}

// Inputs are all tokens but the last; targets are the next tokens, with the
// unpredictable (random) first half ignored so the loss measures sorting.
std::pair<Tensor, Tensor> make_batch(int64_t batch, int64_t L, Generator& gen) {
  std::vector<int64_t> seq = make_sequences(batch, L, gen);
  int64_t S = 2 * L + 1;
  std::vector<int64_t> x, y;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t + 1 < S; ++t) {
      x.push_back(seq[size_t(b * S + t)]);
      y.push_back(t + 1 > L ? seq[size_t(b * S + t + 1)] : -100);
    }
  return {tensor_i64(x, {batch, S - 1}), tensor_i64(y, {batch, S - 1})};
}

struct EvalResult {
  double exact = 0, per_token = 0;
  std::vector<std::string> examples;
};

std::string render(const std::vector<int64_t>& tokens) {
  std::string s;
  for (int64_t t : tokens) s += (s.empty() ? "" : " ") + (t == kSep ? std::string("|") : std::to_string(t));
  return s;
}

EvalResult evaluate(SortTransformer& model, const DemoOptions& o, Generator& gen, int64_t n) {
  NoGradGuard no_grad;
  model.eval();
  int64_t L = o.length, S = 2 * L + 1;
  std::vector<int64_t> seq = make_sequences(n, L, gen);
  std::vector<int64_t> prompt;
  for (int64_t b = 0; b < n; ++b) prompt.insert(prompt.end(), seq.begin() + b * S, seq.begin() + b * S + L + 1);
  Tensor ids = tensor_i64(prompt, {n, L + 1});
  for (int64_t step = 0; step < L; ++step) {  // greedy decoding, one token at a time
    Tensor logits = model.forward(ids);
    Tensor next = argmax(select(logits, 1, -1), -1, true);
    ids = concat({ids, next}, 1);
  }
  std::vector<int64_t> got = ids.to_vector<int64_t>();
  EvalResult r;
  int64_t exact = 0, correct = 0;
  for (int64_t b = 0; b < n; ++b) {
    bool all = true;
    for (int64_t t = L + 1; t < S; ++t) {
      bool ok = got[size_t(b * S + t)] == seq[size_t(b * S + t)];
      correct += ok;
      all = all && ok;
    }
    exact += all;
    if (b < 3) r.examples.push_back(render({got.begin() + b * S, got.begin() + (b + 1) * S}));
  }
  r.exact = double(exact) / double(n);
  r.per_token = double(correct) / double(n * L);
  model.train();
  return r;
}

void run_demo(const DemoOptions& o) {
  if (o.threads > 0) omp_set_num_threads(o.threads);
  std::filesystem::create_directories(o.out);
  Generator gen(o.seed);
  SortTransformer model(o, &gen);
  std::cout << "ember demo: a " << o.n_layer << "-layer transformer (" << model.num_parameters()
            << " parameters) learns to sort " << o.length << " digits, " << o.steps << " steps of " << o.batch
            << " sequences, " << omp_get_max_threads() << " threads\n";
  optim::AdamWOptions adam;
  adam.lr = o.lr;
  adam.weight_decay = 0.01;
  optim::AdamW opt(optim::make_param_groups(model, adam.weight_decay), adam);
  optim::LRScheduler sched(opt, optim::warmup_cosine_schedule(o.steps / 20, o.steps, 0.1));

  std::string metrics_path = o.out + "/metrics.jsonl";
  std::ofstream metrics(metrics_path);
  PlotSeries curve{"train loss", {}};
  ProgressBar bar("train", o.steps, "step");
  double first_loss = 0, last_loss = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    auto [x, y] = make_batch(o.batch, o.length, gen);
    Tensor loss = cross_entropy(reshape(model.forward(x), {-1, kVocab}), reshape(y, {-1}));
    opt.zero_grad();
    loss.backward();
    double norm = optim::clip_grad_norm_(model.parameters(), 1.0);
    opt.step();
    sched.step();
    double l = loss.item<double>();
    if (!std::isfinite(l)) fail("demo", "loss became ", l, " at step ", step);
    if (step == 1) first_loss = l;
    last_loss = l;
    curve.points.emplace_back(double(step), l);
    metrics << nlohmann::json{{"step", step}, {"loss", l}, {"grad_norm", norm}, {"lr", opt.param_groups()[0].lr()}}.dump()
            << "\n";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", l);
    bar.update(step, {{"loss", buf}});
    if (step % std::max<int64_t>(1, o.steps / 8) == 0 || step == o.steps) {
      bar.finish();
      std::cout << "step " << step << "  loss " << buf << "\n";
      bar = ProgressBar("train", o.steps, "step");
      bar.update(step);
    }
  }
  bar.finish();
  metrics.close();
  write_svg_plot(o.out + "/loss.svg", {curve}, {"ember demo: sorting digits", "step", "cross-entropy (log scale)", true});

  Generator eval_gen(o.seed + 1);
  EvalResult r = evaluate(model, o, eval_gen, 500);
  std::cout << "\nloss " << first_loss << " -> " << last_loss << "\n";
  std::cout << "held-out sequences sorted exactly: " << 100.0 * r.exact << "%  (digits right: " << 100.0 * r.per_token
            << "%)\n";
  for (const auto& e : r.examples) std::cout << "  " << e << "\n";
  nn::save_module(model, o.out + "/model.safetensors");
  std::cout << "wrote " << metrics_path << ", " << o.out << "/loss.svg, " << o.out << "/model.safetensors\n";
}

}  // namespace

void register_demo(CLI::App& app) {
  auto opts = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "Train a small transformer to sort digits, printing the falling loss");
  cmd->add_option("--steps", opts->steps, "Training steps")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--batch", opts->batch, "Sequences per step")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--length", opts->length, "Digits per sequence")->capture_default_str()->check(CLI::Range(2, 64));
  cmd->add_option("--layers", opts->n_layer, "Transformer blocks")->capture_default_str()->check(CLI::Range(1, 48));
  cmd->add_option("--heads", opts->n_head, "Attention heads")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--embd", opts->n_embd, "Embedding width (a multiple of --heads)")->capture_default_str()->check(CLI::Range(8, 4096));
  cmd->add_option("--lr", opts->lr, "Peak learning rate (AdamW, warm-up then cosine)")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "Random seed (same seed, same run)")->capture_default_str();
  cmd->add_option("--threads", opts->threads, "OpenMP threads (default: all cores)");
  cmd->add_option("--out", opts->out, "Folder for metrics.jsonl, loss.svg and model.safetensors")->capture_default_str();
  cmd->callback([opts] {
    if (opts->n_embd % opts->n_head != 0)
      fail("demo", "--embd ", opts->n_embd, " is not a multiple of --heads ", opts->n_head);
    run_demo(*opts);
  });
}

}  // namespace ember::cli
