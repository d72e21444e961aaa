// OnnxBuilder and the dtype / tensor conversions of the ONNX exporter (see onnx_builder.h).
#include "ember/graph/onnx_builder.h"

#include <cstring>
#include <sstream>

#include "ember/core/error.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"

namespace ember::graph::onnx_detail {

int32_t onnx_dtype(DType dt) {
  switch (dt) {
    case DType::f32: return onnx::TensorProto::FLOAT;
    case DType::f64: return onnx::TensorProto::DOUBLE;
    case DType::bf16: return onnx::TensorProto::BFLOAT16;
    case DType::f16: return onnx::TensorProto::FLOAT16;
    case DType::i32: return onnx::TensorProto::INT32;
    case DType::i64: return onnx::TensorProto::INT64;
    case DType::u8: return onnx::TensorProto::UINT8;
    case DType::b8: return onnx::TensorProto::BOOL;
  }
  fail("onnx export", "dtype ", int(dt), " has no ONNX counterpart");
}

void fill_tensor_proto(onnx::TensorProto* out, const std::string& name, const Tensor& t) {
  out->set_name(name);
  out->set_data_type(onnx_dtype(t.dtype()));
  for (int64_t d : t.shape()) out->add_dims(d);
  Tensor host = t.device().is_cpu() ? t : to_device(t, Device::cpu());
  // ONNX raw_data is the tensor's elements in row-major order, little-endian
  // (the host's order on every machine ember builds for); bool is one byte each.
  host = contiguous(host.detach());
  std::string* raw = out->mutable_raw_data();
  raw->resize(host.nbytes());
  if (host.nbytes() > 0) std::memcpy(raw->data(), host.raw_data(), host.nbytes());
}

void fill_value_info(onnx::ValueInfoProto* info, const std::string& name, DType dt, const Shape& shape) {
  info->set_name(name);
  onnx::TypeProto_Tensor* tt = info->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_dtype(dt));
  onnx::TensorShapeProto* sp = tt->mutable_shape();
  for (int64_t d : shape) sp->add_dim()->set_dim_value(d);
}

OnnxAttr attr_i(const std::string& name, int64_t v) {
  OnnxAttr a;
  a.kind = OnnxAttr::i;
  a.name = name;
  a.int_value = v;
  return a;
}
OnnxAttr attr_f(const std::string& name, double v) {
  OnnxAttr a;
  a.kind = OnnxAttr::f;
  a.name = name;
  a.float_value = float(v);
  return a;
}
OnnxAttr attr_ints(const std::string& name, std::vector<int64_t> v) {
  OnnxAttr a;
  a.kind = OnnxAttr::ints;
  a.name = name;
  a.ints_value = std::move(v);
  return a;
}
OnnxAttr attr_s(const std::string& name, std::string v) {
  OnnxAttr a;
  a.kind = OnnxAttr::s;
  a.name = name;
  a.string_value = std::move(v);
  return a;
}
OnnxAttr attr_t(const std::string& name, Tensor v) {
  OnnxAttr a;
  a.kind = OnnxAttr::tensor;
  a.name = name;
  a.tensor_value = std::move(v);
  return a;
}

std::string OnnxBuilder::fresh(const std::string& hint) {
  std::string name = hint;
  int64_t& k = next_suffix_[hint];
  while (names_.count(name)) name = hint + "_" + std::to_string(++k);
  names_.insert(name);
  return name;
}

void OnnxBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                       const std::vector<std::string>& outputs, const std::vector<OnnxAttr>& attrs) {
  onnx::NodeProto* n = graph_->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + std::to_string(graph_->node_size() - 1));
  for (const std::string& in : inputs) n->add_input(in);
  for (const std::string& out : outputs) n->add_output(out);
  for (const OnnxAttr& a : attrs) {
    onnx::AttributeProto* p = n->add_attribute();
    p->set_name(a.name);
    switch (a.kind) {
      case OnnxAttr::i:
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(a.int_value);
        break;
      case OnnxAttr::f:
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(a.float_value);
        break;
      case OnnxAttr::ints:
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t v : a.ints_value) p->add_ints(v);
        break;
      case OnnxAttr::s:
        p->set_type(onnx::AttributeProto::STRING);
        p->set_s(a.string_value);
        break;
      case OnnxAttr::tensor:
        p->set_type(onnx::AttributeProto::TENSOR);
        fill_tensor_proto(p->mutable_t(), "", a.tensor_value);
        break;
    }
  }
}

std::string OnnxBuilder::op(const std::string& op_type, const std::vector<std::string>& inputs,
                            const std::vector<OnnxAttr>& attrs, const std::string& hint) {
  std::string out = fresh(hint);
  node(op_type, inputs, {out}, attrs);
  return out;
}

std::string OnnxBuilder::initializer(const std::string& name, const Tensor& t) {
  std::string n = fresh(name);
  fill_tensor_proto(graph_->add_initializer(), n, t);
  return n;
}

std::string OnnxBuilder::const_i64(const std::vector<int64_t>& values) {
  std::ostringstream key;
  key << "i64:";
  for (int64_t v : values) key << v << ",";
  return cached(key.str(), [&] {
    return initializer("const_i64", tensor_i64(values, {int64_t(values.size())}));
  });
}

std::string OnnxBuilder::const_scalar(double value, DType dt) {
  std::ostringstream key;
  key.precision(17);
  key << "scalar:" << dtype_name(dt) << ":" << value;
  return cached(key.str(), [&] { return initializer("const_" + dtype_name(dt), full({}, value, dt)); });
}

}  // namespace ember::graph::onnx_detail
