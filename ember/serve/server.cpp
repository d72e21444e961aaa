// The HTTP server behind `ember serve` (see server.h).
#include "ember/serve/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "ember/core/error.h"
#include "ember/serve/api_error.h"
#include "ember/serve/api_request.h"
#include "ember/serve/api_response.h"
#include "ember/serve/connection_probe.h"
#include "ember/serve/generation.h"
#include "ember/serve/metrics.h"
#include "ember/serve/web_assets.h"

namespace ember::serve {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// How long a streaming handler waits for tokens before writing a keep-alive
// comment, which is also how it notices a client that has gone away.
constexpr std::chrono::milliseconds kPoll{500};
// How often a non-streaming handler looks at its socket while no token comes
// (tokens also wake it): a client that left frees its slot within this.
constexpr std::chrono::milliseconds kClosePoll{50};

const char* const kChatPath = "/v1/chat/completions";
const char* const kCompletionsPath = "/v1/completions";

uint64_t random_seed() {
  static std::mutex m;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(m);
  return rng();
}

}  // namespace

struct Server::Impl {
  const ServedModel& model;
  infer::Engine& engine;
  ServerOptions opt;
  httplib::Server http;
  ServeMetrics metrics;
  const int64_t created = int64_t(std::time(nullptr));

  // Draining: the generation requests in flight and their engine ids.
  std::atomic<bool> draining{false};
  std::atomic<bool> listen_returned{false};  // run()'s listen has ended (drain() stops until then)
  std::mutex mutex;
  std::condition_variable changed;
  int64_t in_flight = 0;
  std::set<int64_t> live;  // engine request ids
  int shutdown_calls = 0;

  Impl(const ServedModel& m, infer::Engine& e, ServerOptions o) : model(m), engine(e), opt(std::move(o)) {}

  // Counts a generation request as in flight for as long as it lives (for a
  // stream: until httplib drops the content provider).
  struct InFlight {
    Impl& s;
    int64_t id = -1;
    explicit InFlight(Impl& s) : s(s) {
      std::lock_guard<std::mutex> lock(s.mutex);
      ++s.in_flight;
    }
    void track(int64_t engine_id) {
      std::lock_guard<std::mutex> lock(s.mutex);
      id = engine_id;
      s.live.insert(id);
    }
    ~InFlight() {
      {
        std::lock_guard<std::mutex> lock(s.mutex);
        --s.in_flight;
        s.live.erase(id);
      }
      s.changed.notify_all();
    }
  };

  void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    if (e.status == 429 || e.status == 503) res.set_header("Retry-After", "1");
    res.set_content(dump_json(e.body()), "application/json");
  }

  void authorize(const httplib::Request& req) {
    if (opt.api_key.empty()) return;
    if (!req.has_header("Authorization"))
      throw ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>'", "invalid_request_error",
                     "", "invalid_api_key");
    const std::string expected = "Bearer " + opt.api_key, got = req.get_header_value("Authorization");
    // Compare every byte whatever the first difference, so timing does not leak the key.
    unsigned diff = got.size() == expected.size() ? 0u : 1u;
    for (size_t i = 0; i < got.size() && i < expected.size(); ++i) diff |= unsigned(got[i] ^ expected[i]);
    if (diff != 0) throw ApiError(401, "invalid API key", "invalid_request_error", "", "invalid_api_key");
  }

  void refuse_when_draining() {
    if (draining)
      throw ApiError(503, "the server is shutting down; retry later", "server_error", "", "shutting_down");
  }

  // Validation shared by both endpoints; fills `g` from the request fields.
  void prepare(const SamplingRequest& r, GenerationRequest& g, const std::string& prompt_field) {
    check_prompt_fits(int64_t(g.prompt.size()), engine.options().max_seq_len, prompt_field);
    g.sampling = r.sampling;
    // A maximum beyond the context is clamped: generation then ends at the
    // context's end with finish_reason "length" (docs/SERVING.md).
    const int64_t room = engine.options().max_seq_len - int64_t(g.prompt.size());
    g.max_tokens = std::min(r.max_tokens.value_or(room), room);
    g.stop_strings = r.stop;
    g.seed = r.seed ? *r.seed : random_seed();
    g.token_delay_ms = opt.token_delay_ms;
  }

  std::unique_ptr<Generation> submit(GenerationRequest g) {
    try {
      return std::make_unique<Generation>(engine, model.tokenizer, std::move(g));
    } catch (const Error& e) {
      // The engine's one refusal that is about load rather than the request.
      if (std::string(e.what()).find("engine at capacity") != std::string::npos)
        throw ApiError(429, "the server is at capacity (every decode slot busy and the queue full); retry later",
                       "rate_limit_error", "", "server_at_capacity");
      throw ApiError(400, e.what());
    }
  }

  void handle_generation(const httplib::Request& req, httplib::Response& res, bool is_chat) {
    const auto start = Clock::now();
    try {
      authorize(req);
      // Counted in flight before the draining check, so drain() cannot stop
      // the listener between the check and the submit.
      auto guard = std::make_shared<InFlight>(*this);
      refuse_when_draining();
      GenerationRequest g;
      SamplingRequest common;
      if (is_chat) {
        ChatRequest r = parse_chat_request(req.body);
        check_model(r.model, opt.model_name);
        try {
          g.prompt = model.chat_template->render_prompt(r.messages);
        } catch (const Error& e) {
          throw ApiError(400, std::string("messages: ") + e.what(), "invalid_request_error", "messages");
        }
        g.stop_tokens = model.chat_stop_tokens();
        common = std::move(r);
        prepare(common, g, "messages");
      } else {
        CompletionRequest r = parse_completion_request(req.body);
        check_model(r.model, opt.model_name);
        g.prompt = model.completion_prompt(r.prompt);
        if (model.end_of_text >= 0) g.stop_tokens = {model.end_of_text};
        common = std::move(r);
        prepare(common, g, "prompt");
      }
      std::unique_ptr<Generation> gen = submit(std::move(g));
      guard->track(gen->id());
      ResponseHeader h{new_response_id(is_chat ? "chatcmpl-" : "cmpl-"), int64_t(std::time(nullptr)), opt.model_name};
      if (common.stream)
        stream(res, std::move(gen), std::move(guard), h, common, is_chat, start);
      else
        respond(req, res, *gen, h, common, is_chat, start);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, std::string("internal error: ") + e.what(), "server_error"));
    }
  }

  void finish_metrics(const Generation& gen, Clock::time_point start) {
    metrics.add_tokens(gen.prompt_tokens(), gen.completion_tokens());
    if (auto t = gen.first_token_time()) metrics.observe_time_to_first_token(std::chrono::duration<double>(*t - start).count());
    metrics.observe_request_duration(seconds_since(start));
  }

  void respond(const httplib::Request& req, httplib::Response& res, Generation& gen, const ResponseHeader& h,
               const SamplingRequest& r, bool is_chat, Clock::time_point start) {
    std::string text;
    std::vector<TokenLogprob> logprobs;
    std::optional<Delta> d;
    // Nothing is written until the reply is ready, so a client that went away
    // is seen only on its socket: cancel its generation and free the slot.
    const ConnectionProbe probe(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
    while (!(d = gen.next(kClosePoll)) || !d->finished) {
      if (probe.closed()) {
        // Counted before the cancel, so whoever sees the slot free sees the counts.
        metrics.count_disconnect();
        finish_metrics(gen, start);
        gen.cancel();
        // Nobody reads it; 499 (nginx's "client closed request") tells the
        // request counter what happened.
        send_error(res, ApiError(499, "the client closed the connection before the reply was ready",
                                 "invalid_request_error", "", "client_closed_request"));
        return;
      }
      if (!d) continue;
      text += d->text;
      logprobs.insert(logprobs.end(), d->logprobs.begin(), d->logprobs.end());
    }
    text += d->text;
    logprobs.insert(logprobs.end(), d->logprobs.begin(), d->logprobs.end());
    finish_metrics(gen, start);
    if (d->finish_reason == "error") throw ApiError(500, "generation failed: " + d->error, "server_error");
    const Usage usage{gen.prompt_tokens(), gen.completion_tokens()};
    std::optional<std::vector<TokenLogprob>> lp;
    if (r.logprobs) lp = logprobs;
    const json body = is_chat ? chat_completion(h, text, d->finish_reason, usage, lp)
                              : completion(h, text, d->finish_reason, usage, lp);
    res.set_content(dump_json(body), "application/json");
  }

  struct StreamState {
    std::unique_ptr<Generation> gen;
    std::shared_ptr<InFlight> guard;
    ResponseHeader h;
    bool is_chat = true, include_usage = false, logprobs = false, started = false, done = false;
    size_t text_offset = 0;  // completions' logprob text_offset
    Clock::time_point start;
  };

  void stream(httplib::Response& res, std::unique_ptr<Generation> gen, std::shared_ptr<InFlight> guard,
              const ResponseHeader& h, const SamplingRequest& r, bool is_chat, Clock::time_point start) {
    auto st = std::make_shared<StreamState>();
    st->gen = std::move(gen);
    st->guard = std::move(guard);
    st->h = h;
    st->is_chat = is_chat;
    st->include_usage = r.include_usage;
    st->logprobs = r.logprobs;
    st->start = start;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");  // proxies must pass events through as they come
    res.set_chunked_content_provider("text/event-stream", [this, st](size_t, httplib::DataSink& sink) {
      return stream_step(*st, sink);
    });
  }

  json content_chunk(const StreamState& st, const std::string& text, const std::vector<TokenLogprob>& lp,
                     const std::string& finish) {
    std::optional<std::vector<TokenLogprob>> logprobs;
    if (st.logprobs) logprobs = lp;
    if (st.is_chat) {
      const json delta = finish.empty() ? json{{"content", text}} : json::object();
      return chat_chunk(st.h, delta, finish, logprobs, st.include_usage);
    }
    json c = completion(st.h, text, finish, std::nullopt, logprobs, st.text_offset);
    if (st.include_usage) c["usage"] = nullptr;
    return c;
  }

  // One call from httplib's chunked writer: writes what is ready. Returning
  // false ends the response (the client went away).
  bool stream_step(StreamState& st, httplib::DataSink& sink) {
    Generation& gen = *st.gen;
    auto write = [&sink](const std::string& s) { return sink.write(s.data(), s.size()); };
    auto client_gone = [&] {
      gen.cancel();
      metrics.count_disconnect();
      finish_metrics(gen, st.start);
      return false;
    };
    if (!st.started) {
      st.started = true;
      if (st.is_chat &&
          !write(sse_event(chat_chunk(st.h, {{"role", "assistant"}, {"content", ""}}, "", std::nullopt,
                                           st.include_usage))))
        return client_gone();
      return true;
    }
    const std::optional<Delta> d = gen.next(kPoll);
    if (!d) return write(sse_keepalive()) ? true : client_gone();
    if (!d->text.empty() || !d->logprobs.empty()) {
      if (!write(sse_event(content_chunk(st, d->text, d->logprobs, "")))) return client_gone();
      st.text_offset += d->text.size();
    }
    if (!d->finished) return true;
    finish_metrics(gen, st.start);
    std::string tail;
    if (d->finish_reason == "error") {
      tail += sse_event(ApiError(500, "generation failed: " + d->error, "server_error").body());
    } else {
      tail += sse_event(content_chunk(st, "", {}, d->finish_reason));
      if (st.include_usage)
        tail += sse_event(usage_chunk(st.h, st.is_chat ? "chat.completion.chunk" : "text_completion",
                                      {gen.prompt_tokens(), gen.completion_tokens()}));
    }
    tail += sse_done();
    if (!write(tail)) return false;
    sink.done();
    return true;
  }

  void install_routes() {
    auto json_handler = [this](auto fn) {
      return [this, fn](const httplib::Request& req, httplib::Response& res) {
        try {
          fn(req, res);
        } catch (const ApiError& e) {
          send_error(res, e);
        }
      };
    };
    http.Post(kChatPath, [this](const httplib::Request& q, httplib::Response& r) { handle_generation(q, r, true); });
    http.Post(kCompletionsPath, [this](const httplib::Request& q, httplib::Response& r) { handle_generation(q, r, false); });
    http.Get("/v1/models", json_handler([this](const httplib::Request& req, httplib::Response& res) {
      authorize(req);
      res.set_content(dump_json(model_list(opt.model_name, created)), "application/json");
    }));
    http.Get("/v1/models/(.+)", json_handler([this](const httplib::Request& req, httplib::Response& res) {
      authorize(req);
      check_model(req.matches[1], opt.model_name);
      res.set_content(dump_json(model_object(opt.model_name, created)), "application/json");
    }));
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (draining) res.status = 503;
      res.set_content(draining ? R"({"status":"draining"})" : R"({"status":"ok"})", "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      const EngineGauges g{engine.queued(), engine.active(), engine.options().max_slots};
      res.set_content(metrics.render(g), "text/plain; version=0.0.4; charset=utf-8");
    });
    // Wrong methods on known routes: 405 with Allow (instead of httplib's 404).
    auto not_allowed = [this](const char* allow) {
      return [this, allow](const httplib::Request& req, httplib::Response& res) {
        res.set_header("Allow", allow);
        send_error(res, ApiError(405, "method " + req.method + " is not allowed on " + req.path + " (use " + allow + ")",
                                 "invalid_request_error", "", "method_not_allowed"));
      };
    };
    for (const char* path : {kChatPath, kCompletionsPath}) {
      http.Get(path, not_allowed("POST"));
      http.Put(path, not_allowed("POST"));
      http.Delete(path, not_allowed("POST"));
      http.Patch(path, not_allowed("POST"));
    }
    for (const char* path : {"/v1/models", "/health", "/metrics", "/"}) {
      http.Post(path, not_allowed("GET"));
      http.Put(path, not_allowed("GET"));
      http.Delete(path, not_allowed("GET"));
      http.Patch(path, not_allowed("GET"));
    }
    // Everything else under GET: the page's files, or 404 (from the error handler).
    http.Get("/.*", [](const httplib::Request& req, httplib::Response& res) {
      WebAsset a;
      if (!find_web_asset(req.path, a)) {
        res.status = 404;
        return;
      }
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Content-Type-Options", "nosniff");
      // The page runs only its own script and style: model output can never run code.
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                     "img-src 'self' data:; frame-ancestors 'none'");
      res.set_content(a.body.data(), a.body.size(), a.content_type);
    });
    // Statuses httplib sets itself (404, 413, 400 for a malformed request
    // line, ...) get an OpenAI-style body too.
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                        httplib::Response& res) {
      if (!res.body.empty() || res.is_chunked_content_provider_) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 404)
        send_error(res, ApiError(404, "unknown route: " + req.method + " " + req.path, "invalid_request_error", "",
                                 "not_found"));
      else if (res.status == 413)
        send_error(res, ApiError(413, "the request body is too large: the limit is " +
                                          std::to_string(opt.max_body_bytes) + " bytes",
                                 "invalid_request_error", "", "request_too_large"));
      else
        send_error(res, ApiError(res.status, "HTTP error " + std::to_string(res.status) + " reading the request",
                                 "invalid_request_error"));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, ApiError(500, "internal error: " + what, "server_error"));
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const bool known = req.path == kChatPath || req.path == kCompletionsPath || req.path == "/v1/models" ||
                         req.path.rfind("/v1/models/", 0) == 0 || req.path == "/health" || req.path == "/metrics" ||
                         req.path == "/";
      std::string endpoint = known ? req.path : "other";
      if (endpoint.rfind("/v1/models/", 0) == 0) endpoint = "/v1/models/{id}";
      metrics.count_request(endpoint, res.status);
      if (opt.log_requests) std::cerr << req.method + " " + req.path + " " + std::to_string(res.status) + "\n";
    });
  }

  // Waits for shutdown(), then for the requests in flight (cancelling them
  // after the drain timeout), then stops the listener, which ends run().
  void drain() {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return shutdown_calls > 0; });
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(opt.drain_timeout_s));
    changed.wait_until(lock, deadline, [&] { return in_flight == 0 || shutdown_calls > 1; });
    if (in_flight > 0) {
      std::cerr << "serve: cancelling " << in_flight << " request(s) still running\n";
      for (int64_t id : live) engine.cancel(id);
      // Cancelled requests end at the engine's next step; their handlers then
      // write the last events. A client that stopped reading is bounded by the write timeout.
      changed.wait_for(lock, std::chrono::seconds(opt.write_timeout_s + 2), [&] { return in_flight == 0; });
    }
    lock.unlock();
    // httplib's stop() does nothing until listen has started: a signal that
    // arrives while run() is still starting must not be lost, so keep asking
    // until run() reports that listen returned.
    while (!listen_returned) {
      http.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};

Server::Server(const ServedModel& model, infer::Engine& engine, ServerOptions options)
    : impl_(std::make_unique<Impl>(model, engine, std::move(options))) {
  Impl& s = *impl_;
  const int threads = std::max(1, s.opt.http_threads);
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  s.http.set_payload_max_length(s.opt.max_body_bytes);
  s.http.set_read_timeout(s.opt.read_timeout_s);
  s.http.set_write_timeout(s.opt.write_timeout_s);
  s.http.set_keep_alive_timeout(5);
  s.http.set_tcp_nodelay(true);  // tokens go out as they come, not batched by Nagle
  s.install_routes();
}

Server::~Server() = default;

int Server::bind() {
  Impl& s = *impl_;
  if (s.opt.port < 0 || s.opt.port > 65535) fail("serve", "--port must be in [0, 65535], got ", s.opt.port);
  const int port = s.opt.port == 0 ? s.http.bind_to_any_port(s.opt.host)
                                   : (s.http.bind_to_port(s.opt.host, s.opt.port) ? s.opt.port : -1);
  if (port < 0) fail("serve", "cannot listen on ", s.opt.host, ":", s.opt.port, " (address in use or not available)");
  return port;
}

void Server::run() {
  Impl& s = *impl_;
  std::thread drainer([&s] { s.drain(); });
  s.http.listen_after_bind();
  // listen returns when drain() stopped it, or on a socket error: make sure the drainer ends either way.
  s.listen_returned = true;
  s.draining = true;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.shutdown_calls = std::max(s.shutdown_calls, 2);
  }
  s.changed.notify_all();
  drainer.join();
}

void Server::shutdown() {
  Impl& s = *impl_;
  s.draining = true;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.shutdown_calls;
  }
  s.changed.notify_all();
}

}  // namespace ember::serve
