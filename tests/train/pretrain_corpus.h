// The pretraining tests' shared fixture: one corpus, tokenizer and data folder
// for the whole test binary (built once), run options for a small GPT-2-style
// model, and the train losses a run logged (tests/train, tests/cuda).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/data/builtin_corpus.h"
#include "ember/data/prepare.h"
#include "ember/tokenizer/train.h"
#include "ember/train/pretrain.h"

// Inline, not in an anonymous namespace: one corpus (one temporary folder) per
// test process, whichever test files use it.
namespace ember::train {

// One corpus, tokenizer and data folder for the whole suite (built once).
struct Corpus {
  std::string root, tokenizer_dir, data_dir, config_json;
  Corpus() {
    root = ::testing::TempDir() + "/ember_pretrain_test_" + std::to_string(::getpid());
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    const std::string text = data::builtin_corpus(400'000, 3);
    const std::string text_path = root + "/corpus.txt";
    std::ofstream(text_path) << text;
    BpeTrainOptions bpe;
    bpe.vocab_size = 512;
    Tokenizer tok = train_bpe({text}, bpe);
    tokenizer_dir = root + "/tokenizer";
    tok.save(tokenizer_dir);
    data::PrepareOptions prep;
    prep.inputs = {text_path};
    prep.out = data_dir = root + "/data";
    prep.val_fraction = 0.1;
    prep.paragraphs = true;
    data::prepare_data(tok, prep);
    // A small GPT-2-style model: quick enough for the unit suite.
    config_json = root + "/config.json";
    std::ofstream(config_json) << R"({"n_layer": 2, "n_head": 4, "n_kv_head": 4, "n_embd": 64, "vocab_size": 512,
      "block_size": 64, "norm": "layernorm", "position": "learned", "mlp": "gelu", "bias": true,
      "tied_embeddings": true, "dropout": 0.0, "batch_size": 8, "rope_theta": 10000.0, "norm_eps": 1e-5})";
  }
  ~Corpus() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  PretrainOptions options(const std::string& run) const {
    PretrainOptions o;
    o.config_json = config_json;
    o.data_dir = data_dir;
    o.tokenizer_dir = tokenizer_dir;
    o.out_dir = root + "/" + run;
    o.batch_size = 8;
    o.seq_len = 64;
    o.lr = 3e-3;
    o.quiet = true;
    o.peak_gflops = 100;  // skip measuring: not under test here
    o.sample_tokens = 8;
    return o;
  }
};

inline const Corpus& corpus() {
  static const Corpus c;
  return c;
}

inline std::vector<double> train_losses(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<double> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "train") out.push_back(j["loss"].get<double>());
  }
  return out;
}


}  // namespace ember::train
