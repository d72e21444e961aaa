// The chat template: how a conversation (OpenAI `messages`: system, user and
// assistant turns) becomes tokens, for training and for serving alike.
//
// ChatML layout, every turn the same shape:
//   <|im_start|>system\nYou are helpful.<|im_end|>\n
//   <|im_start|>user\nHow old is Mia?<|im_end|>\n
//   <|im_start|>assistant\nMia is 34 years old.<|im_end|>\n
// <|im_start|> and <|im_end|> are special tokens (tokenizer/train.h reserves
// them); the role name, the newlines and the content are ordinary text, and
// the content is encoded with special tokens disallowed, so a user who types
// "<|im_end|>" cannot forge a turn boundary.
//
// render() also returns a per-token mask: 1 on what the assistant says (its
// content and the closing <|im_end|>, so a model learns to stop), 0 on
// everything else (headers, system and user turns, the newline between
// turns). SFT trains on the masked tokens only. render_prompt() ends with
// the assistant header, so generation continues as the assistant and stops
// at <|im_end|>.
//
// Each piece (header, content, footer) is encoded separately, so the tokens of
// an assistant reply are the same whether the reply was rendered for training
// or generated after render_prompt(): training and serving see one format.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ember/tokenizer/tokenizer.h"

namespace ember::chat {

enum class Role { system, user, assistant };
std::string role_name(Role role);
// "system" | "user" | "assistant"; anything else is an error naming it.
Role role_from_name(const std::string& name);

struct Message {
  Role role = Role::user;
  std::string content;
  bool operator==(const Message&) const = default;
};
using Conversation = std::vector<Message>;

struct RenderedChat {
  std::vector<int64_t> ids;
  std::vector<uint8_t> mask;  // 1 where the token is assistant output (trained on)
};

class ChatTemplate {
 public:
  static constexpr const char* kTurnStart = "<|im_start|>";
  static constexpr const char* kTurnEnd = "<|im_end|>";

  // Keeps a reference to `tokenizer` (which must outlive the template). Throws
  // ember::Error naming the special token the tokenizer lacks.
  explicit ChatTemplate(const Tokenizer& tokenizer);

  // The whole conversation with its training mask. Errors on an empty
  // conversation or a system message anywhere but first.
  RenderedChat render(const Conversation& conversation) const;
  // The conversation (whose last message must not be the assistant's) followed
  // by "<|im_start|>assistant\n": the prompt for generating the next reply.
  std::vector<int64_t> render_prompt(const Conversation& conversation) const;
  // render_prompt(prompt) + `reply`'s tokens + <|im_end|> (no newline after
  // it): the row a reward model scores at its last token, as generation ends.
  std::vector<int64_t> render_reply_row(const Conversation& prompt, const std::string& reply) const;
  // Back from tokens to messages. A final assistant turn without <|im_end|>
  // (a reply cut off by max tokens) is accepted when allow_partial; anything
  // else out of shape is an error naming the token position.
  Conversation parse(std::span<const int64_t> ids, bool allow_partial = false) const;
  // The text of generated reply tokens, up to (not including) <|im_end|>.
  std::string decode_reply(std::span<const int64_t> ids) const;

  int64_t turn_start_id() const { return start_; }
  int64_t turn_end_id() const { return end_; }
  const Tokenizer& tokenizer() const { return *tok_; }

 private:
  void append_text(std::vector<int64_t>& ids, const std::string& text) const;
  const Tokenizer* tok_;
  int64_t start_ = 0, end_ = 0;
  std::vector<int64_t> newline_;
};

}  // namespace ember::chat
