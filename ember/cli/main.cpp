// The `ember` command-line tool: one binary, one file per subcommand.
// Errors from any layer become one line on stderr and exit code 1.
#include <cstdio>
#include <iostream>

#include "ember/cli/commands.h"
#include "ember/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"ember: a deep-learning framework with the ChatGPT recipe on top"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ember 0.1.0");
  ember::cli::register_demo(app);
  ember::cli::register_tokenizer(app);
  ember::cli::register_data(app);
  ember::cli::register_pretrain(app);
  ember::cli::register_sample(app);
  ember::cli::register_bench(app);
  ember::cli::register_sft(app);
  ember::cli::register_eval(app);
  ember::cli::register_speedrun(app);
  ember::cli::register_label(app);
  ember::cli::register_reward(app);
  ember::cli::register_dpo(app);
  ember::cli::register_ppo(app);
  ember::cli::register_serve(app);
  ember::cli::register_chat(app);
  ember::cli::register_quantize(app);
  ember::cli::register_graph(app);
  ember::cli::register_export(app);
  ember::cli::register_run(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ember::Error& e) {
    std::cerr << "ember: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ember: internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
