// libFuzzer target for the chat data readers (ember/chat/jsonl.h): ANY file
// content, read as SFT conversations, preference records and prompts, must
// either load or throw ember::Error naming the file and line, never crash or
// throw anything else. What loads must survive the writers' inverse forms:
// conversation_to_json / preference_to_json / prompt_to_json, written as
// JSONL and read back, give the same records.
// The readers take a path, so each input is written to a per-process
// temporary file first. Run by scripts/fuzz.sh with tests/fuzz/chat_jsonl.dict;
// the corpus tests/fuzz/corpus/chat_jsonl/ is replayed by CTest (fuzz_target.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ember/chat/jsonl.h"
#include "ember/core/error.h"
#include "fuzz/fuzz_target.h"

namespace {

namespace chat = ember::chat;

std::string temp_path(const char* what) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/ember_chat_jsonl_fuzz_" + std::to_string(getpid()) + what;
}

// The records written by `write_jsonl` and read back by `read` must equal `records`.
template <typename Record, typename ToJson, typename Read>
void check_round_trip(const std::vector<Record>& records, ToJson to_json, Read read, bool (*same)(const Record&, const Record&)) {
  std::vector<nlohmann::json> lines;
  for (const Record& r : records) lines.push_back(to_json(r));
  const std::string path = temp_path(".out.jsonl");
  chat::write_jsonl(path, lines);
  const std::vector<Record> back = read(path);
  std::remove(path.c_str());
  if (back.size() != records.size()) std::abort();
  for (size_t i = 0; i < records.size(); ++i)
    if (!same(records[i], back[i])) std::abort();
}

}  // namespace

EMBER_FUZZ_TARGET(chat_jsonl) {
  const std::string path = temp_path(".in.jsonl");
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  } else {
    std::abort();
  }
  try {
    const auto records = chat::read_conversations(path);
    check_round_trip<chat::Conversation>(records, chat::conversation_to_json, chat::read_conversations,
                                         [](const chat::Conversation& a, const chat::Conversation& b) { return a == b; });
  } catch (const ember::Error&) {
  }
  try {
    const auto records = chat::read_preferences(path);
    check_round_trip<chat::PreferenceRecord>(
        records, chat::preference_to_json, chat::read_preferences,
        [](const chat::PreferenceRecord& a, const chat::PreferenceRecord& b) {
          return a.prompt == b.prompt && a.responses == b.responses;
        });
  } catch (const ember::Error&) {
  }
  try {
    const auto records = chat::read_prompts(path);
    check_round_trip<chat::PromptRecord>(records, chat::prompt_to_json, chat::read_prompts,
                                         [](const chat::PromptRecord& a, const chat::PromptRecord& b) {
                                           return a.prompt == b.prompt && a.meta == b.meta;
                                         });
  } catch (const ember::Error&) {
  }
  std::remove(path.c_str());
  return 0;
}
