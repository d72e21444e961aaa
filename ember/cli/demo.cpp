// `ember demo`: placeholder until the demo trainer lands.
#include <iostream>

#include "ember/cli/commands.h"

namespace ember::cli {

void register_demo(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Train a small model on generated data and print the falling loss");
  cmd->callback([] { std::cout << "demo: not yet\n"; });
}

}  // namespace ember::cli
