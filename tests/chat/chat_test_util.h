// Shared by the chat tests: a small tokenizer trained on the tiny curriculum,
// and what a run folder's metrics.jsonl and checkpoints hold.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ember/chat/curriculum.h"
#include "ember/tokenizer/train.h"

namespace ember::chat::testing {

inline const Tokenizer& curriculum_tokenizer() {
  static const Tokenizer tok = [] {
    const World w = make_world(curriculum_preset("tiny"), 7);
    std::string text = curriculum_pretraining_text(w, 300, 7);
    for (const auto& c : curriculum_conversations(w, 200, 7, 0))
      for (const auto& m : c) text += m.content + "\n";
    BpeTrainOptions o;
    o.vocab_size = 384;
    return train_bpe({text}, o);
  }();
  return tok;
}

// A run's metrics.jsonl: the train losses, and every record's (kind, step).
inline std::vector<double> train_losses(const std::string& run) {
  std::vector<double> out;
  std::ifstream in(run + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.at("kind") == "train") out.push_back(j.at("loss").get<double>());
  }
  return out;
}
inline std::vector<std::pair<std::string, int64_t>> metric_steps(const std::string& run) {
  std::vector<std::pair<std::string, int64_t>> out;
  std::ifstream in(run + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    out.emplace_back(j.at("kind").get<std::string>(), j.at("step").get<int64_t>());
  }
  return out;
}

// A file's bytes (checkpoints compared bit for bit).
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ember::chat::testing
