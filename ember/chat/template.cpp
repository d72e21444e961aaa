// The ChatML chat template (see template.h).
#include "ember/chat/template.h"

#include "ember/core/error.h"

namespace ember::chat {

std::string role_name(Role role) {
  switch (role) {
    case Role::system: return "system";
    case Role::user: return "user";
    case Role::assistant: return "assistant";
  }
  return "?";
}

Role role_from_name(const std::string& name) {
  if (name == "system") return Role::system;
  if (name == "user") return Role::user;
  if (name == "assistant") return Role::assistant;
  fail("chat", "unknown role \"", name, "\" (expected system, user or assistant)");
}

ChatTemplate::ChatTemplate(const Tokenizer& tokenizer) : tok_(&tokenizer) {
  for (const char* name : {kTurnStart, kTurnEnd})
    if (!tokenizer.special_tokens().count(name))
      fail("chat", "the tokenizer", tokenizer.name().empty() ? "" : " \"" + tokenizer.name() + "\"",
           " has no special token ", name,
           " which the chat template needs (train one with `ember tokenizer train`, which reserves it)");
  start_ = int64_t(tokenizer.special_id(kTurnStart));
  end_ = int64_t(tokenizer.special_id(kTurnEnd));
  append_text(newline_, "\n");
}

void ChatTemplate::append_text(std::vector<int64_t>& ids, const std::string& text) const {
  for (TokenId t : tok_->encode_ordinary(text)) ids.push_back(int64_t(t));
}

RenderedChat ChatTemplate::render(const Conversation& conversation) const {
  if (conversation.empty()) fail("chat", "cannot render an empty conversation");
  RenderedChat out;
  auto push = [&](const std::vector<int64_t>& ids, uint8_t m) {
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.mask.insert(out.mask.end(), ids.size(), m);
  };
  for (size_t i = 0; i < conversation.size(); ++i) {
    const Message& msg = conversation[i];
    if (msg.role == Role::system && i != 0)
      fail("chat", "a system message may only come first (found one at message ", i, ")");
    std::vector<int64_t> header{start_};
    append_text(header, role_name(msg.role) + "\n");
    push(header, 0);
    std::vector<int64_t> content;
    append_text(content, msg.content);
    const uint8_t trained = msg.role == Role::assistant ? 1 : 0;
    push(content, trained);
    push({end_}, trained);
    push(newline_, 0);
  }
  return out;
}

std::vector<int64_t> ChatTemplate::render_prompt(const Conversation& conversation) const {
  if (!conversation.empty() && conversation.back().role == Role::assistant)
    fail("chat", "render_prompt: the conversation already ends with an assistant message");
  std::vector<int64_t> ids;
  if (!conversation.empty()) ids = render(conversation).ids;
  ids.push_back(start_);
  append_text(ids, "assistant\n");
  return ids;
}

Conversation ChatTemplate::parse(std::span<const int64_t> ids, bool allow_partial) const {
  Conversation out;
  size_t i = 0;
  auto decode = [&](size_t from, size_t to) {
    std::vector<TokenId> t;
    for (size_t k = from; k < to; ++k) {
      if (ids[k] < 0) fail("chat", "parse: negative token id ", ids[k], " at position ", k);
      t.push_back(TokenId(ids[k]));
    }
    return tok_->decode(t);
  };
  while (i < ids.size()) {
    if (ids[i] != start_) {
      // Between turns only whitespace (the newline after <|im_end|>) may appear.
      size_t j = i;
      while (j < ids.size() && ids[j] != start_) ++j;
      const std::string gap = decode(i, j);
      if (gap.find_first_not_of(" \t\r\n") != std::string::npos)
        fail("chat", "parse: text outside a turn at token ", i, ": \"", gap.substr(0, 40), "\"");
      i = j;
      continue;
    }
    size_t j = i + 1;
    while (j < ids.size() && ids[j] != end_ && ids[j] != start_) ++j;
    const bool closed = j < ids.size() && ids[j] == end_;
    const std::string body = decode(i + 1, j);
    const size_t nl = body.find('\n');
    if (nl == std::string::npos) fail("chat", "parse: the turn at token ", i, " has no role line");
    Message msg{role_from_name(body.substr(0, nl)), body.substr(nl + 1)};
    if (!closed) {
      if (!(allow_partial && j == ids.size() && msg.role == Role::assistant))
        fail("chat", "parse: the turn at token ", i, " is not closed by ", kTurnEnd);
    }
    out.push_back(std::move(msg));
    i = closed ? j + 1 : j;
  }
  return out;
}

std::vector<int64_t> ChatTemplate::render_reply_row(const Conversation& prompt, const std::string& reply) const {
  Conversation c = prompt;
  c.push_back({Role::assistant, reply});
  const RenderedChat r = render(c);
  size_t end = r.ids.size();
  while (end > 0 && !r.mask[end - 1]) --end;  // drop the newline after <|im_end|>
  return std::vector<int64_t>(r.ids.begin(), r.ids.begin() + std::ptrdiff_t(end));
}

std::string ChatTemplate::decode_reply(std::span<const int64_t> ids) const {
  std::vector<TokenId> t;
  for (int64_t id : ids) {
    if (id == end_) break;
    if (id == start_) continue;  // a confused model; not part of the reply text
    t.push_back(TokenId(id));
  }
  return tok_->decode(t);
}

}  // namespace ember::chat
