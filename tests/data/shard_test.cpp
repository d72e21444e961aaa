// Token shards: round trip in both dtypes, and a one-line error naming the
// file for every kind of damage (truncated, padded, bad magic, version,
// dtype, flags, count).
#include <gtest/gtest.h>

#include <cstring>

#include "ember/data/shard.h"
#include "data/data_test_util.h"

namespace ember::data {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(DataShard, RoundTripBothDtypes) {
  TempDir dir("shard");
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 70000; ++i) tokens.push_back((i * 2654435761u) % 65536);
  for (TokenDType dtype : {TokenDType::u16, TokenDType::u32}) {
    const std::string path = dir / (std::string("s_") + token_dtype_name(dtype) + ".bin");
    write_shard(path, tokens, dtype);
    EXPECT_EQ(fs::file_size(path), kShardHeaderBytes + tokens.size() * token_dtype_size(dtype));
    TokenShard shard(path);
    EXPECT_EQ(shard.size(), tokens.size());
    EXPECT_EQ(shard.dtype(), dtype);
    std::vector<uint32_t> back(tokens.size());
    shard.read(0, back);
    EXPECT_EQ(back, tokens);
    std::vector<int64_t> window(5);
    shard.read(65535, window);
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(window[i], tokens[65535 + i]);
    EXPECT_EQ(shard.at(123), tokens[123]);
    EXPECT_NE(error_of([&] { shard.read(tokens.size() - 2, window); }).find("past its 70000 tokens"), std::string::npos);
  }
  // Header bytes are exactly as documented (little-endian).
  const std::string bytes = read_all(dir / "s_uint32.bin");
  EXPECT_EQ(bytes.substr(0, 8), "EMBRTOK1");
  uint32_t version, dtype;
  uint64_t count, flags;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&dtype, bytes.data() + 12, 4);
  std::memcpy(&count, bytes.data() + 16, 8);
  std::memcpy(&flags, bytes.data() + 24, 8);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(dtype, 4u);
  EXPECT_EQ(count, 70000u);
  EXPECT_EQ(flags, 0u);
}

TEST(DataShard, EmptyShardAndDtypeChoice) {
  TempDir dir("shard_empty");
  write_shard(dir / "e.bin", {}, TokenDType::u16);
  EXPECT_EQ(TokenShard(dir / "e.bin").size(), 0u);
  EXPECT_EQ(token_dtype_for_vocab(65536), TokenDType::u16);
  EXPECT_EQ(token_dtype_for_vocab(65537), TokenDType::u32);
  EXPECT_EQ(token_dtype_from_name("uint32"), TokenDType::u32);
  EXPECT_THROW(token_dtype_from_name("int8"), Error);
}

TEST(DataShard, TokenTooBigForUint16) {
  TempDir dir("shard_big");
  std::vector<uint32_t> tokens = {1, 2, 70000};
  const std::string msg = error_of([&] { write_shard(dir / "x.bin", tokens, TokenDType::u16); });
  EXPECT_NE(msg.find("token 2 is 70000, which does not fit uint16"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir / "x.bin"));  // nothing half-written
  EXPECT_TRUE(fs::is_empty(dir.path));      // and no temporary left behind
}

// Writes a good shard, damages it with `edit`, and returns the reader's error.
template <typename Edit>
std::string damaged(const TempDir& dir, Edit edit) {
  const std::string path = dir / "d.bin";
  std::vector<uint32_t> tokens(100, 7);
  write_shard(path, tokens, TokenDType::u16);
  std::string bytes = read_all(path);
  edit(bytes);
  testing::write_text(path, bytes);
  std::string msg = error_of([&] { TokenShard shard(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << "error must name the file: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  return msg;
}

TEST(DataShard, DamagedShardsAreRejected) {
  TempDir dir("shard_bad");
  auto has = [](const std::string& msg, const char* what) {
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  };
  has(damaged(dir, [](std::string& b) { b.resize(b.size() - 1); }), "truncated or corrupt");
  has(damaged(dir, [](std::string& b) { b.resize(b.size() - 40); }), "header says 100 uint16 tokens (200 bytes) but the file holds 160");
  has(damaged(dir, [](std::string& b) { b += "xx"; }), "holds 202 bytes");
  has(damaged(dir, [](std::string& b) { b.resize(20); }), "shorter than the 32-byte header");
  has(damaged(dir, [](std::string& b) { b.clear(); }), "0 bytes");
  has(damaged(dir, [](std::string& b) { b[0] = 'X'; }), "bad magic");
  has(damaged(dir, [](std::string& b) { b[8] = 9; }), "unsupported shard version 9");
  has(damaged(dir, [](std::string& b) { b[12] = 3; }), "bad token dtype code 3");
  // uint32 claimed for a uint16 payload: the size no longer matches.
  has(damaged(dir, [](std::string& b) { b[12] = 4; }), "header says 100 uint32 tokens");
  has(damaged(dir, [](std::string& b) { b[16] = 101; }), "header says 101 uint16 tokens");
  has(damaged(dir, [](std::string& b) { b[23] = 1; }), "truncated or corrupt");  // an absurd count
  has(damaged(dir, [](std::string& b) { b[24] = 1; }), "unknown header flags");
  const std::string missing = error_of([&] { TokenShard shard(dir / "nope.bin"); });
  EXPECT_NE(missing.find("nope.bin"), std::string::npos) << missing;
}

}  // namespace
}  // namespace ember::data
