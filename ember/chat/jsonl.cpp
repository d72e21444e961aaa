// JSON Lines readers and writers for chat data (see jsonl.h).
#include "ember/chat/jsonl.h"

#include <fstream>
#include <functional>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"

namespace ember::chat {
namespace {

// Calls `fn(record, "path:line")` for each non-blank line; parse errors and
// errors thrown by `fn` are reported with the file and line.
void for_each_line(const std::string& path, const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
  std::ifstream in(path);
  if (!in) fail("jsonl", "cannot open ", path);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) fail("jsonl", where, ": not valid JSON: ", line.substr(0, 80));
    if (!j.is_object()) fail("jsonl", where, ": expected a JSON object, got ", j.type_name());
    try {
      fn(j, where);
    } catch (const nlohmann::json::exception& e) {
      fail("jsonl", where, ": ", e.what());
    }
  }
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) fail("jsonl", where, ": missing \"", key, "\"");
  if (!j.at(key).is_string()) fail("jsonl", where, ": \"", key, "\" must be a string, got ", j.at(key).type_name());
  return j.at(key).get<std::string>();
}

Conversation messages_from_json(const nlohmann::json& arr, const std::string& where) {
  if (!arr.is_array()) fail("jsonl", where, ": \"messages\" must be an array, got ", arr.type_name());
  if (arr.empty()) fail("jsonl", where, ": \"messages\" is empty");
  Conversation out;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string at = where + ": message " + std::to_string(i);
    if (!arr[i].is_object()) fail("jsonl", at, " must be an object");
    const std::string role = string_field(arr[i], "role", at);
    if (role != "system" && role != "user" && role != "assistant")
      fail("jsonl", at, ": unknown role \"", role, "\" (expected system, user or assistant)");
    if (role == "system" && i != 0) fail("jsonl", at, ": a system message may only come first");
    out.push_back({role_from_name(role), string_field(arr[i], "content", at)});
  }
  return out;
}

Conversation prompt_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.contains("prompt")) fail("jsonl", where, ": missing \"prompt\"");
  const auto& p = j.at("prompt");
  Conversation c;
  if (p.is_string()) {
    c.push_back({Role::user, p.get<std::string>()});
  } else if (p.is_array()) {
    c = messages_from_json(p, where);
  } else {
    fail("jsonl", where, ": \"prompt\" must be a string or a messages array, got ", p.type_name());
  }
  if (c.back().role != Role::user) fail("jsonl", where, ": the prompt must end with a user message");
  return c;
}

}  // namespace

Conversation conversation_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("messages")) fail("jsonl", where, ": missing \"messages\"");
  Conversation c = messages_from_json(j.at("messages"), where);
  bool any_assistant = false;
  for (const auto& m : c) any_assistant |= m.role == Role::assistant;
  if (!any_assistant) fail("jsonl", where, ": the conversation has no assistant message to learn from");
  return c;
}

std::vector<Conversation> read_conversations(const std::string& path) {
  std::vector<Conversation> out;
  for_each_line(path, [&](const nlohmann::json& j, const std::string& where) {
    out.push_back(conversation_from_json(j, where));
  });
  if (out.empty()) fail("jsonl", path, ": no conversations");
  return out;
}

std::vector<PreferenceRecord> read_preferences(const std::string& path) {
  std::vector<PreferenceRecord> out;
  for_each_line(path, [&](const nlohmann::json& j, const std::string& where) {
    PreferenceRecord r;
    r.prompt = prompt_from_json(j, where);
    const bool pair = j.contains("chosen") || j.contains("rejected");
    if (pair && j.contains("responses"))
      fail("jsonl", where, ": give either \"chosen\"/\"rejected\" or \"responses\", not both");
    if (pair) {
      r.responses = {string_field(j, "chosen", where), string_field(j, "rejected", where)};
    } else {
      if (!j.contains("responses")) fail("jsonl", where, ": missing \"chosen\"/\"rejected\" or \"responses\"");
      const auto& rs = j.at("responses");
      if (!rs.is_array()) fail("jsonl", where, ": \"responses\" must be an array, got ", rs.type_name());
      if (rs.size() < 2) fail("jsonl", where, ": \"responses\" needs at least 2 ranked responses, got ", rs.size());
      for (size_t i = 0; i < rs.size(); ++i) {
        if (!rs[i].is_string()) fail("jsonl", where, ": response ", i, " must be a string, got ", rs[i].type_name());
        r.responses.push_back(rs[i].get<std::string>());
      }
    }
    if (j.contains("kind")) r.kind = string_field(j, "kind", where);
    if (j.contains("labels")) {
      const auto& ls = j.at("labels");
      if (!ls.is_array() || ls.size() != r.responses.size())
        fail("jsonl", where, ": \"labels\" must be an array of ", r.responses.size(), " strings (one per response)");
      for (size_t i = 0; i < ls.size(); ++i) {
        if (!ls[i].is_string()) fail("jsonl", where, ": label ", i, " must be a string, got ", ls[i].type_name());
        r.labels.push_back(ls[i].get<std::string>());
      }
    }
    out.push_back(std::move(r));
  });
  if (out.empty()) fail("jsonl", path, ": no preference records");
  return out;
}

std::vector<PromptRecord> read_prompts(const std::string& path) {
  std::vector<PromptRecord> out;
  for_each_line(path, [&](const nlohmann::json& j, const std::string& where) {
    PromptRecord r;
    r.prompt = prompt_from_json(j, where);
    r.meta = j;
    r.meta.erase("prompt");
    out.push_back(std::move(r));
  });
  if (out.empty()) fail("jsonl", path, ": no prompts");
  return out;
}

nlohmann::json messages_to_json(const Conversation& conversation) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& m : conversation) arr.push_back({{"role", role_name(m.role)}, {"content", m.content}});
  return arr;
}

nlohmann::json conversation_to_json(const Conversation& conversation) {
  return {{"messages", messages_to_json(conversation)}};
}

namespace {
nlohmann::json prompt_value(const Conversation& prompt) {
  if (prompt.size() == 1 && prompt[0].role == Role::user) return prompt[0].content;
  return messages_to_json(prompt);
}
}  // namespace

nlohmann::json preference_to_json(const PreferenceRecord& r) {
  nlohmann::json j = {{"prompt", prompt_value(r.prompt)}};
  if (r.responses.size() == 2) {
    j["chosen"] = r.responses[0];
    j["rejected"] = r.responses[1];
  } else {
    j["responses"] = r.responses;
  }
  if (!r.kind.empty()) j["kind"] = r.kind;
  if (!r.labels.empty()) j["labels"] = r.labels;
  return j;
}

nlohmann::json prompt_to_json(const PromptRecord& r) {
  nlohmann::json j = r.meta.is_object() ? r.meta : nlohmann::json::object();
  j["prompt"] = prompt_value(r.prompt);
  return j;
}

void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& records) {
  AtomicFileWriter w(path, "jsonl");
  for (const auto& r : records) {
    w.write(r.dump());
    w.write("\n");
  }
  w.commit();
}

}  // namespace ember::chat
