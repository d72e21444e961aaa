// Batched reply generation through the engine (see replies.h).
#include "ember/chat/replies.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ember/core/error.h"

namespace ember::chat {
namespace {

// A reply cut at max_new_tokens can end inside a UTF-8 character (byte-level
// BPE): such bytes become U+FFFD here, where model text enters, so every
// consumer (JSON logs, reports, graders) gets valid text.
std::string valid_utf8(const std::string& s) {
  return nlohmann::json::parse(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .get<std::string>();
}

}  // namespace

std::vector<Reply> generate_replies(const models::GPT& model, const ChatTemplate& tmpl,
                                    const std::vector<Conversation>& conversations, const ReplyOptions& o) {
  return generate_replies(infer::runner_weights(model), tmpl, conversations, o);
}

std::vector<Reply> generate_replies(std::shared_ptr<const infer::RunnerWeights> weights, const ChatTemplate& tmpl,
                                    const std::vector<Conversation>& conversations, const ReplyOptions& o) {
  if (o.max_new_tokens < 1) fail("generate_replies", "max_new_tokens must be >= 1, got ", o.max_new_tokens);
  std::vector<Reply> out(conversations.size());
  if (conversations.empty()) return out;
  const int64_t block = weights->config.block_size;
  // Leave room for the reply: a prompt keeps at most block - max_new_tokens
  // tokens (its most recent ones), and never fewer than half the context.
  const int64_t keep = std::max<int64_t>(block / 2, block - o.max_new_tokens);
  infer::EngineOptions eo;
  eo.max_slots = std::max<int64_t>(1, std::min<int64_t>(o.slots, int64_t(conversations.size())));
  eo.max_queue = int64_t(conversations.size());
  // Replies become text: never an id past the tokenizer (a padded vocabulary).
  eo.sample_vocab = std::min<int64_t>(weights->config.vocab_size, int64_t(tmpl.tokenizer().vocab_size()));
  infer::Engine engine(std::move(weights), eo);
  for (size_t i = 0; i < conversations.size(); ++i) {
    Reply& r = out[i];
    r.prompt = tmpl.render_prompt(conversations[i]);
    if (int64_t(r.prompt.size()) > keep) r.prompt.erase(r.prompt.begin(), r.prompt.end() - keep);
    infer::Request req;
    req.prompt = r.prompt;
    req.sampling = o.sampling;
    req.max_tokens = o.max_new_tokens;
    req.stop_tokens = {tmpl.turn_end_id()};
    req.seed = o.seed + i;
    req.on_event = [&r](const infer::TokenEvent& e) {
      if (e.token >= 0) {
        r.ids.push_back(e.token);
        r.logprobs.push_back(e.logprob);
      }
      if (e.finish != infer::FinishReason::none) r.finish = e.finish;
      if (e.finish == infer::FinishReason::error) fail("generate_replies", "the engine failed: ", e.error);
    };
    engine.submit(std::move(req));
  }
  engine.run_until_idle();
  for (Reply& r : out) r.text = valid_utf8(tmpl.decode_reply(r.ids));
  return out;
}

}  // namespace ember::chat
