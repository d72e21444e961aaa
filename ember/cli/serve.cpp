// `ember serve`: the OpenAI-compatible HTTP API and web chat page over a chat
// checkpoint (ember/serve/server.h; docs/SERVING.md). Prints
// "serving on http://HOST:PORT" once it accepts requests; SIGTERM or SIGINT
// drains (running requests finish, new ones get 503) and exits 0.
#include <omp.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/serve/server.h"

namespace ember::cli {
namespace {

struct ServeCliOptions {
  std::string checkpoint;
  serve::ServerOptions server;
  int64_t slots = 4, queue = 16;
  int threads = 0;
  bool quiet = false;
};

// The default model name: the folder the user named ("runs/sft" -> "sft").
std::string default_model_name(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "runs/sft/" has an empty filename
  const std::string name = p.filename().string();
  return name.empty() || name == "." ? "ember" : name;
}

// SIGINT/SIGTERM only count here (async-signal-safe); a watcher thread acts on
// them. A handler rather than a blocked mask plus sigwait, because libraries
// start threads before main() (OpenBLAS's pool, at load time) that a mask set
// here would not cover: a signal landing on one of them would kill the server.
// The engine's worker and its OpenMP threads, which compute, block both
// signals (infer/engine.cpp: oneDNN's AVX-512 GEMM and signal handlers), so
// the handler runs on a thread that does not.
std::atomic<int> g_stop_signals{0};
std::atomic<int> g_last_signal{0};
extern "C" void on_serve_stop_signal(int sig) {
  g_last_signal.store(sig);
  g_stop_signals.fetch_add(1);
}

void run_serve(ServeCliOptions o) {
  struct sigaction sa {};
  sa.sa_handler = on_serve_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A client that disconnects turns our next write into EPIPE, not a fatal SIGPIPE.
  signal(SIGPIPE, SIG_IGN);

  if (o.threads > 0) omp_set_num_threads(o.threads);
  o.server.log_requests = !o.quiet;
  if (o.slots < 1) fail("serve", "--slots must be >= 1, got ", o.slots);
  if (o.queue < 0) fail("serve", "--queue must be >= 0, got ", o.queue);
  if (o.server.http_threads < 1) fail("serve", "--http-threads must be >= 1, got ", o.server.http_threads);
  if (o.server.model_name.empty()) o.server.model_name = default_model_name(o.checkpoint);
  const std::string& host = o.server.host;
  if (o.server.api_key.empty() && host != "127.0.0.1" && host != "localhost" && host != "::1")
    std::cerr << "serve: warning: listening on " << host << " without --api-key: anyone who can reach it may use it\n";
  const auto model = serve::ServedModel::load(o.checkpoint, "serve");
  infer::EngineOptions eo;
  eo.max_slots = o.slots;
  eo.max_queue = o.queue;
  eo.sample_vocab = model->sample_vocab();
  infer::Engine engine(model->weights, eo);
  engine.start();
  serve::Server server(*model, engine, o.server);
  const int port = server.bind();

  std::atomic<bool> done{false};
  std::thread waiter([&] {
    int handled = 0;
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      for (; handled < g_stop_signals.load(); ++handled) {
        const int sig = g_last_signal.load();
        std::cerr << "serve: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                  << ": draining (a second signal cancels running requests)\n";
        server.shutdown();
      }
    }
  });
  // One write of whole lines: scripts wait for "serving on ..." and read the
  // address from it, so the line must never be seen half written.
  std::ostringstream ready;
  ready << "model \"" << o.server.model_name << "\" from " << model->checkpoint.dir << "\n"
        << "serving on http://" << o.server.host << ":" << port << "\n";
  std::cout << ready.str() << std::flush;
  server.run();
  done = true;
  waiter.join();
  engine.stop();
  std::cout << "serve: stopped" << std::endl;
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeCliOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve a chat checkpoint: OpenAI-compatible HTTP API and a web chat page");
  cmd->add_option("--checkpoint", o->checkpoint, "Checkpoint folder (sft, dpo, ppo or pretrain) or its run folder")
      ->required();
  cmd->add_option("--host", o->server.host, "Address to listen on (0.0.0.0: every interface)")->capture_default_str();
  cmd->add_option("--port", o->server.port, "Port (0: any free port; the chosen one is printed)")->capture_default_str();
  // Also from the environment, so the key need not appear in `ps` output.
  cmd->add_option("--api-key", o->server.api_key, "Require 'Authorization: Bearer KEY' on /v1/ routes")
      ->envname("EMBER_API_KEY");
  cmd->add_option("--model-name", o->server.model_name, "The model name clients send (default: the checkpoint folder's name)");
  cmd->add_option("--slots", o->slots, "Requests decoded together (continuous batching)")->capture_default_str();
  cmd->add_option("--queue", o->queue, "Requests that may wait for a slot; beyond that: 429")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads for the model (default: all cores)");
  cmd->add_option("--http-threads", o->server.http_threads, "Connections served at once")->capture_default_str();
  cmd->add_option("--max-body-bytes", o->server.max_body_bytes, "Largest request body; beyond that: 413")
      ->capture_default_str();
  cmd->add_option("--read-timeout", o->server.read_timeout_s, "Seconds a client may stall while sending a request")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_option("--drain-timeout", o->server.drain_timeout_s,
                  "Seconds running requests get to finish after SIGTERM/SIGINT before they are cancelled")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  cmd->add_flag("--quiet", o->quiet, "Do not log each request on stderr");
  cmd->add_option("--debug-token-delay-ms", o->server.token_delay_ms,
                  "Debug and tests only: sleep this long per generated token (to watch and stop streams)")
      ->group("Debug");
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace ember::cli
