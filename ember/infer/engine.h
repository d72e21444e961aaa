// The serving engine: a GPT with a bounded number of decode slots, a queue, and
// continuous batching. Requests wait in the queue until a slot is free, join
// the running batch at a token boundary (their prompt is prefilled in the same
// forward pass that decodes one token for every running request), and leave
// as soon as they finish, freeing the slot for the next one.
//
// Each step() is one forward pass over every active sequence (different
// lengths and positions: GPTRunner packs them and each attends only to its own
// cache) followed by one sampled token per sequence, streamed to the request's
// callback with its logprob and, on the last token, the finish reason.
//
// Threads: submit(), cancel() and the counters are safe from any thread.
// step() drives the model and runs the callbacks; call it from one thread at a
// time (tests call it directly, deterministically; a server calls start() to
// run it on a background thread). Callbacks run on the stepping thread with no
// engine lock held, so they may call submit() or cancel().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ember/infer/gpt_runner.h"
#include "ember/infer/sampler.h"

namespace ember::infer {

enum class FinishReason { none, stop, length, cancelled, error };
const char* finish_reason_name(FinishReason r);  // "stop", "length", ... (OpenAI's words where they exist)

struct TokenEvent {
  int64_t request_id = 0;
  int64_t token = -1;   // -1 on an event that only reports a finish (cancelled, error)
  float logprob = 0;    // log softmax of the raw logits at token
  int64_t index = 0;    // 0 for the first generated token
  FinishReason finish = FinishReason::none;  // set on the request's last event
  std::string error;                         // with FinishReason::error
};

struct Request {
  std::vector<int64_t> prompt;  // at least one id; shorter than the context
  SamplingParams sampling;
  int64_t max_tokens = 64;             // >= 1; also capped by the context left after the prompt
  std::vector<int64_t> stop_tokens;    // finishing with "stop" once one is produced (it is streamed)
  uint64_t seed = 0;                   // same seed, same tokens
  std::function<void(const TokenEvent&)> on_event;  // optional
};

struct EngineOptions {
  int64_t max_slots = 4;    // sequences decoded together
  int64_t max_queue = 256;  // waiting requests beyond the slots; submit() refuses more
  int64_t max_seq_len = 0;  // per-slot cache length (0: block_size)
  // Ids the sampler may choose: [0, sample_vocab) (0: the model's vocab_size).
  // A model whose vocabulary is padded past its tokenizer's (vocab_size rounded
  // up for speed) passes the tokenizer's size, so an id with no text is never
  // generated: the padded logits count as -inf for the choice and the logprob.
  int64_t sample_vocab = 0;
};

class Engine {
 public:
  // A float32 model's weights are shared, not copied: keep it float32 on the
  // CPU while the engine lives. Weights may also be quantized (runner_weights.h).
  Engine(const models::GPT& model, EngineOptions options = {});
  Engine(std::shared_ptr<const RunnerWeights> weights, EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request and returns its id (1, 2, ...). Throws ember::Error for an
  // invalid request (empty or too long prompt, ids outside the vocabulary, bad
  // sampling values, max_tokens < 1) or a full queue ("engine at capacity").
  int64_t submit(Request request);
  // Cancels a queued or running request: it leaves at the next step with a
  // FinishReason::cancelled event. False when the id is unknown or finished.
  bool cancel(int64_t request_id);

  // One scheduling step: drop cancelled requests, admit queued ones into free
  // slots, run one forward pass, sample and stream one token per active
  // request, retire the finished. Returns whether work remains.
  bool step();
  // step() until nothing is queued or running.
  void run_until_idle();

  // A background thread that steps while there is work and sleeps otherwise.
  void start();
  void stop();  // finishes the current step; queued and running requests stay

  int64_t active() const;
  int64_t queued() const;
  const EngineOptions& options() const { return options_; }
  const GPTRunner& runner() const { return runner_; }

 private:
  struct Slot {
    bool busy = false, prefilled = false, cancelled = false;
    int64_t id = 0, generated = 0, last_token = -1;
    Request req;
    KVCache cache;
    Generator gen{0};
    TokenHistory history;
  };
  struct Queued {
    int64_t id;
    Request req;
  };

  EngineOptions options_;
  GPTRunner runner_;
  std::vector<std::unique_ptr<Slot>> slots_;  // Generator is not movable
  std::deque<Queued> queue_;
  int64_t next_id_ = 1;
  mutable std::mutex mutex_;  // queue_, next_id_, the busy/cancelled/id fields of slots_
  std::mutex step_mutex_;     // one step() at a time
  std::vector<float> logits_;
  std::condition_variable wake_;
  std::thread worker_;
  std::atomic<bool> running_{false};
};

}  // namespace ember::infer
