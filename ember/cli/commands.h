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
void register_sft(CLI::App& app);  // also `ember chat-data`

}  // namespace ember::cli
