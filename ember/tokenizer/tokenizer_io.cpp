// Tokenizer construction from tiktoken files, and the tokenizer folder (save/load).
#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"
#include "ember/tokenizer/tiktoken_file.h"
#include "ember/tokenizer/tokenizer.h"

namespace ember {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "ember-bpe";
constexpr int kVersion = 1;
constexpr const char* kConfigName = "tokenizer.json";
constexpr const char* kRanksName = "ranks.tiktoken";

}  // namespace

Tokenizer Tokenizer::from_tiktoken(const std::string& ranks_path, std::string pattern,
                                   std::map<std::string, TokenId> special_tokens, std::string name) {
  Vocab vocab;
  try {
    vocab = Vocab(read_tiktoken_file(ranks_path));
  } catch (const Error& e) {
    // Vocab's checks do not know the file; name it (read errors already do).
    std::string message = e.what();
    const std::string prefix = "[tokenizer] ";
    if (message.rfind(prefix + ranks_path, 0) == 0) throw;
    if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
    fail("tokenizer", ranks_path, ": ", message);
  }
  return Tokenizer(std::move(vocab), std::move(pattern), std::move(special_tokens), std::move(name));
}

Tokenizer Tokenizer::from_tiktoken(const std::string& ranks_path) {
  const fs::path path(ranks_path);
  const std::string name = path.stem().string();
  const std::string json_path = (path.parent_path() / "encodings.json").string();
  std::error_code ec;
  if (!fs::is_regular_file(ranks_path, ec)) fail("tokenizer", ranks_path, ": no such rank file");
  if (!fs::exists(json_path, ec)) {
    fail("tokenizer", ranks_path, ": no ", json_path, " beside it (it gives the split pattern and special tokens)");
  }
  TiktokenEncoding enc = read_tiktoken_encoding(json_path, name);
  Tokenizer tok = from_tiktoken(ranks_path, enc.pattern, enc.special_tokens, name);
  if (enc.n_ranks && *enc.n_ranks != tok.vocab().size()) {
    fail("tokenizer", ranks_path, ": has ", tok.vocab().size(), " ranks but ", json_path, " says n_ranks ",
         *enc.n_ranks);
  }
  if (enc.explicit_n_vocab && *enc.explicit_n_vocab != tok.vocab_size()) {
    fail("tokenizer", ranks_path, ": vocabulary size ", tok.vocab_size(), " but ", json_path,
         " says explicit_n_vocab ", *enc.explicit_n_vocab);
  }
  return tok;
}

void Tokenizer::save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("tokenizer", dir, ": cannot create folder: ", ec.message());
  // Ranks first, config last: a folder with a tokenizer.json is complete.
  write_file_atomic((fs::path(dir) / kRanksName).string(), format_tiktoken_ranks(vocab_));
  nlohmann::ordered_json config;
  config["format"] = kFormat;
  config["version"] = kVersion;
  config["name"] = name_;
  config["pattern"] = pattern();
  config["ranks"] = kRanksName;
  config["special_tokens"] = nlohmann::ordered_json::object();
  for (const auto& [token, id] : special_) config["special_tokens"][token] = id;
  config["vocab_size"] = vocab_size_;
  write_file_atomic((fs::path(dir) / kConfigName).string(), config.dump(2) + "\n");
}

Tokenizer Tokenizer::load(const std::string& dir) {
  const std::string config_path = (fs::path(dir) / kConfigName).string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("tokenizer", dir, ": not a tokenizer folder (no such directory)");
  if (!fs::exists(config_path, ec)) fail("tokenizer", config_path, ": missing; is ", dir, " a tokenizer folder?");
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(read_file_bytes(config_path));
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer", config_path, ": not valid JSON: ", e.what());
  }
  std::string pattern, ranks_name, name;
  std::map<std::string, TokenId> special;
  size_t vocab_size = 0;
  try {
    if (config.value("format", std::string()) != kFormat) {
      fail("tokenizer", config_path, ": \"format\" is not \"", kFormat, "\"");
    }
    const int version = config.at("version").get<int>();
    if (version != kVersion) fail("tokenizer", config_path, ": unsupported version ", version, " (expected ", kVersion, ")");
    pattern = config.at("pattern").get<std::string>();
    ranks_name = config.at("ranks").get<std::string>();
    name = config.value("name", std::string());
    for (const auto& [token, id] : config.at("special_tokens").items()) special[token] = id.get<TokenId>();
    vocab_size = config.at("vocab_size").get<size_t>();
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer", config_path, ": ", e.what());
  }
  if (ranks_name.empty() || fs::path(ranks_name).has_parent_path()) {
    fail("tokenizer", config_path, ": \"ranks\" must name a file inside the folder, got '", ranks_name, "'");
  }
  Tokenizer tok = from_tiktoken((fs::path(dir) / ranks_name).string(), std::move(pattern), std::move(special),
                                std::move(name));
  if (tok.vocab_size() != vocab_size) {
    fail("tokenizer", config_path, ": vocab_size is ", vocab_size, " but the ranks and special tokens give ",
         tok.vocab_size());
  }
  return tok;
}

}  // namespace ember
