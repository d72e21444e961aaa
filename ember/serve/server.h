// `ember serve`: an OpenAI-compatible HTTP API and a web chat page over one
// inference engine (cpp-httplib underneath; see docs/SERVING.md for the API).
//
//   POST /v1/chat/completions   chat, JSON or streamed as server-sent events
//   POST /v1/completions        plain text continuation
//   GET  /v1/models[/{id}]      the one served model
//   GET  /health                200 {"status":"ok"}; 503 while draining
//   GET  /metrics               Prometheus text format
//   GET  /                      the web chat page (embedded files)
//
// Each HTTP connection is served by a thread of a fixed pool; a generation
// request submits to the shared engine and waits for its tokens (see
// generation.h), so slow or stalled clients never hold up the engine, and a
// streaming client that goes away is noticed at the next write (a token or a
// keep-alive comment twice a second) and its request cancelled, freeing the
// slot. shutdown() drains: new requests get 503 + Retry-After, running ones
// finish (cancelled after the drain timeout), then run() returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ember/infer/engine.h"
#include "ember/serve/served_model.h"

namespace ember::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;            // 0: any free port (bind() returns it)
  std::string api_key;        // empty: no authentication
  std::string model_name;     // the "model" clients must name
  int http_threads = 32;      // connections served at once
  size_t max_body_bytes = size_t(4) << 20;
  int read_timeout_s = 10;    // a client that stalls while sending is dropped after this
  int write_timeout_s = 10;   // ... or while not reading what it asked for
  double drain_timeout_s = 30;
  int64_t token_delay_ms = 0;  // debug: slow generation down (see GenerationRequest)
  bool log_requests = true;    // one line per request on stderr
};

class Server {
 public:
  // `model` and `engine` must outlive the server; the engine must be started.
  Server(const ServedModel& model, infer::Engine& engine, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (the chosen one for port 0).
  // Throws ember::Error naming host and port when it cannot.
  int bind();
  // Serves until a shutdown() has drained; call after bind().
  void run();
  // Thread-safe. The first call starts draining; a second one cancels the
  // requests still running at once.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ember::serve
