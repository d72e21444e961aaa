// Token shards: flat binary files of token ids with a small header.
//
// Layout (all integers little-endian; ember refuses to build on big-endian hosts):
//
//   offset  size  field
//   0       8     magic "EMBRTOK1"
//   8       4     uint32 version (1)
//   12      4     uint32 token dtype: 2 = uint16, 4 = uint32 (the byte width of one token)
//   16      8     uint64 token count
//   24      8     uint64 flags, reserved: 0 in version 1 (a reader rejects unknown flags)
//   32      ...   count tokens of the dtype's width
//
// The file size must be exactly 32 + count * width: a truncated or padded
// shard is rejected rather than silently read short. uint16 is used when the
// vocabulary fits (vocab_size <= 65536), halving disk and page-cache use.
//
// Writers go through AtomicFileWriter (temporary name, fsync, rename), so a
// shard on disk is always complete; readers memory-map the file (MappedFile)
// and copy windows out of it on demand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ember/io/mapped_file.h"

namespace ember::data {

inline constexpr char kShardMagic[8] = {'E', 'M', 'B', 'R', 'T', 'O', 'K', '1'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 32;

enum class TokenDType : uint32_t { u16 = 2, u32 = 4 };

// uint16 when every id < vocab_size fits, else uint32.
TokenDType token_dtype_for_vocab(size_t vocab_size);
const char* token_dtype_name(TokenDType dtype);        // "uint16" / "uint32"
TokenDType token_dtype_from_name(const std::string& name);  // throws on anything else
inline size_t token_dtype_size(TokenDType dtype) { return static_cast<size_t>(dtype); }

// Writes `tokens` as one shard at `path`, atomically. Throws ember::Error when
// a token does not fit the dtype (naming the file, the index and the value).
void write_shard(const std::string& path, std::span<const uint32_t> tokens, TokenDType dtype);

// A validated, memory-mapped shard. Construction checks magic, version,
// dtype, flags and that the size matches the header's count; every failure is
// one ember::Error line naming the file and what is wrong.
class TokenShard {
 public:
  TokenShard() = default;
  explicit TokenShard(const std::string& path);

  const std::string& path() const { return file_.path(); }
  size_t size() const { return count_; }
  TokenDType dtype() const { return dtype_; }
  uint32_t at(size_t i) const;  // no bounds check beyond a debug assertion

  // Copies tokens [start, start + out.size()) into `out` (bounds checked).
  void read(size_t start, std::span<int64_t> out) const;
  void read(size_t start, std::span<uint32_t> out) const;

 private:
  MappedFile file_;
  const uint8_t* tokens_ = nullptr;
  size_t count_ = 0;
  TokenDType dtype_ = TokenDType::u16;
};

}  // namespace ember::data
