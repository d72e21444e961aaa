// `ember-run FILE`: the deployment runtime as its own small binary. It links
// only ember_runtime (no training, data, tokenizer, serving, MPI or ONNX code)
// and does what `ember run FILE` does: token ids as a JSON array on stdin, the
// last position's logits as a JSON array on stdout.
#include <cstring>
#include <iostream>

#include "ember/graph/runtime.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cerr << "usage: ember-run MODEL.emb < ids.json\n"
                 "Runs a saved graph from `ember export --format emb`: reads a JSON array of token ids\n"
                 "on stdin and prints the logits of the last position as a JSON array.\n";
    return argc == 2 ? 0 : 2;
  }
  return ember::graph::run_saved_graph_main(argv[1]);
}
