// Tests for the safetensors format layer: writer -> mmap -> parser round
// trips, byte compatibility with the reference writer, one test per kind of
// header damage, and crash-safety of the atomic writer.
#include "ember/io/safetensors_format.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"
#include "ember/io/mapped_file.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

// GoogleTest without gmock (the test binary links only gtest):
// EXPECT_CONTAINS(text, Substr("part")) checks that `part` occurs in `text`.
struct Substr {
  explicit Substr(std::string s) : part(std::move(s)) {}
  std::string part;
};

::testing::AssertionResult contains_format(const char* text_expr, const char*,
                                           const std::string& text, const Substr& want) {
  if (text.find(want.part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text_expr << " is\n  " << text
                                       << "\nwhich does not contain\n  " << want.part;
}

#define EXPECT_CONTAINS(text, want) EXPECT_PRED_FORMAT2(contains_format, text, want)

constexpr const char* kWhat = "model.safetensors";

// A file image: little-endian length (or `length` if given), header text,
// then `buffer_bytes` zero bytes of tensor data.
std::vector<uint8_t> image(const std::string& header, size_t buffer_bytes,
                           uint64_t length = UINT64_MAX) {
  uint64_t n = length == UINT64_MAX ? header.size() : length;
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + buffer_bytes, 0);
  return out;
}

// The Error message from parsing `bytes`, or "<parsed>" if it parsed. The
// bytes live in an exact-size heap block so that ASan flags any overread.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size()]);
  if (!bytes.empty()) std::memcpy(exact.get(), bytes.data(), bytes.size());
  try {
    parse_safetensors_header(exact.get(), bytes.size(), kWhat);
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("[safetensors] model.safetensors: ", 0), 0u) << msg;
    return msg;
  }
  return "<parsed>";
}

std::string tensor(const std::string& dtype, const std::string& shape, uint64_t b, uint64_t e) {
  std::ostringstream s;
  s << R"({"dtype":")" << dtype << R"(","shape":)" << shape << R"(,"data_offsets":[)" << b << ","
    << e << "]}";
  return s.str();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SafetensorsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ember_safetensors_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

// ---------------------------------------------------------------- round trips

TEST_F(SafetensorsFileTest, RoundTripWriteMmapParse) {
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  std::vector<int64_t> ids = {-1, 7, 1LL << 40, 3};
  std::vector<uint16_t> bf = {0x3f80, 0x4000, 0xbf80};
  std::vector<uint8_t> bytes = {1, 2, 3, 4, 5};
  std::vector<uint8_t> mask = {1, 0};
  std::vector<SafetensorsWriteItem> items = {
      {"mask", "BOOL", {2}, mask.data(), mask.size()},
      {"w", "F32", {2, 3}, w.data(), w.size() * 4},
      {"bytes", "U8", {5}, bytes.data(), bytes.size()},
      {"ids", "I64", {4}, ids.data(), ids.size() * 8},
      {"h", "BF16", {3}, bf.data(), bf.size() * 2},
  };
  write_safetensors(path("m.safetensors"), items, {});
  EXPECT_EQ(listing(), std::vector<std::string>{"m.safetensors"});

  MappedFile file(path("m.safetensors"));
  SafetensorsHeader h = parse_safetensors_header(file.data(), file.size(), file.path());
  EXPECT_EQ(h.data_start % 8, 0u);
  EXPECT_TRUE(h.metadata.empty());
  ASSERT_EQ(h.entries.size(), items.size());
  // File order: descending alignment, then name.
  std::vector<std::string> order;
  for (const auto& e : h.entries) order.push_back(e.name);
  EXPECT_EQ(order, (std::vector<std::string>{"ids", "w", "h", "bytes", "mask"}));
  for (const auto& e : h.entries) {
    const SafetensorsWriteItem* item = nullptr;
    for (const auto& it : items) {
      if (it.name == e.name) item = &it;
    }
    ASSERT_NE(item, nullptr) << e.name;
    EXPECT_EQ(e.dtype, item->dtype);
    EXPECT_EQ(e.shape, item->shape);
    ASSERT_EQ(e.end - e.begin, item->nbytes);
    EXPECT_EQ((h.data_start + e.begin) % safetensors_dtype_size(e.dtype), 0u) << e.name;
    EXPECT_EQ(std::memcmp(file.data() + h.data_start + e.begin, item->data, item->nbytes), 0)
        << e.name;
  }
  EXPECT_EQ(h.data_start + h.entries.back().end, file.size());
}

TEST_F(SafetensorsFileTest, MetadataRoundTrips) {
  float x = 1.5f;
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"note", "quotes \" and \\ and \xc3\xbcnicode"}, {"empty", ""}};
  write_safetensors(path("m.safetensors"), {{"x", "F32", {}, &x, 4}}, meta);
  MappedFile file(path("m.safetensors"));
  SafetensorsHeader h = parse_safetensors_header(file.data(), file.size(), file.path());
  EXPECT_EQ(h.metadata, meta);
  ASSERT_EQ(h.entries.size(), 1u);
  EXPECT_TRUE(h.entries[0].shape.empty());
}

TEST_F(SafetensorsFileTest, EmptyTensorsAndScalars) {
  double scalar = 3.25;
  int8_t one = -5;
  std::vector<SafetensorsWriteItem> items = {
      {"empty_rows", "F32", {0, 3}, nullptr, 0},
      {"scalar", "F64", {}, &scalar, 8},
      {"empty_cols", "I8", {2, 0}, nullptr, 0},
      {"one", "I8", {1, 1}, &one, 1},
  };
  write_safetensors(path("e.safetensors"), items);
  MappedFile file(path("e.safetensors"));
  SafetensorsHeader h = parse_safetensors_header(file.data(), file.size(), file.path());
  ASSERT_EQ(h.entries.size(), 4u);
  for (const auto& e : h.entries) {
    if (e.name == "scalar") {
      EXPECT_TRUE(e.shape.empty());
      double got;
      std::memcpy(&got, file.data() + h.data_start + e.begin, 8);
      EXPECT_EQ(got, 3.25);
    } else if (e.name == "empty_rows") {
      EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 3}));
      EXPECT_EQ(e.begin, e.end);
    } else if (e.name == "empty_cols") {
      EXPECT_EQ(e.begin, e.end);
    }
  }
}

TEST_F(SafetensorsFileTest, NoTensorsAtAll) {
  write_safetensors(path("none.safetensors"), {});
  EXPECT_EQ(read_file(path("none.safetensors")), std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  MappedFile file(path("none.safetensors"));
  SafetensorsHeader h = parse_safetensors_header(file.data(), file.size(), file.path());
  EXPECT_TRUE(h.entries.empty());
  EXPECT_EQ(h.data_start, 16u);
}

// The reference implementation's own serialization tests, reproduced byte for byte.
TEST_F(SafetensorsFileTest, MatchesReferenceWriterBytes) {
  std::vector<float> data = {0, 1, 2, 3, 4, 5};
  std::string raw(reinterpret_cast<const char*>(data.data()), 24);

  write_safetensors(path("a.safetensors"), {{"attn.0", "F32", {1, 2, 3}, data.data(), 24}});
  std::string h1 = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(h1.size(), 64u);
  EXPECT_EQ(read_file(path("a.safetensors")), std::string("\x40\0\0\0\0\0\0\0", 8) + h1 + raw);

  write_safetensors(path("b.safetensors"), {{"attn0", "F32", {1, 1, 2, 3}, data.data(), 24}});
  std::string h2 = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
  EXPECT_EQ(read_file(path("b.safetensors")),
            std::string("\x48\0\0\0\0\0\0\0", 8) + h2 + "       " + raw);

  write_safetensors(path("c.safetensors"), {}, {{"framework", "pt"}});
  EXPECT_EQ(read_file(path("c.safetensors")),
            std::string("\x28\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"framework":"pt"}})" +
                "     ");
}

// ---------------------------------------------------------------- damage

TEST(SafetensorsParse, TruncatedHeaderLength) {
  EXPECT_CONTAINS(parse_error({1, 0, 0, 0, 0}), Substr("5 bytes, too short for the 8-byte header"));
  EXPECT_CONTAINS(parse_error({}), Substr("0 bytes, too short"));
}

TEST(SafetensorsParse, NullDataIsAnErrorNotACrash) {
  EXPECT_THROW(parse_safetensors_header(nullptr, 64, kWhat), Error);
}

TEST(SafetensorsParse, HeaderLengthBeyondFile) {
  EXPECT_CONTAINS(parse_error(image("{}", 0, 1000)),
              Substr("header length 1000 runs past the end of the file (only 2 bytes"));
}

TEST(SafetensorsParse, HeaderLengthAbsurd) {
  EXPECT_CONTAINS(parse_error(image("{}", 0, 1ULL << 40)),
              Substr("header length 1099511627776 exceeds the limit of 100000000 bytes"));
  EXPECT_CONTAINS(parse_error(image("{}", 0, UINT64_MAX - 1)), Substr("exceeds the limit"));
}

TEST(SafetensorsParse, HeaderMustBeAnObject) {
  EXPECT_CONTAINS(parse_error(image("[1,2]", 0)), Substr("starting with '{'"));
  EXPECT_CONTAINS(parse_error(image("", 0)), Substr("header length is 0"));
  EXPECT_CONTAINS(parse_error(image(R"({"w":5})", 0)),
              Substr("tensor 'w': expected an object with dtype, shape and data_offsets, got 5"));
}

TEST(SafetensorsParse, BadJson) {
  EXPECT_CONTAINS(parse_error(image(R"({"w": {"dtype": )", 0)), Substr("header is not valid JSON"));
  EXPECT_CONTAINS(parse_error(image("{} trailing", 0)), Substr("header is not valid JSON"));
  // The raw byte is escaped so that the message itself stays valid UTF-8.
  EXPECT_CONTAINS(parse_error(image("{\"\xff\":1}", 0)), Substr("last read: '\"\\xff'"));
}

TEST(SafetensorsParse, MissingDtype) {
  EXPECT_CONTAINS(parse_error(image(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4)),
              Substr("tensor 'w': \"dtype\" is missing"));
  EXPECT_CONTAINS(parse_error(image(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4)),
              Substr("tensor 'w': \"shape\" is missing"));
  EXPECT_CONTAINS(parse_error(image(R"({"w":{"dtype":"F32","shape":[1]}})", 4)),
              Substr("tensor 'w': \"data_offsets\" is missing"));
}

TEST(SafetensorsParse, WrongDtype) {
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F12", "[1]", 0, 4) + "}", 4)),
              Substr("tensor 'w': unknown dtype 'F12'"));
  EXPECT_CONTAINS(parse_error(image(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4)),
              Substr("tensor 'w': \"dtype\" must be a string, got 4"));
}

TEST(SafetensorsParse, WrongShapeType) {
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F32", "\"2x2\"", 0, 16) + "}", 16)),
              Substr("tensor 'w': \"shape\" must be an array of non-negative integers, got \"2x2\""));
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F32", "[2,-1]", 0, 16) + "}", 16)),
              Substr("tensor 'w': \"shape\"[1] must be a non-negative integer below 2^63, got -1"));
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F32", "[2.5]", 0, 16) + "}", 16)),
              Substr("\"shape\"[0] must be a non-negative integer"));
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F32", "[9223372036854775808]", 0, 0) + "}", 0)),
              Substr("below 2^63, got 9223372036854775808"));
}

TEST(SafetensorsParse, ShapeProductOverflow) {
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F32", "[4294967296,4294967296]", 0, 0) + "}", 0)),
              Substr("tensor 'w': shape [4294967296, 4294967296] of dtype F32 needs more bytes "
                        "than fit in 64 bits"));
  // A zero dimension makes the tensor empty however large the others are.
  EXPECT_EQ(parse_error(image(
                "{\"w\":" + tensor("F32", "[9223372036854775807,9223372036854775807,0]", 0, 0) + "}",
                0)),
            "<parsed>");
}

TEST(SafetensorsParse, WrongOffsetsType) {
  EXPECT_CONTAINS(parse_error(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4)),
              Substr("tensor 'w': \"data_offsets\" must be [begin, end], got [0]"));
  EXPECT_CONTAINS(parse_error(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":["0",4]}})", 4)),
              Substr("tensor 'w': \"data_offsets\"[0] must be a non-negative integer, got \"0\""));
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F32", "[1]", 8, 4) + "}", 8)),
              Substr("tensor 'w': data_offsets [8, 4] end before they begin"));
}

TEST(SafetensorsParse, OffsetsOverlapping) {
  std::string h = "{\"a\":" + tensor("F32", "[4]", 0, 16) + ",\"b\":" + tensor("F32", "[4]", 8, 24) + "}";
  EXPECT_CONTAINS(parse_error(image(h, 24)),
              Substr("tensors 'a' at [0, 16] and 'b' at [8, 24] overlap"));
}

TEST(SafetensorsParse, OffsetsWithGap) {
  std::string h = "{\"a\":" + tensor("F32", "[4]", 0, 16) + ",\"b\":" + tensor("F32", "[4]", 24, 40) + "}";
  EXPECT_CONTAINS(parse_error(image(h, 40)),
              Substr("gap of 8 bytes between tensor 'a' (ends at 16) and tensor 'b' (begins at 24)"));
  EXPECT_CONTAINS(parse_error(image("{\"a\":" + tensor("F32", "[4]", 8, 24) + "}", 24)),
              Substr("gap of 8 bytes before the first tensor 'a'"));
  EXPECT_CONTAINS(parse_error(image("{\"a\":" + tensor("F32", "[4]", 0, 16) + "}", 24)),
              Substr("8 trailing bytes belong to no tensor"));
  EXPECT_CONTAINS(parse_error(image("{}", 3)), Substr("3 trailing bytes"));
}

TEST(SafetensorsParse, OffsetsPastEnd) {
  EXPECT_CONTAINS(parse_error(image("{\"a\":" + tensor("F32", "[4]", 0, 16) + "}", 8)),
              Substr("tensor 'a': data_offsets [0, 16] run past the end of the data buffer (8 bytes)"));
  EXPECT_CONTAINS(parse_error(image("{\"a\":" + tensor("U8", "[0]", 18446744073709551615ULL,
                                                    18446744073709551615ULL) + "}", 0)),
              Substr("run past the end"));
}

TEST(SafetensorsParse, SizeMismatch) {
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + tensor("F32", "[2,2]", 0, 12) + "}", 12)),
              Substr("tensor 'w': data_offsets [0, 12] span 12 bytes but dtype F32 with shape "
                        "[2, 2] needs 16"));
}

TEST(SafetensorsParse, DuplicateName) {
  std::string t = tensor("F32", "[1]", 0, 4);
  EXPECT_CONTAINS(parse_error(image("{\"w\":" + t + ",\"w\":" + t + "}", 4)),
              Substr("duplicate tensor name 'w'"));
  EXPECT_CONTAINS(
      parse_error(image(R"({"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4)),
      Substr("duplicate key 'dtype' inside 'w'"));
  EXPECT_CONTAINS(parse_error(image(R"({"__metadata__":{"k":"a","k":"b"}})", 0)),
              Substr("duplicate key 'k' inside '__metadata__'"));
}

TEST(SafetensorsParse, MetadataNotStrings) {
  EXPECT_CONTAINS(parse_error(image(R"({"__metadata__":{"format":"pt","epoch":3}})", 0)),
              Substr("\"__metadata__\" value for key 'epoch' must be a string, got 3"));
  EXPECT_CONTAINS(parse_error(image(R"({"__metadata__":["pt"]})", 0)),
              Substr("\"__metadata__\" must be an object of string to string"));
}

TEST(SafetensorsParse, DeepNestingRejectedEarly) {
  std::string deep = "{\"w\":{\"shape\":" + std::string(10000, '[') + std::string(10000, ']') + "}}";
  EXPECT_CONTAINS(parse_error(image(deep, 0)), Substr("nests deeper than a valid header can (inside 'w')"));
}

TEST(SafetensorsParse, LongNamesAreClippedInMessages) {
  std::string name(1 << 20, 'n');
  std::string msg = parse_error(image("{\"" + name + "\":" + tensor("X", "[1]", 0, 1) + "}", 1));
  EXPECT_CONTAINS(msg, Substr("unknown dtype 'X'"));
  EXPECT_LT(msg.size(), 1000u);
}

TEST(SafetensorsParse, AcceptsPaddingAndAnyKeyOrder) {
  std::string h = R"({"b":{"data_offsets":[4,6],"shape":[],"dtype":"F16"},"a":)" +
                  tensor("F32", "[1]", 0, 4) + ",\"__metadata__\":{}}" + std::string(13, ' ');
  auto bytes = image(h, 6);
  SafetensorsHeader hd = parse_safetensors_header(bytes.data(), bytes.size(), kWhat);
  ASSERT_EQ(hd.entries.size(), 2u);
  EXPECT_EQ(hd.entries[0].name, "a");
  EXPECT_EQ(hd.entries[1].name, "b");
  EXPECT_EQ(hd.data_start, 8 + h.size());
}

TEST(SafetensorsParse, DtypeSizes) {
  EXPECT_EQ(safetensors_dtype_size("F32"), 4u);
  EXPECT_EQ(safetensors_dtype_size("F64"), 8u);
  EXPECT_EQ(safetensors_dtype_size("BF16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("F16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("I64"), 8u);
  EXPECT_EQ(safetensors_dtype_size("I32"), 4u);
  EXPECT_EQ(safetensors_dtype_size("I16"), 2u);
  EXPECT_EQ(safetensors_dtype_size("I8"), 1u);
  EXPECT_EQ(safetensors_dtype_size("U8"), 1u);
  EXPECT_EQ(safetensors_dtype_size("BOOL"), 1u);
  EXPECT_TRUE(is_safetensors_dtype("U64"));
  EXPECT_FALSE(is_safetensors_dtype("f32"));
  try {
    safetensors_dtype_size("float32");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), Substr("[safetensors] unknown dtype 'float32'"));
  }
}

// ---------------------------------------------------------------- writer errors

TEST_F(SafetensorsFileTest, WriterRejectsBadItemsAndLeavesNothing) {
  float d[6] = {};
  auto error_of = [&](const std::vector<SafetensorsWriteItem>& items) -> std::string {
    try {
      write_safetensors(path("bad.safetensors"), items);
    } catch (const Error& e) {
      return e.what();
    }
    return "<written>";
  };
  std::string prefix = "[safetensors] " + path("bad.safetensors") + ": ";
  std::string msg = error_of({{"w", "F32", {2, 3}, d, 20}});
  EXPECT_CONTAINS(msg, Substr(prefix + "tensor 'w': 20 bytes given but dtype F32 with shape [2, 3] needs 24"));
  EXPECT_CONTAINS(error_of({{"w", "F32", {1}, d, 4}, {"w", "F32", {1}, d, 4}}),
              Substr(prefix + "duplicate tensor name 'w'"));
  EXPECT_CONTAINS(error_of({{"w", "float", {1}, d, 4}}), Substr("unknown dtype 'float'"));
  EXPECT_CONTAINS(error_of({{"w", "F32", {-1}, d, 4}}), Substr("negative dimension"));
  EXPECT_CONTAINS(error_of({{"__metadata__", "F32", {1}, d, 4}}), Substr("reserved"));
  EXPECT_CONTAINS(error_of({{"w", "F32", {1}, nullptr, 4}}), Substr("data is null"));
  EXPECT_CONTAINS(error_of({{"bad\xff", "F32", {1}, d, 4}}), Substr("valid UTF-8"));
  EXPECT_TRUE(listing().empty());
}

TEST_F(SafetensorsFileTest, UnwritableDirectoryNamesThePath) {
  std::string p = path("missing_dir/m.safetensors");
  try {
    write_safetensors(p, {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), Substr(p));
    EXPECT_CONTAINS(std::string(e.what()), Substr("No such file or directory"));
  }
  EXPECT_TRUE(listing().empty());
}

// A write that fails half way (here: the file size limit, standing in for a
// full disk) leaves neither a partial file nor the temporary, and an older
// file at the path survives untouched.
TEST_F(SafetensorsFileTest, FailedWriteLeavesNoFileAndNoTemp) {
  write_file_atomic(path("old.safetensors"), "old contents");
  std::vector<uint8_t> big(1 << 20, 7);

  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg;
  for (const char* name : {"new.safetensors", "old.safetensors"}) {
    try {
      write_safetensors(path(name), {{"big", "U8", {int64_t(big.size())}, big.data(), big.size()}});
    } catch (const Error& e) {
      msg = e.what();
    }
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);

  EXPECT_CONTAINS(msg, Substr("[safetensors] " + path("old.safetensors") + ": write failed"));
  EXPECT_EQ(listing(), std::vector<std::string>{"old.safetensors"});
  EXPECT_EQ(read_file(path("old.safetensors")), "old contents");
}

// ---------------------------------------------------------------- atomic file, mapped file

TEST_F(SafetensorsFileTest, WriteFileAtomicReplaces) {
  write_file_atomic(path("cfg.json"), "first");
  write_file_atomic(path("cfg.json"), "second, longer");
  write_file_atomic(path("empty"), "");
  EXPECT_EQ(read_file(path("cfg.json")), "second, longer");
  EXPECT_EQ(listing(), (std::vector<std::string>{"cfg.json", "empty"}));
}

TEST_F(SafetensorsFileTest, AtomicWriterDiscardsWithoutCommit) {
  {
    AtomicFileWriter out(path("x"));
    out.write("partial");
    EXPECT_TRUE(fs::exists(out.temp_path()));
    EXPECT_EQ(out.temp_path(), path("x") + ".tmp." + std::to_string(::getpid()));
  }
  EXPECT_TRUE(listing().empty());
}

TEST_F(SafetensorsFileTest, MappedFileBasics) {
  write_file_atomic(path("empty"), "");
  MappedFile empty(path("empty"));
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_CONTAINS(parse_error({}), Substr("too short"));

  write_file_atomic(path("abc"), "abc");
  MappedFile a(path("abc"));
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(std::memcmp(a.data(), "abc", 3), 0);
  MappedFile b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.size(), 3u);
  MappedFile c;
  c = std::move(b);
  EXPECT_EQ(std::memcmp(c.data(), "abc", 3), 0);
  EXPECT_EQ(c.path(), path("abc"));
}

TEST_F(SafetensorsFileTest, MappedFileErrorsNameThePath) {
  try {
    MappedFile m(path("nope"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), Substr(path("nope")));
    EXPECT_CONTAINS(std::string(e.what()), Substr("No such file or directory"));
  }
  try {
    MappedFile m(dir_);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(std::string(e.what()), Substr("directory"));
  }
}

}  // namespace
}  // namespace ember
