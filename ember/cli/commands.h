// Each `ember` subcommand lives in its own file and registers itself here.
#pragma once

#include <CLI/CLI.hpp>

namespace ember::cli {

void register_demo(CLI::App& app);
void register_tokenizer(CLI::App& app);
void register_data(CLI::App& app);
void register_pretrain(CLI::App& app);
void register_sample(CLI::App& app);
void register_bench(CLI::App& app);
// `ember bench gemm`, a subcommand of `ember bench` (bench_gemm.cpp).
void register_bench_gemm(CLI::App& bench);
void register_bench_ops(CLI::App& bench);  // bench_ops.cpp
void register_sft(CLI::App& app);  // also `ember chat-data`
void register_eval(CLI::App& app);
void register_label(CLI::App& app);  // comparisons of the policy's samples, ranked by the oracle
void register_speedrun(CLI::App& app);
void register_reward(CLI::App& app);
void register_dpo(CLI::App& app);
void register_ppo(CLI::App& app);
void register_serve(CLI::App& app);  // ember/serve: HTTP API and web chat page
void register_chat(CLI::App& app);   // terminal chat
void register_quantize(CLI::App& app);  // weight-only int8 / int4 / f16 checkpoints for inference
void register_graph(CLI::App& app);     // ember::compile's graphs: dump, stats
void register_export(CLI::App& app);  // a checkpoint's forward pass as ONNX or .emb
void register_run(CLI::App& app);     // runs a saved graph (.emb)

}  // namespace ember::cli
