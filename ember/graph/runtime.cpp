// The deployment runtime (see runtime.h).
#include "ember/graph/runtime.h"

#include <iostream>
#include <iterator>

#include "ember/core/error.h"
#include "ember/graph/passes.h"

namespace ember::graph {

GraphRuntime::GraphRuntime(const std::string& path) : path_(path) {
  SavedGraph saved = load_graph(path);
  metadata_ = saved.metadata;
  Graph& g = saved.graph;
  if (g.inputs.size() != 1 || g.outputs.size() != 1)
    fail("run", path, ": expected one input (token ids) and one output (logits)");
  const TensorSpec& in = g.spec(g.inputs[0]);
  const TensorSpec& out = g.spec(g.outputs[0]);
  if (in.dtype != DType::i64 || in.shape.size() != 2 || in.shape[0] != 1 || out.shape.size() != 3)
    fail("run", path, ": expected int64 ids [1, T] -> logits [1, T, vocab], got ", shape_str(in.shape), " -> ",
         shape_str(out.shape));
  seq_len_ = in.shape[1];
  vocab_ = out.shape[2];
  // A deployed graph's weights never change: pack them once for the GEMM.
  PassOptions passes;
  passes.prepack_weights = true;
  optimize(g, passes);
  executor_ = std::make_unique<Executor>(std::move(g));
}

std::vector<float> GraphRuntime::last_logits(const std::vector<int64_t>& ids) {
  if (ids.empty()) fail("run", "no token ids given");
  if (int64_t(ids.size()) > seq_len_)
    fail("run", path_, " was exported for at most ", seq_len_, " tokens, got ", ids.size(),
         "; export again with a larger --seq-len");
  for (int64_t id : ids)
    if (id < 0 || id >= vocab_) fail("run", "token id ", id, " is outside the vocabulary [0, ", vocab_, ")");
  std::vector<int64_t> padded(size_t(seq_len_), 0);
  std::copy(ids.begin(), ids.end(), padded.begin());
  Tensor logits = executor_->run({tensor_i64(padded, {1, seq_len_})})[0];
  const float* p = logits.data<float>() + (int64_t(ids.size()) - 1) * vocab_;
  return std::vector<float>(p, p + vocab_);
}

int run_saved_graph_main(const std::string& path) {
  try {
    GraphRuntime rt(path);
    const std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception&) {
      fail("run", "stdin must be a JSON array of token ids, e.g. [1, 2, 3]");
    }
    if (!j.is_array()) fail("run", "stdin must be a JSON array of token ids, e.g. [1, 2, 3]");
    std::vector<int64_t> ids;
    for (const auto& v : j) {
      if (!v.is_number_integer()) fail("run", "stdin must be a JSON array of integers; got ", v.dump());
      ids.push_back(v.get<int64_t>());
    }
    nlohmann::json out = rt.last_logits(ids);
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace ember::graph
