// Tests for saving and loading ember tensors as safetensors files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "ember/ember.h"

using namespace ember;

namespace {
std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "." + std::to_string(getpid()) + ".safetensors")).string();
}
}  // namespace

TEST(SafetensorsTensors, RoundTripAllDtypesAndViews) {
  std::string path = temp_path("roundtrip");
  TensorMap in;
  in["f32"] = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  in["f32_transposed"] = transpose(in["f32"], 0, 1);  // saved in row-major order of the view
  in["f64"] = tensor({1.5, -2.5}, {2}, DType::f64);
  in["bf16"] = tensor({1.0, 0.5, -3.0}, {3}, DType::bf16);
  in["f16"] = tensor({0.25}, {1, 1}, DType::f16);
  in["i64"] = tensor_i64({7, -8}, {2});
  in["i32"] = tensor({3}, {}, DType::i32);
  in["u8"] = tensor({255, 0}, {2}, DType::u8);
  in["bool"] = tensor({1, 0, 1}, {3}, DType::b8);
  in["empty"] = zeros({0, 4});
  save_safetensors(path, in, {{"format", "pt"}});
  for (LoadMode mode : {LoadMode::copy, LoadMode::mmap}) {
    SafetensorsFile f = load_safetensors(path, mode);
    EXPECT_EQ(f.metadata.at("format"), "pt");
    ASSERT_EQ(f.tensors.size(), in.size());
    for (const auto& [name, t] : in) {
      const Tensor& got = f.tensors.at(name);
      EXPECT_EQ(got.dtype(), t.dtype()) << name;
      EXPECT_EQ(got.shape(), t.shape()) << name;
      EXPECT_EQ(got.to_vector<double>(), t.to_vector<double>()) << name;
    }
  }
  std::filesystem::remove(path);
}

TEST(SafetensorsTensors, MissingFileAndUnsupportedDtype) {
  try {
    load_safetensors("/nonexistent/dir/model.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.safetensors"), std::string::npos);
  }
  EXPECT_THROW(dtype_from_safetensors("F8_E4M3", "x"), Error);
}
