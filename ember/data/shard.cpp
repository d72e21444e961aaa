// Token shard writer and validating memory-mapped reader (format in shard.h).
#include "ember/data/shard.h"

#include <bit>
#include <cassert>
#include <cstring>
#include <vector>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"

namespace ember::data {

static_assert(std::endian::native == std::endian::little, "token shards are read and written little-endian in place");

namespace {

template <typename T>
void put(uint8_t* at, T value) {
  std::memcpy(at, &value, sizeof(T));
}
template <typename T>
T get(const uint8_t* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

}  // namespace

TokenDType token_dtype_for_vocab(size_t vocab_size) {
  return vocab_size <= 65536 ? TokenDType::u16 : TokenDType::u32;
}

const char* token_dtype_name(TokenDType dtype) { return dtype == TokenDType::u16 ? "uint16" : "uint32"; }

TokenDType token_dtype_from_name(const std::string& name) {
  if (name == "uint16") return TokenDType::u16;
  if (name == "uint32") return TokenDType::u32;
  fail("data", "unknown token dtype '", name, "' (expected uint16 or uint32)");
}

void write_shard(const std::string& path, std::span<const uint32_t> tokens, TokenDType dtype) {
  uint8_t header[kShardHeaderBytes] = {};
  std::memcpy(header, kShardMagic, 8);
  put<uint32_t>(header + 8, kShardVersion);
  put<uint32_t>(header + 12, static_cast<uint32_t>(dtype));
  put<uint64_t>(header + 16, tokens.size());
  put<uint64_t>(header + 24, 0);
  AtomicFileWriter out(path, "data");
  out.write(header, sizeof(header));
  if (dtype == TokenDType::u32) {
    out.write(tokens.data(), tokens.size() * sizeof(uint32_t));
  } else {
    // Narrow in blocks so a big shard never needs a second full copy.
    std::vector<uint16_t> block;
    constexpr size_t kBlock = 1 << 16;
    for (size_t start = 0; start < tokens.size(); start += kBlock) {
      const size_t n = std::min(kBlock, tokens.size() - start);
      block.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const uint32_t t = tokens[start + i];
        if (t > 0xFFFF) fail("data", path, ": token ", start + i, " is ", t, ", which does not fit uint16");
        block[i] = static_cast<uint16_t>(t);
      }
      out.write(block.data(), n * sizeof(uint16_t));
    }
  }
  out.commit();
}

TokenShard::TokenShard(const std::string& path) : file_(path) {
  const size_t size = file_.size();
  if (size < kShardHeaderBytes) {
    fail("data", path, ": not a token shard (", size, " bytes, shorter than the ", kShardHeaderBytes, "-byte header)");
  }
  const uint8_t* h = file_.data();
  if (std::memcmp(h, kShardMagic, 8) != 0) fail("data", path, ": not a token shard (bad magic; expected EMBRTOK1)");
  const uint32_t version = get<uint32_t>(h + 8);
  if (version != kShardVersion) {
    fail("data", path, ": unsupported shard version ", version, " (this build reads version ", kShardVersion, ")");
  }
  const uint32_t dtype = get<uint32_t>(h + 12);
  if (dtype != 2 && dtype != 4) fail("data", path, ": bad token dtype code ", dtype, " (expected 2 = uint16 or 4 = uint32)");
  dtype_ = static_cast<TokenDType>(dtype);
  const uint64_t flags = get<uint64_t>(h + 24);
  if (flags != 0) fail("data", path, ": unknown header flags 0x", std::hex, flags, " (version 1 has none)");
  const uint64_t count = get<uint64_t>(h + 16);
  const uint64_t payload = size - kShardHeaderBytes;
  if (count > payload / dtype || payload != count * dtype) {
    fail("data", path, ": header says ", count, " ", token_dtype_name(dtype_), " tokens (", count * dtype,
         " bytes) but the file holds ", payload, " bytes after the header (truncated or corrupt)");
  }
  count_ = count;
  tokens_ = h + kShardHeaderBytes;
}

uint32_t TokenShard::at(size_t i) const {
  assert(i < count_);
  return dtype_ == TokenDType::u16 ? get<uint16_t>(tokens_ + 2 * i) : get<uint32_t>(tokens_ + 4 * i);
}

namespace {

template <typename Out>
void read_into(const TokenShard& s, const uint8_t* tokens, size_t start, std::span<Out> out) {
  if (start > s.size() || out.size() > s.size() - start) {
    fail("data", s.path(), ": read of tokens [", start, ", ", start + out.size(), ") past its ", s.size(), " tokens");
  }
  if (s.dtype() == TokenDType::u16) {
    const uint8_t* p = tokens + 2 * start;
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<Out>(get<uint16_t>(p + 2 * i));
  } else {
    const uint8_t* p = tokens + 4 * start;
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<Out>(get<uint32_t>(p + 4 * i));
  }
}

}  // namespace

void TokenShard::read(size_t start, std::span<int64_t> out) const { read_into(*this, tokens_, start, out); }
void TokenShard::read(size_t start, std::span<uint32_t> out) const { read_into(*this, tokens_, start, out); }

}  // namespace ember::data
