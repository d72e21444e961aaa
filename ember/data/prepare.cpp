// `ember data prepare`: documents -> parallel encode -> shards + meta.json (see prepare.h).
#include "ember/data/prepare.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"
#include "ember/tokenizer/tiktoken_file.h"

namespace ember::data {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kEot = "<|endoftext|>";

std::string_view trim_newlines(std::string_view s) {
  while (!s.empty() && (s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// A number in [0, 1) from a document's bytes and the seed.
double document_key(std::string_view doc, uint64_t seed) {
  uint64_t h = hash_bytes(doc.data(), doc.size()) ^ (seed * 0x9E3779B97F4A7C15ull);
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Removes the partial folder unless released (on any error before the rename).
struct PartialDir {
  fs::path path;
  bool keep = false;
  ~PartialDir() {
    if (!keep) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

// One split's token stream, cut into shards as it grows.
struct SplitWriter {
  std::string name;
  fs::path dir;
  TokenDType dtype;
  uint64_t shard_tokens;
  std::vector<uint32_t> buffer;
  SplitInfo info;

  void append(uint32_t eot, const std::vector<TokenId>& ids) {
    ++info.documents;
    buffer.push_back(eot);
    buffer.insert(buffer.end(), ids.begin(), ids.end());
    while (buffer.size() >= shard_tokens) {
      flush(shard_tokens);
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(shard_tokens));
    }
  }
  void finish() {
    if (!buffer.empty()) flush(buffer.size());
    buffer.clear();
  }
  void flush(size_t n) {
    char file[64];
    std::snprintf(file, sizeof(file), "%s_%05zu.bin", name.c_str(), info.shards.size());
    write_shard((dir / file).string(), std::span<const uint32_t>(buffer.data(), n), dtype);
    info.shards.push_back({file, n});
    info.tokens += n;
  }
};

}  // namespace

std::vector<std::string_view> split_documents(std::string_view text, bool paragraphs) {
  std::vector<std::string_view> docs;
  auto add = [&](std::string_view d) {
    d = trim_newlines(d);
    if (!d.empty() && !blank(d)) docs.push_back(d);
  };
  auto add_paragraphs = [&](std::string_view part) {
    if (!paragraphs) return add(part);
    // A paragraph ends at a line that is empty or only spaces/tabs.
    size_t start = 0, line = 0;
    bool in_gap = false;
    while (line < part.size()) {
      size_t end = part.find('\n', line);
      if (end == std::string_view::npos) end = part.size();
      const bool empty_line = blank(part.substr(line, end - line));
      if (empty_line && !in_gap) {
        add(part.substr(start, line - start));
        in_gap = true;
      } else if (!empty_line && in_gap) {
        start = line;
        in_gap = false;
      }
      line = end + 1;
    }
    if (!in_gap) add(part.substr(start));
  };
  size_t pos = 0;
  while (true) {
    const size_t at = text.find(kEot, pos);
    if (at == std::string_view::npos) break;
    add_paragraphs(text.substr(pos, at - pos));
    pos = at + kEot.size();
  }
  add_paragraphs(text.substr(pos));
  return docs;
}

DataMeta prepare_data(const Tokenizer& tok, const PrepareOptions& o) {
  // Check everything before creating anything.
  EMBER_CHECK(!o.inputs.empty(), "data", "prepare: no input files");
  EMBER_CHECK(!o.out.empty(), "data", "prepare: no output folder");
  EMBER_CHECK(o.val_fraction >= 0 && o.val_fraction < 1, "data", "prepare: --val-fraction ", o.val_fraction,
              " is not in [0, 1)");
  EMBER_CHECK(o.shard_tokens >= 1, "data", "prepare: --shard-tokens must be at least 1");
  const auto& specials = tok.special_tokens();
  auto eot_it = specials.find(std::string(kEot));
  if (eot_it == specials.end()) {
    fail("data", "prepare: tokenizer '", tok.name(), "' has no ", kEot, " special token (needed between documents)");
  }
  const uint32_t eot = eot_it->second;
  const fs::path out(o.out);
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) fail("data", o.out, ": exists and is not a folder");
    if (!fs::is_empty(out, ec) && !o.overwrite) {
      fail("data", o.out, ": folder exists and is not empty; remove it or pass --overwrite");
    }
  }

  std::vector<std::string> texts;
  uint64_t input_bytes = 0;
  for (const std::string& path : o.inputs) {
    if (!fs::is_regular_file(path, ec)) fail("data", path, ": no such input file");
    texts.push_back(read_file_bytes(path, "data"));
    input_bytes += texts.back().size();
  }
  std::vector<std::string_view> docs;
  for (const std::string& t : texts) {
    for (std::string_view d : split_documents(t, o.paragraphs)) docs.push_back(d);
  }
  if (docs.empty()) fail("data", "prepare: the input files hold no text (", input_bytes, " bytes, no documents)");

  // The split, by document hash (see prepare.h).
  std::vector<uint8_t> is_val(docs.size(), 0);
  if (o.val_fraction > 0) {
    if (docs.size() < 2) {
      fail("data", "prepare: only one document, which cannot be split into train and val; pass --paragraphs, "
                   "more files, or --val-fraction 0");
    }
    std::vector<double> key(docs.size());
    for (size_t i = 0; i < docs.size(); ++i) key[i] = document_key(docs[i], o.seed);
    size_t n_val = 0;
    for (size_t i = 0; i < docs.size(); ++i) n_val += is_val[i] = key[i] < o.val_fraction;
    // Ties in key go to the earlier document, so the choice is still deterministic.
    if (n_val == 0) is_val[std::min_element(key.begin(), key.end()) - key.begin()] = 1;
    if (n_val == docs.size()) is_val[std::max_element(key.begin(), key.end()) - key.begin()] = 0;
  }

  const fs::path partial = out.string() + ".partial-" + std::to_string(::getpid());
  fs::remove_all(partial, ec);
  fs::create_directories(partial, ec);
  if (ec) fail("data", partial.string(), ": cannot create folder: ", ec.message());
  PartialDir guard{partial};

  const TokenDType dtype = token_dtype_for_vocab(tok.vocab_size());
  SplitWriter train{"train", partial, dtype, o.shard_tokens, {}, {}};
  SplitWriter val{"val", partial, dtype, o.shard_tokens, {}, {}};
  uint64_t done_bytes = 0, total_doc_bytes = 0;
  for (std::string_view d : docs) total_doc_bytes += d.size();
  std::vector<std::string> batch;
  if (o.on_progress) o.on_progress(0, total_doc_bytes);
  for (size_t start = 0; start < docs.size();) {
    size_t end = start, bytes = 0;
    batch.clear();
    while (end < docs.size() && (end == start || bytes + docs[end].size() <= o.batch_bytes)) {
      batch.emplace_back(docs[end]);
      bytes += docs[end].size();
      ++end;
    }
    const auto ids = tok.encode_batch(batch);
    for (size_t i = start; i < end; ++i) (is_val[i] ? val : train).append(eot, ids[i - start]);
    done_bytes += bytes;
    if (o.on_progress) o.on_progress(done_bytes, total_doc_bytes);
    start = end;
  }
  train.finish();
  val.finish();

  DataMeta meta;
  meta.tokenizer_name = tok.name();
  meta.vocab_size = tok.vocab_size();
  meta.eot_id = eot;
  meta.fingerprint = tokenizer_fingerprint(tok);
  meta.dtype = dtype;
  meta.documents = o.paragraphs ? "paragraphs" : "file";
  meta.val_fraction = o.val_fraction;
  meta.input_bytes = input_bytes;
  meta.seed = o.seed;
  meta.splits["train"] = train.info;
  meta.splits["val"] = val.info;
  write_file_atomic((partial / kMetaName).string(), format_meta(meta));

  // Publish: the partial folder becomes <out>; an old <out> is moved aside
  // first and removed only after the new one is in place.
  fs::path old;
  if (fs::exists(out, ec)) {
    old = out.string() + ".old-" + std::to_string(::getpid());
    fs::remove_all(old, ec);
    fs::rename(out, old, ec);
    if (ec) fail("data", o.out, ": cannot move the old folder aside: ", ec.message());
  }
  fs::rename(partial, out, ec);
  if (ec) {
    std::error_code ignore;
    if (!old.empty()) fs::rename(old, out, ignore);
    fail("data", o.out, ": cannot rename ", partial.string(), " into place: ", ec.message());
  }
  guard.keep = true;
  fsync_dir(out.has_parent_path() ? out.parent_path() : fs::path("."));
  if (!old.empty()) fs::remove_all(old, ec);
  return meta;
}

}  // namespace ember::data
