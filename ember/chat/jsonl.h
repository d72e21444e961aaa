// JSON Lines data files for the chat stages: one record per line.
//
//   conversations (SFT)   {"messages": [{"role": "user", "content": "..."}, ...]}
//   preferences (RM, DPO) {"prompt": P, "chosen": "...", "rejected": "..."}
//                      or {"prompt": P, "responses": ["best", "next", ..., "worst"]}
//                      optionally with "kind" (what the prompt asks: "fact",
//                      "arith", ...) and "labels" (what each response is:
//                      "ideal", "wrong", ...; one per response, in order), which
//                      evaluations use to break accuracy down
//   prompts (RL, eval)    {"prompt": P, ...any other fields...}
// where P is either a string (one user turn) or a `messages` array ending with
// a user turn. Extra fields of a prompt record (e.g. the curriculum's grading
// key) are kept in PromptRecord::meta; extra fields elsewhere are ignored.
//
// A malformed line is an error naming the file and line ("data.jsonl:12: ...");
// nothing is ever skipped silently. Blank lines are allowed (they hold no record).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/chat/template.h"

namespace ember::chat {

struct PreferenceRecord {
  Conversation prompt;
  std::vector<std::string> responses;  // ranked, best first (chosen/rejected: two)
  std::string kind;                    // optional: the kind of question ("" when not given)
  std::vector<std::string> labels;     // optional: one per response (empty when not given)
};

struct PromptRecord {
  Conversation prompt;
  nlohmann::json meta = nlohmann::json::object();  // every field but "prompt"
};

std::vector<Conversation> read_conversations(const std::string& path);
std::vector<PreferenceRecord> read_preferences(const std::string& path);
std::vector<PromptRecord> read_prompts(const std::string& path);

// The inverse forms (what the readers accept).
nlohmann::json conversation_to_json(const Conversation& conversation);  // {"messages": [...]}
nlohmann::json messages_to_json(const Conversation& conversation);      // [...]
nlohmann::json preference_to_json(const PreferenceRecord& record);      // "responses" form (K > 2) or chosen/rejected
nlohmann::json prompt_to_json(const PromptRecord& record);

// Parses one record; `where` (e.g. "file:12") prefixes error messages.
Conversation conversation_from_json(const nlohmann::json& j, const std::string& where);

// Writes one compact JSON object per line, atomically (temporary file + rename).
void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& records);

}  // namespace ember::chat
