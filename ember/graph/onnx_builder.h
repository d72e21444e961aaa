// Building blocks of the ONNX exporter (onnx_export.cpp): an OnnxBuilder that
// appends nodes and initializers to an onnx::GraphProto with unique names and
// shared constants, and the conversion of ember dtypes and tensors to ONNX's.
// Internal to the exporter; not part of ember's public API.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ember/core/tensor.h"
#include "ember/graph/onnx_proto.h"

namespace ember::graph::onnx_detail {

// onnx::TensorProto::DataType of an ember dtype.
int32_t onnx_dtype(DType dt);

// Fills `out` (name, dtype, dims, raw little-endian bytes) from a host tensor of any layout.
void fill_tensor_proto(onnx::TensorProto* out, const std::string& name, const Tensor& t);

// Sets `info` to a tensor type with a static shape.
void fill_value_info(onnx::ValueInfoProto* info, const std::string& name, DType dt, const Shape& shape);

// One attribute value of an ONNX node.
struct OnnxAttr {
  enum Kind { i, f, ints, s, tensor };
  Kind kind = i;
  std::string name;
  int64_t int_value = 0;
  float float_value = 0;
  std::vector<int64_t> ints_value;
  std::string string_value;
  Tensor tensor_value;
};
OnnxAttr attr_i(const std::string& name, int64_t v);
OnnxAttr attr_f(const std::string& name, double v);
OnnxAttr attr_ints(const std::string& name, std::vector<int64_t> v);
OnnxAttr attr_s(const std::string& name, std::string v);
OnnxAttr attr_t(const std::string& name, Tensor v);

class OnnxBuilder {
 public:
  explicit OnnxBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  // A name no other value of the graph has: `hint` itself when free (inputs,
  // outputs and parameters keep their names), else `hint_<k>`.
  std::string fresh(const std::string& hint);

  // Appends a node with the given (already unique) output names.
  void node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
            const std::vector<OnnxAttr>& attrs = {});
  // Appends a one-output node whose output gets a fresh name from `hint`; returns it.
  std::string op(const std::string& op, const std::vector<std::string>& inputs, const std::vector<OnnxAttr>& attrs = {},
                 const std::string& hint = "t");

  // Adds `t` as an initializer named fresh(name); returns the name.
  std::string initializer(const std::string& name, const Tensor& t);
  // Shared small constants (one initializer per distinct value).
  std::string const_i64(const std::vector<int64_t>& values);  // 1-D int64
  std::string const_scalar(double value, DType dt);           // 0-D
  // A named constant built once per key (e.g. a causal mask); `make` runs on first use.
  template <typename Make>
  std::string cached(const std::string& key, Make make) {
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    std::string name = make();
    cache_[key] = name;
    return name;
  }

  onnx::GraphProto* graph() { return graph_; }
  int64_t node_count() const { return graph_->node_size(); }

 private:
  onnx::GraphProto* graph_;
  std::set<std::string> names_;
  std::map<std::string, int64_t> next_suffix_;  // hint -> last suffix tried
  std::map<std::string, std::string> cache_;
};

}  // namespace ember::graph::onnx_detail
