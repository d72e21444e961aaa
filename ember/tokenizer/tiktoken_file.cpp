// tiktoken rank files (base64 + rank per line) and encodings.json.
#include "ember/tokenizer/tiktoken_file.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "ember/core/error.h"

namespace ember {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// A short, printable rendering of a bad line for error messages.
std::string quote_line(std::string_view line) {
  std::string out = "'";
  for (size_t i = 0; i < line.size() && i < 60; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (line.size() > 60) out += "...";
  return out + "'";
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (size_t rest = bytes.size() - i) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (rest == 2) v |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  if (text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    for (int k = 0; k < 4; ++k) {
      const bool padded = last && k >= 4 - static_cast<int>(pad);
      v[k] = padded ? 0 : base64_value(text[i + k]);
      if (v[k] < 0) return std::nullopt;
    }
    uint32_t word = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(word >> 16);
    if (!(last && pad == 2)) out += static_cast<char>((word >> 8) & 0xFF);
    if (!(last && pad >= 1)) out += static_cast<char>(word & 0xFF);
    // Canonical form only: the bits that padding drops must be zero.
    if (last && pad == 2 && (word & 0xFFFF)) return std::nullopt;
    if (last && pad == 1 && (word & 0xFF)) return std::nullopt;
  }
  return out;
}

std::vector<std::pair<std::string, TokenId>> parse_tiktoken_ranks(std::string_view content,
                                                                  const std::string& source) {
  std::vector<std::pair<std::string, TokenId>> tokens;
  std::vector<size_t> lines;  // line of each token, for duplicate errors
  tokens.reserve(content.size() / 12);
  lines.reserve(content.size() / 12);
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    auto where = [&] { return str_cat(source, ":", line_no); };
    size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
      fail("tokenizer", where(), ": expected '<base64 token> <rank>', got ", quote_line(line));
    }
    std::string_view b64 = line.substr(0, space);
    std::string_view rank_text = line.substr(space + 1);
    std::optional<std::string> bytes = base64_decode(b64);
    if (!bytes) fail("tokenizer", where(), ": invalid base64 token ", quote_line(b64));
    uint64_t rank = 0;
    auto [ptr, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    if (ec != std::errc() || ptr != rank_text.data() + rank_text.size() || rank >= (1ull << 31)) {
      fail("tokenizer", where(), ": rank ", quote_line(rank_text), " is not an integer in [0, 2^31)");
    }
    tokens.emplace_back(std::move(*bytes), static_cast<TokenId>(rank));
    lines.push_back(line_no);
  }
  if (tokens.empty()) fail("tokenizer", source, ": no tokens in rank file");
  // Duplicates are looked for once the vector no longer moves, keyed by views
  // into it (no copies of the tokens: this runs on every load).
  std::unordered_map<std::string_view, size_t> token_index;
  std::unordered_map<TokenId, size_t> rank_index;
  token_index.reserve(tokens.size());
  rank_index.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto [t, t_new] = token_index.emplace(tokens[i].first, i);
    if (!t_new) {
      fail("tokenizer", source, ":", lines[i], ": token ", quote_line(base64_encode(tokens[i].first)),
           " repeats line ", lines[t->second]);
    }
    auto [r, r_new] = rank_index.emplace(tokens[i].second, i);
    if (!r_new) fail("tokenizer", source, ":", lines[i], ": rank ", tokens[i].second, " repeats line ", lines[r->second]);
  }
  return tokens;
}

std::string read_file_bytes(const std::string& path, const std::string& where) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(where, path, ": cannot read: ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail(where, path, ": read error");
  return std::move(buffer).str();
}

std::vector<std::pair<std::string, TokenId>> read_tiktoken_file(const std::string& path) {
  return parse_tiktoken_ranks(read_file_bytes(path), path);
}

std::string format_tiktoken_ranks(const Vocab& vocab) {
  std::string out;
  for (const auto& [bytes, rank] : vocab.entries()) {
    out += base64_encode(bytes);
    out += ' ';
    out += std::to_string(rank);
    out += '\n';
  }
  return out;
}

TiktokenEncoding read_tiktoken_encoding(const std::string& json_path, const std::string& name) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file_bytes(json_path));
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer", json_path, ": not valid JSON: ", e.what());
  }
  if (!doc.is_object() || !doc.contains(name)) {
    fail("tokenizer", json_path, ": no encoding named '", name, "'");
  }
  const auto& entry = doc[name];
  TiktokenEncoding enc;
  enc.name = name;
  try {
    enc.pattern = entry.at("pat_str").get<std::string>();
    if (entry.contains("special_tokens")) {
      for (const auto& [token, id] : entry.at("special_tokens").items()) {
        enc.special_tokens[token] = id.get<TokenId>();
      }
    }
    if (entry.contains("n_ranks")) enc.n_ranks = entry.at("n_ranks").get<size_t>();
    if (entry.contains("explicit_n_vocab")) enc.explicit_n_vocab = entry.at("explicit_n_vocab").get<size_t>();
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer", json_path, ": encoding '", name, "': ", e.what());
  }
  return enc;
}

}  // namespace ember
