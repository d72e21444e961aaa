// A generation in flight on the engine (see generation.h).
#include "ember/serve/generation.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace ember::serve {

struct Generation::Inbox {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<infer::TokenEvent> events;
};

Generation::Generation(infer::Engine& engine, const Tokenizer& tokenizer, GenerationRequest request)
    : engine_(&engine),
      tok_(&tokenizer),
      inbox_(std::make_shared<Inbox>()),
      detok_(tokenizer, std::move(request.stop_strings)),
      stop_tokens_(request.stop_tokens) {
  prompt_tokens_ = int64_t(request.prompt.size());
  infer::Request r;
  r.prompt = std::move(request.prompt);
  r.sampling = request.sampling;
  r.max_tokens = request.max_tokens;
  r.stop_tokens = std::move(request.stop_tokens);
  r.seed = request.seed;
  // A weak reference: once this Generation is gone nobody reads the inbox,
  // and the engine's copy of the callback must not keep it alive for nothing.
  std::weak_ptr<Inbox> weak = inbox_;
  const int64_t delay = request.token_delay_ms;
  r.on_event = [weak, delay](const infer::TokenEvent& e) {
    if (delay > 0 && e.token >= 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    if (auto box = weak.lock()) {
      {
        std::lock_guard<std::mutex> lock(box->mutex);
        box->events.push_back(e);
      }
      box->ready.notify_all();
    }
  };
  id_ = engine.submit(std::move(r));
}

Generation::~Generation() {
  if (!finished_) engine_->cancel(id_);
}

void Generation::cancel() {
  if (!finished_) engine_->cancel(id_);
}

std::optional<Delta> Generation::next(std::chrono::milliseconds wait) {
  if (finished_) {
    Delta d;
    d.finished = true;
    return d;
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  Delta d;
  while (true) {
    std::deque<infer::TokenEvent> events;
    {
      std::unique_lock<std::mutex> lock(inbox_->mutex);
      if (!inbox_->ready.wait_until(lock, deadline, [&] { return !inbox_->events.empty(); })) return std::nullopt;
      events.swap(inbox_->events);
    }
    for (const infer::TokenEvent& e : events) {
      if (e.token >= 0) {
        if (!first_token_) first_token_ = std::chrono::steady_clock::now();
        ++completion_tokens_;
        const bool is_stop_token = std::find(stop_tokens_.begin(), stop_tokens_.end(), e.token) != stop_tokens_.end();
        if (!is_stop_token) {
          d.text += detok_.push(e.token);
          // An id past the tokenizer (padded model vocabulary) has no bytes.
          const std::string_view raw =
              e.token < int64_t(tok_->vocab_size()) ? tok_->token_bytes(TokenId(e.token)) : std::string_view();
          d.logprobs.push_back({token_text(*tok_, e.token), std::vector<uint8_t>(raw.begin(), raw.end()), e.logprob});
        }
      }
      if (detok_.stopped()) {
        // A stop string ended the text: the engine may already be working on
        // the next token; drop the request and ignore whatever else it sends.
        engine_->cancel(id_);
        d.finished = true;
        d.finish_reason = "stop";
        break;
      }
      if (e.finish != infer::FinishReason::none) {
        d.text += detok_.finish();
        d.finished = true;
        d.finish_reason = infer::finish_reason_name(e.finish);
        d.error = e.error;
        break;
      }
    }
    if (d.finished) finished_ = true;
    if (d.finished || !d.text.empty() || !d.logprobs.empty()) return d;
  }
}

}  // namespace ember::serve
