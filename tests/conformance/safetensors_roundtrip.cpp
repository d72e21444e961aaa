// The ember half of the safetensors conformance test (driven by
// safetensors_peer.py): `write PATH` saves a fixed set of tensors of every dtype
// (plus a non-contiguous view, a scalar and an empty tensor) for the official
// `safetensors` package to check; `read PATH PRODUCER` loads a file that package
// wrote and checks every tensor exactly. Both sides compute the expected values
// with the same formulas (keep them in sync with safetensors_peer.py).
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "ember/ember.h"

using namespace ember;

namespace {

struct Expected {
  std::string name;
  DType dtype;
  Shape shape;
};

const std::vector<Expected>& expected_tensors() {
  static const std::vector<Expected> list = {
      {"f32", DType::f32, {2, 3, 4}}, {"f64", DType::f64, {5}},       {"bf16", DType::bf16, {3, 2}},
      {"f16", DType::f16, {4}},       {"i32", DType::i32, {2, 2}},    {"i64", DType::i64, {3}},
      {"u8", DType::u8, {6}},         {"bool", DType::b8, {2, 3}},    {"scalar", DType::f32, {}},
      {"empty", DType::f32, {0, 3}},  {"f32_t", DType::f32, {4, 3}},
  };
  return list;
}

// Value of flat element i of a tensor of `dtype` (safetensors_peer.py: value()).
double value(DType dtype, int64_t i) {
  switch (dtype) {
    case DType::f32:
    case DType::f64: return double((i * 7) % 11 - 5) / 3.0;
    case DType::bf16:
    case DType::f16: return double((i * 7) % 11 - 5) * 0.25;
    case DType::i32: return double(i * 1000003 - 5);
    case DType::i64: return double(i * 3000000000LL - 7);
    case DType::u8: return double((i * 37) % 256);
    case DType::b8: return i % 3 == 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

Tensor make(const Expected& e) {
  std::vector<double> v(size_t(numel(e.shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = value(e.dtype, int64_t(i));
  return tensor(v, e.shape, e.dtype);
}

// "f32_t" is the transpose of a [3, 4] tensor: saved from a non-contiguous view by
// ember, and as a contiguous copy by Python.
Tensor make_transposed() { return transpose(make({"", DType::f32, {3, 4}}), 0, 1); }

int write_file(const std::string& path) {
  TensorMap tensors;
  for (const Expected& e : expected_tensors()) tensors[e.name] = e.name == "f32_t" ? make_transposed() : make(e);
  save_safetensors(path, tensors, {{"format", "pt"}, {"producer", "ember"}});
  std::cout << "wrote " << tensors.size() << " tensors to " << path << "\n";
  return 0;
}

int read_file(const std::string& path, const std::string& producer) {
  int errors = 0;
  for (LoadMode mode : {LoadMode::copy, LoadMode::mmap}) {
    const char* mode_name = mode == LoadMode::copy ? "copy" : "mmap";
    SafetensorsFile f = load_safetensors(path, mode);
    auto meta = f.metadata.find("producer");
    if (meta == f.metadata.end() || meta->second != producer) {
      std::cerr << mode_name << ": metadata producer is '" << (meta == f.metadata.end() ? "<missing>" : meta->second)
                << "', expected '" << producer << "'\n";
      ++errors;
    }
    if (f.tensors.size() != expected_tensors().size()) {
      std::cerr << mode_name << ": " << f.tensors.size() << " tensors, expected " << expected_tensors().size() << "\n";
      ++errors;
    }
    for (const Expected& e : expected_tensors()) {
      auto it = f.tensors.find(e.name);
      if (it == f.tensors.end()) {
        std::cerr << mode_name << ": tensor '" << e.name << "' missing\n";
        ++errors;
        continue;
      }
      const Tensor& got = it->second;
      if (got.dtype() != e.dtype || got.shape() != e.shape) {
        std::cerr << mode_name << ": '" << e.name << "' is " << dtype_name(got.dtype()) << " " << shape_str(got.shape())
                  << ", expected " << dtype_name(e.dtype) << " " << shape_str(e.shape) << "\n";
        ++errors;
        continue;
      }
      const std::vector<double> want = (e.name == "f32_t" ? make_transposed() : make(e)).to_vector<double>();
      const std::vector<double> have = got.to_vector<double>();
      for (size_t i = 0; i < want.size(); ++i)
        if (have[i] != want[i]) {
          std::cerr << mode_name << ": '" << e.name << "' element " << i << " is " << have[i] << ", expected "
                    << want[i] << "\n";
          ++errors;
          break;
        }
    }
  }
  if (errors == 0) std::cout << "read " << expected_tensors().size() << " tensors from " << path << ": all match\n";
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "write" && argc == 3) return write_file(argv[2]);
    if (mode == "read" && argc == 4) return read_file(argv[2], argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "safetensors_roundtrip " << mode << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: " << argv[0] << " write PATH | read PATH PRODUCER\n";
  return 2;
}
