// Continuous-batching engine (see engine.h).
#include "ember/infer/engine.h"

#include <algorithm>

#include "ember/core/error.h"
#include "ember/util/stop_signal_mask.h"

namespace ember::infer {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::none: return "none";
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
  }
  return "?";
}

Engine::Engine(const models::GPT& model, EngineOptions options) : Engine(runner_weights(model), options) {}

Engine::Engine(std::shared_ptr<const RunnerWeights> weights, EngineOptions options)
    : options_(options), runner_(std::move(weights)) {
  const int64_t block = runner_.config().block_size;
  if (options_.max_slots < 1) fail("Engine", "max_slots must be >= 1, got ", options_.max_slots);
  if (options_.max_queue < 0) fail("Engine", "max_queue must be >= 0, got ", options_.max_queue);
  if (options_.max_seq_len < 0 || options_.max_seq_len > block)
    fail("Engine", "max_seq_len must be in [1, block_size ", block, "] (0: block_size), got ", options_.max_seq_len);
  if (options_.max_seq_len == 0) options_.max_seq_len = block;
  const int64_t vocab = runner_.config().vocab_size;
  if (options_.sample_vocab < 0 || options_.sample_vocab > vocab)
    fail("Engine", "sample_vocab must be in [1, vocab_size ", vocab, "] (0: vocab_size), got ", options_.sample_vocab);
  if (options_.sample_vocab == 0) options_.sample_vocab = vocab;
  for (int64_t i = 0; i < options_.max_slots; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->cache = runner_.new_cache(options_.max_seq_len);
  }
}

Engine::~Engine() { stop(); }

int64_t Engine::submit(Request r) {
  const char* op = "Engine";
  const int64_t vocab = runner_.config().vocab_size;
  if (r.prompt.empty()) fail(op, "the prompt is empty (start from an <|endoftext|> token for an empty text)");
  if (int64_t(r.prompt.size()) >= options_.max_seq_len)
    fail(op, "the prompt has ", r.prompt.size(), " tokens; the context holds ", options_.max_seq_len,
         " and at least one must be left to generate");
  for (int64_t t : r.prompt)
    if (t < 0 || t >= vocab) fail(op, "prompt token id ", t, " outside [0, ", vocab, ")");
  if (r.max_tokens < 1) fail(op, "max_tokens must be >= 1, got ", r.max_tokens);
  r.sampling.validate();
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (int64_t(queue_.size()) >= options_.max_queue + [&] {
          int64_t free = 0;
          for (const auto& s : slots_) free += s->busy ? 0 : 1;
          return free;
        }())
      fail(op, "engine at capacity: ", queue_.size(), " requests queued (max_queue ", options_.max_queue, ")");
    id = next_id_++;
    queue_.push_back(Queued{id, std::move(r)});
  }
  wake_.notify_all();
  return id;
}

bool Engine::cancel(int64_t request_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& s : slots_)
    if (s->busy && s->id == request_id && !s->cancelled) return s->cancelled = true;
  for (auto& q : queue_)
    if (q.id == request_id && q.req.max_tokens > 0) {
      q.req.max_tokens = 0;  // marks it cancelled; step() reports and drops it
      return true;
    }
  return false;
}

int64_t Engine::active() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t n = 0;
  for (const auto& s : slots_) n += s->busy ? 1 : 0;
  return n;
}

int64_t Engine::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return int64_t(queue_.size());
}

bool Engine::step() {
  std::lock_guard<std::mutex> step_lock(step_mutex_);
  // Events to send after the lock is released: (callback, event).
  std::vector<std::pair<std::function<void(const TokenEvent&)>, TokenEvent>> events;
  auto finish_event = [](int64_t id, FinishReason why, int64_t index) {
    TokenEvent e;
    e.request_id = id;
    e.finish = why;
    e.index = index;
    return e;
  };
  std::vector<Slot*> run;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& s : slots_)
      if (s->busy && s->cancelled) {
        events.emplace_back(s->req.on_event, finish_event(s->id, FinishReason::cancelled, s->generated));
        s->busy = false;
      }
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->req.max_tokens == 0) {
        events.emplace_back(it->req.on_event, finish_event(it->id, FinishReason::cancelled, 0));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& s : slots_) {
      if (s->busy || queue_.empty()) continue;
      Queued q = std::move(queue_.front());
      queue_.pop_front();
      s->busy = true;
      s->prefilled = false;
      s->cancelled = false;
      s->id = q.id;
      s->generated = 0;
      s->req = std::move(q.req);
      s->cache.reset();
      s->gen.manual_seed(s->req.seed);
      s->history.clear();
      if (s->req.sampling.has_penalties()) s->history.add_prompt(s->req.prompt);
    }
    for (auto& s : slots_)
      if (s->busy) run.push_back(s.get());
  }
  if (!run.empty()) {
    std::vector<SeqChunk> chunks;
    for (Slot* s : run) {
      if (!s->prefilled)
        chunks.push_back({s->req.prompt.data(), int64_t(s->req.prompt.size()), &s->cache});
      else
        chunks.push_back({&s->last_token, 1, &s->cache});
    }
    bool ok = true;
    std::string error;
    try {
      runner_.forward(chunks, logits_);
    } catch (const std::exception& e) {
      ok = false;
      error = e.what();
    }
    const int64_t vocab = runner_.config().vocab_size;
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < run.size(); ++i) {
      Slot& s = *run[i];
      if (!ok) {
        TokenEvent e = finish_event(s.id, FinishReason::error, s.generated);
        e.error = error;
        events.emplace_back(s.req.on_event, e);
        s.busy = false;
        continue;
      }
      s.prefilled = true;
      // Only the first sample_vocab logits of the row are read: leaving the
      // padded ids out is masking them to -inf, without a copy.
      const Sampled pick = sample(logits_.data() + int64_t(i) * vocab, options_.sample_vocab, s.req.sampling, s.gen,
                                  s.req.sampling.has_penalties() ? &s.history : nullptr);
      if (s.req.sampling.has_penalties()) s.history.add_generated(pick.token);
      TokenEvent e;
      e.request_id = s.id;
      e.token = pick.token;
      e.logprob = pick.logprob;
      e.index = s.generated++;
      s.last_token = pick.token;
      const auto& stops = s.req.stop_tokens;
      if (std::find(stops.begin(), stops.end(), pick.token) != stops.end())
        e.finish = FinishReason::stop;
      else if (s.generated >= s.req.max_tokens || s.cache.remaining() == 0)
        e.finish = FinishReason::length;  // the next token would need a position the cache lacks
      if (e.finish != FinishReason::none) s.busy = false;
      events.emplace_back(s.req.on_event, e);
    }
  }
  for (auto& [cb, e] : events)
    if (cb) cb(e);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!queue_.empty()) return true;
  for (const auto& s : slots_)
    if (s->busy) return true;
  return false;
}

void Engine::run_until_idle() {
  while (step()) {
  }
}

void Engine::start() {
  if (running_.exchange(true)) return;
  worker_ = std::thread([this] {
    // The worker and the OpenMP threads it starts compute: they leave SIGINT
    // and SIGTERM to the threads that do not (`ember serve`'s main and HTTP
    // threads), see util/stop_signal_mask.h.
    block_stop_signals_in_this_thread();
    while (running_) {
      if (step()) continue;
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] {
        if (!running_ || !queue_.empty()) return true;
        for (const auto& s : slots_)
          if (s->busy) return true;
        return false;
      });
    }
  });
}

void Engine::stop() {
  {
    // Under the mutex: otherwise the worker can test its wake-up condition,
    // miss this change and the notification, and sleep forever (lost wake-up).
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running_.exchange(false)) return;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

}  // namespace ember::infer
