// Test tool: writes the scripted chat checkpoint of scripted_model.h, so the
// end-to-end serving tests (robustness battery, OpenAI client, browser) can
// start `ember serve` on a model whose replies are known.
//   make_scripted_checkpoint OUT_DIR [REPLY] [--loop] [--block N]
#include <cstring>
#include <iostream>

#include "serve/scripted_model.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: make_scripted_checkpoint OUT_DIR [REPLY] [--loop] [--block N]\n";
    return 2;
  }
  std::string out = argv[1], reply = "OK <script>";
  bool loop = false;
  int64_t block = 128;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--loop") == 0)
      loop = true;
    else if (std::strcmp(argv[i], "--block") == 0 && i + 1 < argc)
      block = std::atoll(argv[++i]);
    else
      reply = argv[i];
  }
  try {
    std::cout << ember::serve::testing::write_scripted_checkpoint(out, reply, loop, block) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "make_scripted_checkpoint: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
