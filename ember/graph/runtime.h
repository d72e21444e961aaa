// The deployment runtime: loads a saved GPT graph (.emb, from `ember export
// --format emb`) and runs it on token ids, with nothing of the training stack
// (autograd tape use, optimizers, data, tokenizers, serving) involved. Used by
// `ember run` and by the standalone `ember-run` binary, which links only the
// runtime library (core, ops, kernels, graph).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/graph/executor.h"
#include "ember/graph/saved_graph.h"

namespace ember::graph {

class GraphRuntime {
 public:
  // Loads and optimises the graph (fusion, weights packed once for the GEMM,
  // memory plan). Errors name the file.
  explicit GraphRuntime(const std::string& path);

  // The exported input is int64 ids [1, T]: a shorter sequence is right-padded
  // (causal attention: the padding cannot change earlier positions) and the
  // logits of its last token are returned. Errors on an empty or too long
  // sequence, or an id outside the vocabulary (when the metadata names it).
  std::vector<float> last_logits(const std::vector<int64_t>& ids);

  int64_t seq_len() const { return seq_len_; }
  const nlohmann::json& metadata() const { return metadata_; }

 private:
  std::string path_;
  nlohmann::json metadata_;
  std::unique_ptr<Executor> executor_;
  int64_t seq_len_ = 0;
  int64_t vocab_ = 0;
};

// `ember run FILE` / `ember-run FILE`: a JSON array of ids on stdin, the last
// position's logits as a JSON array on stdout. Returns the exit code; errors
// are one line on stderr.
int run_saved_graph_main(const std::string& path);

}  // namespace ember::graph
