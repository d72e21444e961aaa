// `ember graph dump`: traces a GPT (a preset with random weights, or a
// checkpoint) through ember::compile's tracer and prints the graph IR, before
// or after the optimisation passes, or a one-line JSON summary of what the
// passes and the memory plan did (--stats).
//
//   ember graph dump --preset tiny --what forward          # inference graph, optimised
//   ember graph dump --preset tiny --what prefill          # last position's logits only
//   ember graph dump --preset tiny --what prefill --freeze # weights packed once (linear_prepacked)
//   ember graph dump --preset small --what train --stats   # forward + loss + backward
//   ember graph dump --preset small --what step --stats    # + clipping and AdamW: one training step
//   ember graph dump --checkpoint runs/x --no-passes        # as traced
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ember/autograd/grad_mode.h"
#include "ember/nn/parameter_namer.h"
#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/graph/compile.h"
#include "ember/models/gpt.h"
#include "ember/nn/module_io.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/train/model_checkpoint.h"

namespace ember::cli {
namespace {

struct GraphDumpOptions {
  std::string preset = "tiny", checkpoint, what = "forward";
  int64_t batch = 1, seq_len = 0;
  bool no_passes = false, stats = false, freeze = false;
};

void graph_dump(const GraphDumpOptions& o) {
  models::GPTConfig cfg;
  std::string path;
  if (!o.checkpoint.empty()) {
    train::ModelCheckpoint ck = train::open_model_checkpoint(o.checkpoint, {"pretrain", "sft", "dpo", "ppo"}, "graph");
    cfg = ck.config;
    path = ck.model_path;
  } else {
    cfg = models::GPTConfig::preset(o.preset);
  }
  cfg.dropout = 0.0;
  const int64_t T = o.seq_len > 0 ? o.seq_len : cfg.block_size;
  if (T > cfg.block_size) fail("graph", "--seq-len ", T, " exceeds block_size ", cfg.block_size);
  Generator gen(1);
  models::GPT model(cfg, &gen);
  if (!path.empty()) nn::load_module(model, path);
  const graph::CaptureNamer namer = nn::parameter_namer(model);
  Tensor ids = zeros({o.batch, T}, DType::i64);
  graph::Graph g;
  if (o.what == "forward" || o.what == "prefill") {
    model.eval();
    NoGradGuard no_grad;
    // prefill: the last position's logits, what `ember bench generate --compile`
    // times (slice sinking then runs the last block on that position only).
    const bool last = o.what == "prefill";
    g = graph::trace(
        [&](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{last ? model.last_logits(in[0]) : model.forward(in[0])};
        },
        {ids}, namer);
  } else {
    // The step is what `ember bench train --compile` runs.
    optim::AdamW opt(optim::make_param_groups(model, 0.1), {});
    g = graph::trace(
        [&](const std::vector<Tensor>& in) {
          Tensor loss = model.loss(in[0], in[1]);
          if (o.what == "loss") return std::vector<Tensor>{loss};
          loss.backward();
          if (o.what == "step") {
            optim::clip_grad_norm_traceable_(model.parameters(), 1.0);
            opt.step();
            opt.zero_grad();
          }
          return std::vector<Tensor>{loss};
        },
        {ids, ids}, [&](const Tensor& t) {
          std::string name = namer(t);
          for (size_t i = 0; name.empty() && i < opt.num_params(); ++i)
            for (const auto& [field, state] : opt.state(i).tensors)
              if (state.same(t)) name = "optimizer." + std::to_string(i) + "." + field;
          for (size_t k = 0; name.empty() && k < opt.param_groups().size(); ++k)
            if (opt.param_groups()[k].counters.same(t)) name = "optimizer.group" + std::to_string(k) + ".counters";
          return name;
        });
  }
  const size_t traced_nodes = g.nodes.size();
  std::vector<graph::PassReport> report;
  graph::PassOptions pass_options;
  pass_options.prepack_weights = o.freeze;
  if (o.freeze && o.no_passes) fail("graph dump", "--freeze packs weights in a pass; drop --no-passes");
  if (o.freeze && o.what != "forward" && o.what != "prefill")
    fail("graph dump", "--freeze is for inference graphs (--what forward or prefill), not --what ", o.what);
  if (!o.no_passes) report = graph::optimize(g, pass_options);
  if (!o.stats) {
    std::cout << g.dump();
    return;
  }
  const graph::MemoryPlan plan = graph::plan_memory(g);
  nlohmann::json passes = nlohmann::json::array();
  for (const graph::PassReport& r : report)
    passes.push_back({{"pass", r.pass}, {"changed", r.changed}, {"nodes_after", r.nodes_after}});
  const double mb = 1.0 / (1 << 20);
  // Where memory goes: the planned values alive at the busiest node, largest first.
  std::vector<int64_t> live(g.nodes.size() + 1, 0);
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (plan.offset[v] < 0 || plan.reuses[v] >= 0) continue;
    const graph::Value& val = g.values[v];
    const int64_t bytes = numel(val.spec.shape) * int64_t(dtype_size(val.spec.dtype));
    const int32_t end = std::max(val.node, plan.last_use[v]);
    for (int32_t i = val.node; i <= end; ++i) live[size_t(i)] += bytes;
  }
  const size_t busiest = size_t(std::max_element(live.begin(), live.end()) - live.begin());
  std::vector<std::pair<int64_t, std::string>> at_peak;
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (plan.offset[v] < 0 || plan.reuses[v] >= 0) continue;
    const graph::Value& val = g.values[v];
    if (size_t(val.node) > busiest || size_t(std::max(val.node, plan.last_use[v])) < busiest) continue;
    at_peak.emplace_back(numel(val.spec.shape) * int64_t(dtype_size(val.spec.dtype)),
                         "%" + std::to_string(v) + " " + g.nodes[size_t(val.node)].prim->name() + " " +
                             shape_str(val.spec.shape));
  }
  std::sort(at_peak.rbegin(), at_peak.rend());
  nlohmann::json largest = nlohmann::json::array();
  for (size_t k = 0; k < at_peak.size() && k < 8; ++k)
    largest.push_back({{"value", at_peak[k].second}, {"mb", double(at_peak[k].first) * mb}});
  nlohmann::json j = {{"graph", o.what},
                      {"preset", o.checkpoint.empty() ? o.preset : std::string()},
                      {"batch", o.batch},
                      {"seq_len", T},
                      {"traced_nodes", traced_nodes},
                      {"nodes", g.nodes.size()},
                      {"fused_elementwise", g.node_count("fused_elementwise")},
                      {"captures", g.captures.size()},
                      {"grads", g.grads.size()},
                      {"mutations", g.mutations.size()},
                      {"plan_mutations_in_place", plan.mutations_in_place},
                      {"passes", passes},
                      {"plan_arena_mb", double(plan.arena_bytes) * mb},
                      {"plan_unplanned_peak_mb", double(plan.unplanned_peak_bytes) * mb},
                      {"plan_total_mb", double(plan.total_bytes) * mb},
                      {"plan_in_place", plan.in_place},
                      {"busiest_node", busiest < g.nodes.size() ? g.nodes[busiest].prim->str() : std::string()},
                      {"largest_at_peak", largest},
                      {"hash", g.hash()}};
  std::cout << j.dump() << std::endl;
}

}  // namespace

void register_graph(CLI::App& app) {
  auto* graph_cmd = app.add_subcommand("graph", "Inspect the graphs ember::compile builds");
  graph_cmd->require_subcommand(1);
  auto o = std::make_shared<GraphDumpOptions>();
  auto* dump = graph_cmd->add_subcommand("dump", "Trace a GPT and print its graph IR (or --stats as JSON)");
  dump->add_option("--preset", o->preset, "Model preset with random weights")->capture_default_str();
  dump->add_option("--checkpoint", o->checkpoint, "A GPT checkpoint or run folder (instead of a preset)");
  dump->add_option("--what", o->what,
                   "forward: logits (eval mode, no grad); prefill: the last position's logits; loss; "
                   "train: loss and backward; step: a whole training step (backward, clipping, AdamW)")
      ->capture_default_str()
      ->check(CLI::IsMember({"forward", "prefill", "loss", "train", "step"}));
  dump->add_option("--batch", o->batch, "Sequences in the traced batch")->capture_default_str()->check(CLI::Range(1, 4096));
  dump->add_option("--seq-len", o->seq_len, "Tokens per sequence (default: block_size)");
  dump->add_flag("--no-passes", o->no_passes, "Print the graph as traced, before optimisation");
  dump->add_flag("--freeze", o->freeze,
                 "Freeze the weights: pack each once for the GEMM (linear_prepacked), as `bench generate --compile` "
                 "and the deployment runtime do");
  dump->add_flag("--stats", o->stats, "Print a JSON summary (nodes, passes, memory plan, hash) instead of the IR");
  dump->callback([o] { graph_dump(*o); });
}

}  // namespace ember::cli
