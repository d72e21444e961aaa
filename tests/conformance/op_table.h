// The conformance harness's map from an op name (as written by torch_cases.py)
// to a call of the ember op. Adding an op to the PyTorch conformance test is one
// entry in op_table.cpp plus one case in torch_cases.py.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/tensor.h"

namespace ember::conformance {

// inputs: the case's inputs in order (differentiable ones already require grad);
// attrs: the case's attributes (JSON object). Returns the outputs in order.
using OpFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs, const nlohmann::json& attrs)>;

const std::map<std::string, OpFn>& op_table();

// Composite cases written with ember ops directly (composite_ops.cpp).
std::vector<Tensor> gpt_block(const std::vector<Tensor>& in, const nlohmann::json& attrs);
std::vector<Tensor> adamw_trajectory(const std::vector<Tensor>& in, const nlohmann::json& attrs);

}  // namespace ember::conformance
