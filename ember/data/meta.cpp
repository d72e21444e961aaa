// meta.json of a data folder, and the tokenizer fingerprint (see meta.h).
#include "ember/data/meta.h"

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "ember/core/error.h"
#include "ember/tokenizer/tiktoken_file.h"

namespace ember::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "ember-tokens";
constexpr int kVersion = 1;

// Two independent 64-bit FNV-1a streams (different offset bases), each
// finished with a strong mixer: 128 bits that change with any input byte.
struct Fingerprinter {
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  void bytes(std::string_view s) {
    for (unsigned char c : s) {
      a = (a ^ c) * 0x100000001b3ull;
      b = (b ^ c) * 0x100000001b3ull;
      b ^= b >> 29;
    }
  }
  void number(uint64_t v) {
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
    bytes(std::string_view(buf, 8));
  }
  void field(std::string_view s) {  // length-prefixed, so fields cannot run together
    number(s.size());
    bytes(s);
  }
  static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
  }
  std::string hex() const {
    char out[33];
    std::snprintf(out, sizeof(out), "%016llx%016llx", static_cast<unsigned long long>(mix(a)),
                  static_cast<unsigned long long>(mix(b)));
    return out;
  }
};

}  // namespace

std::string tokenizer_fingerprint(const Tokenizer& tok) {
  Fingerprinter f;
  f.field("ember-tokenizer-fingerprint-1");
  f.field(tok.pattern());
  const Vocab& v = tok.vocab();
  f.number(v.end_rank());
  for (TokenId id = 0; id < v.end_rank(); ++id) f.field(v.contains(id) ? v.bytes(id) : std::string_view());
  f.number(tok.special_tokens().size());
  for (const auto& [name, id] : tok.special_tokens()) {
    f.field(name);
    f.number(id);
  }
  return f.hex();
}

const SplitInfo& DataMeta::split(const std::string& name, const std::string& dir) const {
  auto it = splits.find(name);
  if (it == splits.end()) fail("data", (fs::path(dir) / kMetaName).string(), ": no split named '", name, "'");
  return it->second;
}

std::string format_meta(const DataMeta& meta) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["tokenizer"] = {{"name", meta.tokenizer_name},
                    {"vocab_size", meta.vocab_size},
                    {"eot_id", meta.eot_id},
                    {"fingerprint", meta.fingerprint}};
  j["dtype"] = token_dtype_name(meta.dtype);
  j["documents"] = meta.documents;
  j["val_fraction"] = meta.val_fraction;
  j["input_bytes"] = meta.input_bytes;
  j["seed"] = meta.seed;
  j["splits"] = nlohmann::ordered_json::object();
  for (const auto& [name, s] : meta.splits) {
    nlohmann::ordered_json shards = nlohmann::ordered_json::array();
    for (const ShardInfo& sh : s.shards) shards.push_back({{"file", sh.file}, {"tokens", sh.tokens}});
    j["splits"][name] = {{"documents", s.documents}, {"tokens", s.tokens}, {"shards", shards}};
  }
  return j.dump(2) + "\n";
}

DataMeta read_meta(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("data", dir, ": no such data folder");
  const std::string path = (fs::path(dir) / kMetaName).string();
  if (!fs::exists(path, ec)) {
    fail("data", path, ": missing; is ", dir, " a folder made by `ember data prepare` (and did it finish)?");
  }
  DataMeta meta;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_file_bytes(path, "data"));
    if (j.value("format", std::string()) != kFormat) fail("data", path, ": \"format\" is not \"", kFormat, "\"");
    const int version = j.at("version").get<int>();
    if (version != kVersion) fail("data", path, ": unsupported version ", version, " (expected ", kVersion, ")");
    const auto& t = j.at("tokenizer");
    meta.tokenizer_name = t.value("name", std::string());
    meta.vocab_size = t.at("vocab_size").get<uint64_t>();
    meta.eot_id = t.at("eot_id").get<uint32_t>();
    meta.fingerprint = t.at("fingerprint").get<std::string>();
    meta.dtype = token_dtype_from_name(j.at("dtype").get<std::string>());
    meta.documents = j.value("documents", std::string("file"));
    meta.val_fraction = j.value("val_fraction", 0.0);
    meta.input_bytes = j.value("input_bytes", uint64_t(0));
    meta.seed = j.value("seed", uint64_t(0));
    for (const auto& [name, s] : j.at("splits").items()) {
      SplitInfo info;
      info.documents = s.at("documents").get<uint64_t>();
      info.tokens = s.at("tokens").get<uint64_t>();
      uint64_t sum = 0;
      for (const auto& sh : s.at("shards")) {
        ShardInfo shard{sh.at("file").get<std::string>(), sh.at("tokens").get<uint64_t>()};
        if (shard.file.empty() || fs::path(shard.file).has_parent_path()) {
          fail("data", path, ": shard name '", shard.file, "' must be a file inside the folder");
        }
        sum += shard.tokens;
        info.shards.push_back(std::move(shard));
      }
      if (sum != info.tokens) fail("data", path, ": split '", name, "' says ", info.tokens, " tokens but its shards hold ", sum);
      meta.splits[name] = std::move(info);
    }
  } catch (const nlohmann::json::exception& e) {
    fail("data", path, ": ", e.what());
  }
  if (meta.vocab_size > 65536 && meta.dtype == TokenDType::u16) {
    fail("data", path, ": vocab_size ", meta.vocab_size, " does not fit dtype uint16");
  }
  return meta;
}

void check_compatible(const DataMeta& meta, const std::string& dir, uint64_t vocab_size,
                      const std::string& fingerprint) {
  const std::string path = (fs::path(dir) / kMetaName).string();
  if (vocab_size != meta.vocab_size) {
    fail("data", path, ": data was tokenized with a vocabulary of ", meta.vocab_size, " ('", meta.tokenizer_name,
         "') but the tokenizer given has ", vocab_size, "; re-run `ember data prepare` with this tokenizer");
  }
  if (!fingerprint.empty() && fingerprint != meta.fingerprint) {
    fail("data", path, ": data was tokenized with a different tokenizer (fingerprint ", meta.fingerprint,
         ", given ", fingerprint, ", same vocabulary size ", vocab_size, "); re-run `ember data prepare` with it");
  }
}

}  // namespace ember::data
