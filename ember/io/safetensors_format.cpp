// The safetensors header parser (validates every field before anyone trusts
// an offset) and the writer (byte-compatible with the reference writer).
#include "ember/io/safetensors_format.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"

namespace ember {

namespace {

using nlohmann::json;

struct DTypeInfo {
  const char* name;
  size_t size;
};

// In the reference implementation's enum order, which is increasing
// alignment: the writer sorts by this index so that its layout, and so its
// bytes, match files written by the Python/Rust safetensors packages.
constexpr DTypeInfo kDTypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2},  {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"C64", 8}, {"F64", 8},  {"I64", 8},     {"U64", 8},
};

int dtype_index(std::string_view name) {
  for (size_t i = 0; i < std::size(kDTypes); ++i) {
    if (name == kDTypes[i].name) return static_cast<int>(i);
  }
  return -1;
}

// Hostile files can hold megabyte-long names and values; messages show a prefix.
constexpr size_t kMaxShown = 120;

// Messages end up in logs and JSON error bodies, so they must be valid UTF-8
// even when the file is not: control bytes and bytes that do not form a
// UTF-8 sequence are shown as \xNN.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [&out](unsigned char c) {
    const char* digits = "0123456789abcdef";
    out += "\\x";
    out += digits[c >> 4];
    out += digits[c & 15];
  };
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (!ok || (len == 1 && (c < 0x20 || c == 0x7f))) {
      hex(c);
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string clip(std::string_view s, size_t max = kMaxShown) {
  if (s.size() <= max) return printable(s);
  return str_cat(printable(s.substr(0, max)), "...(", s.size(), " bytes)");
}

std::string shown_name(std::string_view name) { return str_cat("'", clip(name), "'"); }  // not "'" + ...: GCC 12's false -Wrestrict (bug 105651)

std::string dump_clipped(const json& j) {
  return clip(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string range_str(uint64_t begin, uint64_t end) { return str_cat("[", begin, ", ", end, "]"); }

template <typename... Args>
[[noreturn]] void bad(const std::string& what, Args&&... parts) {
  fail("safetensors", what, ": ", std::forward<Args>(parts)...);
}

// numel(shape) * element size, or false if it does not fit in 64 bits. A
// zero dimension makes the product 0 however large the other dimensions are.
bool byte_size(const std::vector<int64_t>& shape, size_t elem, uint64_t* out) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    *out = 0;
    return true;
  }
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

// Runs inside nlohmann's parser. It rejects duplicate keys (nlohmann would
// silently keep the last one, so two readers could see different tensors)
// and nesting deeper than a valid header has (object > object > array), so
// a hostile header cannot make the parser build deep trees.
class HeaderShapeCheck {
 public:
  explicit HeaderShapeCheck(const std::string& what) : what_(what) {}

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= 3) {
          bad(what_, "header nests deeper than a valid header can (inside ", where(), ")");
        }
        if (event == json::parse_event_t::object_start) keys_.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_.empty()) keys_.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!keys_.empty() && !keys_.back().insert(key).second) {
          if (depth <= 1 && key != "__metadata__") {
            bad(what_, "duplicate tensor name ", shown_name(key));
          }
          bad(what_, "duplicate key ", shown_name(key), " inside ", where());
        }
        if (depth <= 1) top_key_ = key;
        break;
      }
      default:
        break;
    }
    return true;
  }

 private:
  std::string where() const { return top_key_.empty() ? "the header" : shown_name(top_key_); }

  const std::string& what_;
  std::vector<std::set<std::string>> keys_;
  std::string top_key_;
};

const json& require(const std::string& what, const std::string& tensor, const json& obj,
                    const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) bad(what, tensor, ": \"", field, "\" is missing");
  return *it;
}

SafetensorsEntry parse_entry(const std::string& what, const std::string& name, const json& value,
                             uint64_t buffer_size) {
  const std::string t = "tensor " + shown_name(name);
  if (!value.is_object()) {
    bad(what, t, ": expected an object with dtype, shape and data_offsets, got ",
        dump_clipped(value));
  }
  SafetensorsEntry e;
  e.name = name;

  const json& dtype = require(what, t, value, "dtype");
  if (!dtype.is_string()) bad(what, t, ": \"dtype\" must be a string, got ", dump_clipped(dtype));
  e.dtype = dtype.get<std::string>();
  int di = dtype_index(e.dtype);
  if (di < 0) bad(what, t, ": unknown dtype ", shown_name(e.dtype));

  const json& shape = require(what, t, value, "shape");
  if (!shape.is_array()) {
    bad(what, t, ": \"shape\" must be an array of non-negative integers, got ",
        dump_clipped(shape));
  }
  e.shape.reserve(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    const json& d = shape[i];
    // nlohmann stores non-negative integers as unsigned; negatives, floats
    // and integers beyond 2^64 (kept as floats) all fail this test.
    if (!d.is_number_unsigned() ||
        d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      bad(what, t, ": \"shape\"[", i, "] must be a non-negative integer below 2^63, got ",
          dump_clipped(d));
    }
    e.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }

  const json& offsets = require(what, t, value, "data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    bad(what, t, ": \"data_offsets\" must be [begin, end], got ", dump_clipped(offsets));
  }
  for (size_t i = 0; i < 2; ++i) {
    if (!offsets[i].is_number_unsigned()) {
      bad(what, t, ": \"data_offsets\"[", i, "] must be a non-negative integer, got ",
          dump_clipped(offsets[i]));
    }
  }
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin) {
    bad(what, t, ": data_offsets ", range_str(e.begin, e.end), " end before they begin");
  }
  if (e.end > buffer_size) {
    bad(what, t, ": data_offsets ", range_str(e.begin, e.end),
        " run past the end of the data buffer (", buffer_size, " bytes)");
  }

  uint64_t nbytes = 0;
  if (!byte_size(e.shape, kDTypes[di].size, &nbytes)) {
    bad(what, t, ": shape ", shape_str(e.shape), " of dtype ", e.dtype,
        " needs more bytes than fit in 64 bits");
  }
  if (e.end - e.begin != nbytes) {
    bad(what, t, ": data_offsets ", range_str(e.begin, e.end), " span ", e.end - e.begin,
        " bytes but dtype ", e.dtype, " with shape ", shape_str(e.shape), " needs ", nbytes);
  }
  return e;
}

void parse_metadata(const std::string& what, const json& value,
                    std::map<std::string, std::string>* out) {
  if (!value.is_object()) {
    bad(what, "\"__metadata__\" must be an object of string to string, got ",
        dump_clipped(value));
  }
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!it.value().is_string()) {
      bad(what, "\"__metadata__\" value for key ", shown_name(it.key()), " must be a string, got ",
          dump_clipped(it.value()));
    }
    (*out)[it.key()] = it.value().get<std::string>();
  }
}

// Checks that the offsets, sorted, tile [0, buffer_size) exactly.
void check_tiling(const std::string& what, const std::vector<SafetensorsEntry>& entries,
                  uint64_t buffer_size) {
  uint64_t pos = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry& e : entries) {
    if (e.begin < pos) {
      bad(what, "tensors ", shown_name(prev->name), " at ", range_str(prev->begin, prev->end), " and ",
          shown_name(e.name), " at ", range_str(e.begin, e.end), " overlap");
    }
    if (e.begin > pos) {
      if (prev == nullptr) {
        bad(what, "gap of ", e.begin - pos, " bytes before the first tensor ", shown_name(e.name),
            " (data_offsets ", range_str(e.begin, e.end), ")");
      }
      bad(what, "gap of ", e.begin - pos, " bytes between tensor ", shown_name(prev->name),
          " (ends at ", prev->end, ") and tensor ", shown_name(e.name), " (begins at ", e.begin, ")");
    }
    pos = e.end;
    prev = &e;
  }
  if (pos != buffer_size) {
    bad(what, "the data buffer is ", buffer_size, " bytes but the tensors cover only ", pos, " (",
        buffer_size - pos, " trailing bytes belong to no tensor)");
  }
}

}  // namespace

bool is_safetensors_dtype(const std::string& dtype) { return dtype_index(dtype) >= 0; }

size_t safetensors_dtype_size(const std::string& dtype) {
  int di = dtype_index(dtype);
  if (di < 0) fail("safetensors", "unknown dtype ", shown_name(dtype));
  return kDTypes[di].size;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size,
                                           const std::string& what) {
  if (size < 8) bad(what, "file is ", size, " bytes, too short for the 8-byte header length");
  if (data == nullptr) bad(what, "no data (null pointer with size ", size, ")");

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > kSafetensorsMaxHeaderBytes) {
    bad(what, "header length ", n, " exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes");
  }
  const uint64_t after_length = size - 8;
  if (n > after_length) {
    bad(what, "header length ", n, " runs past the end of the file (only ", after_length,
        " bytes follow the length field)");
  }
  const uint64_t buffer_size = after_length - n;
  const char* text = reinterpret_cast<const char*>(data + 8);
  if (n == 0) bad(what, "header length is 0; the header must be a JSON object");
  if (text[0] != '{') {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(data[8]));
    bad(what, "header must be a JSON object starting with '{', but its first byte is ", hex);
  }

  json root;
  HeaderShapeCheck check(what);
  try {
    root = json::parse(text, text + n,
                       [&check](int depth, json::parse_event_t event, json& parsed) {
                         return check(depth, event, parsed);
                       });
  } catch (const json::exception& e) {
    // The parser's message quotes the last token read, which can be huge.
    bad(what, "header is not valid JSON: ", clip(e.what(), 400));
  }
  if (!root.is_object()) bad(what, "header must be a JSON object, got ", dump_clipped(root));

  SafetensorsHeader header;
  header.data_start = 8 + n;
  header.entries.reserve(root.size());
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      parse_metadata(what, it.value(), &header.metadata);
    } else {
      header.entries.push_back(parse_entry(what, it.key(), it.value(), buffer_size));
    }
  }
  // Names break ties so that several empty tensors at one offset come out in
  // a stable order.
  std::sort(header.entries.begin(), header.entries.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
            });
  check_tiling(what, header.entries, buffer_size);
  return header;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteItem>& items,
                       const std::map<std::string, std::string>& metadata) {
  // Everything is validated before the temporary file exists, so bad input
  // never touches the disk.
  std::vector<int> rank(items.size());
  std::set<std::string_view> names;
  for (size_t i = 0; i < items.size(); ++i) {
    const SafetensorsWriteItem& item = items[i];
    const std::string t = "tensor " + shown_name(item.name);
    if (item.name == "__metadata__") bad(path, t, ": the name is reserved for the metadata map");
    if (!names.insert(item.name).second) bad(path, "duplicate tensor name ", shown_name(item.name));
    rank[i] = dtype_index(item.dtype);
    if (rank[i] < 0) bad(path, t, ": unknown dtype ", shown_name(item.dtype));
    for (int64_t d : item.shape) {
      if (d < 0) bad(path, t, ": shape ", shape_str(item.shape), " has a negative dimension");
    }
    uint64_t expected = 0;
    if (!byte_size(item.shape, kDTypes[rank[i]].size, &expected)) {
      bad(path, t, ": shape ", shape_str(item.shape), " needs more bytes than fit in 64 bits");
    }
    if (expected != item.nbytes) {
      bad(path, t, ": ", item.nbytes, " bytes given but dtype ", item.dtype, " with shape ",
          shape_str(item.shape), " needs ", expected);
    }
    if (item.data == nullptr && item.nbytes > 0) bad(path, t, ": data is null");
  }

  // Descending alignment keeps every tensor aligned to its element size
  // (sizes are powers of two and the buffer starts 8-aligned); names break
  // ties, as in the reference writer.
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (rank[a] != rank[b]) return rank[a] > rank[b];
    return items[a].name < items[b].name;
  });

  // The header is assembled by hand rather than through a json object so that
  // the key order (metadata first, then tensors in file order; dtype, shape,
  // data_offsets inside each) matches the reference writer.
  std::string header = "{";
  try {
    if (!metadata.empty()) header += "\"__metadata__\":" + json(metadata).dump();
    uint64_t offset = 0;
    for (size_t i : order) {
      const SafetensorsWriteItem& item = items[i];
      if (header.size() > 1) header += ',';
      header += json(item.name).dump();
      header += ":{\"dtype\":\"" + item.dtype + "\",\"shape\":[";
      for (size_t k = 0; k < item.shape.size(); ++k) {
        if (k > 0) header += ',';
        header += std::to_string(item.shape[k]);
      }
      uint64_t end = 0;
      if (__builtin_add_overflow(offset, static_cast<uint64_t>(item.nbytes), &end)) {
        bad(path, "total data size overflows 64 bits");
      }
      header += str_cat("],\"data_offsets\":[", offset, ",", end, "]}");
      offset = end;
    }
  } catch (const json::exception& e) {
    bad(path, "cannot encode the header (names and metadata must be valid UTF-8): ",
        clip(e.what()));
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kSafetensorsMaxHeaderBytes) {
    bad(path, "header would be ", header.size(), " bytes, above the ", kSafetensorsMaxHeaderBytes,
        "-byte limit readers enforce");
  }

  unsigned char length[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(n >> (8 * i));

  AtomicFileWriter out(path, "safetensors");
  out.write(length, sizeof length);
  out.write(header);
  for (size_t i : order) {
    if (items[i].nbytes > 0) out.write(items[i].data, items[i].nbytes);
  }
  out.commit();
}

}  // namespace ember
