// Entries of the conformance op table: how each op name of torch_cases.py is
// called in ember. Attributes arrive as the JSON the case table wrote.
#include "tests/conformance/op_table.h"

#include <limits>

#include "ember/ember.h"

namespace ember::conformance {
namespace {

using json = nlohmann::json;
using Ins = std::vector<Tensor>;
using Outs = std::vector<Tensor>;

Axes axes_of(const json& a, const char* key = "axes") { return a.at(key).get<std::vector<int64_t>>(); }
Shape shape_of(const json& a, const char* key = "shape") { return a.at(key).get<Shape>(); }
// An optional tensor argument: the input at `i` when the case passed that many inputs.
Tensor opt(const Ins& in, size_t i) { return i < in.size() ? in[i] : Tensor(); }
double bound(const json& a, const char* key, double none) { return a.at(key).is_null() ? none : a.at(key).get<double>(); }

Reduction reduction_of(const std::string& r) {
  if (r == "mean") return Reduction::mean;
  if (r == "sum") return Reduction::sum;
  if (r == "none") return Reduction::none;
  fail("conformance", "unknown reduction '", r, "'");
}

OpFn unary(Tensor (*f)(const Tensor&)) {
  return [f](const Ins& in, const json&) { return Outs{f(in[0])}; };
}
OpFn binary(Tensor (*f)(const Tensor&, const Tensor&)) {
  return [f](const Ins& in, const json&) { return Outs{f(in[0], in[1])}; };
}
OpFn reduction(Tensor (*f)(const Tensor&, const Axes&, bool)) {
  return [f](const Ins& in, const json& a) { return Outs{f(in[0], axes_of(a), a.at("keepdim").get<bool>())}; };
}
OpFn arg_reduction(Tensor (*f)(const Tensor&, int64_t, bool)) {
  return [f](const Ins& in, const json& a) {
    return Outs{f(in[0], a.at("axis").get<int64_t>(), a.at("keepdim").get<bool>())};
  };
}

std::map<std::string, OpFn> make_table() {
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::map<std::string, OpFn> t;
  // Unary.
  t["neg"] = unary(neg);
  t["abs"] = unary(abs);
  t["exp"] = unary(exp);
  t["log"] = unary(log);
  t["sqrt"] = unary(sqrt);
  t["rsqrt"] = unary(rsqrt);
  t["tanh"] = unary(tanh);
  t["sigmoid"] = unary(sigmoid);
  t["relu"] = unary(relu);
  t["gelu"] = [](const Ins& in, const json&) { return Outs{gelu(in[0], false)}; };
  t["gelu_tanh"] = [](const Ins& in, const json&) { return Outs{gelu(in[0], true)}; };
  t["silu"] = unary(silu);
  t["sin"] = unary(sin);
  t["cos"] = unary(cos);
  t["erf"] = unary(erf);
  t["square"] = unary(square);
  t["reciprocal"] = unary(reciprocal);
  t["sign"] = unary(sign);
  // Binary.
  t["add"] = binary(add);
  t["sub"] = binary(sub);
  t["mul"] = binary(mul);
  t["div"] = binary(div);
  t["pow"] = binary(static_cast<Tensor (*)(const Tensor&, const Tensor&)>(pow));
  t["pow_scalar"] = [](const Ins& in, const json& a) { return Outs{pow(in[0], a.at("exponent").get<double>())}; };
  t["maximum"] = binary(maximum);
  t["minimum"] = binary(minimum);
  t["where"] = [](const Ins& in, const json&) {
    return Outs{where(in[0], in[1], in[2])};
  };
  t["clamp"] = [=](const Ins& in, const json& a) {
    return Outs{clamp(in[0], bound(a, "lo", -inf), bound(a, "hi", inf))};
  };
  t["cast"] = [](const Ins& in, const json& a) {
    return Outs{cast(in[0], dtype_from_name(a.at("dtype").get<std::string>()))};
  };
  // Reductions.
  t["sum"] = reduction(sum);
  t["mean"] = reduction(mean);
  t["max"] = reduction(ember::max);
  t["min"] = reduction(ember::min);
  t["prod"] = reduction(prod);
  t["logsumexp"] = reduction(logsumexp);
  t["var"] = [](const Ins& in, const json& a) {
    return Outs{var(in[0], axes_of(a), a.at("keepdim").get<bool>(), a.at("correction").get<int64_t>())};
  };
  t["argmax"] = arg_reduction(argmax);
  t["argmin"] = arg_reduction(argmin);
  // Views.
  t["reshape"] = [](const Ins& in, const json& a) { return Outs{reshape(in[0], shape_of(a))}; };
  t["permute"] = [](const Ins& in, const json& a) { return Outs{permute(in[0], axes_of(a, "dims"))}; };
  t["transpose"] = [](const Ins& in, const json& a) {
    return Outs{transpose(in[0], a.at("axis0").get<int64_t>(), a.at("axis1").get<int64_t>())};
  };
  t["slice"] = [](const Ins& in, const json& a) {
    return Outs{slice(in[0], a.at("axis").get<int64_t>(), a.at("start").get<int64_t>(), a.at("stop").get<int64_t>(),
                      a.at("step").get<int64_t>())};
  };
  t["expand"] = [](const Ins& in, const json& a) { return Outs{expand(in[0], shape_of(a))}; };
  t["broadcast_to"] = [](const Ins& in, const json& a) { return Outs{broadcast_to(in[0], shape_of(a))}; };
  t["squeeze"] = [](const Ins& in, const json& a) { return Outs{squeeze(in[0], axes_of(a))}; };
  t["unsqueeze"] = [](const Ins& in, const json& a) { return Outs{unsqueeze(in[0], a.at("axis").get<int64_t>())}; };
  t["select"] = [](const Ins& in, const json& a) {
    return Outs{select(in[0], a.at("axis").get<int64_t>(), a.at("index").get<int64_t>())};
  };
  t["narrow"] = [](const Ins& in, const json& a) {
    return Outs{narrow(in[0], a.at("axis").get<int64_t>(), a.at("start").get<int64_t>(), a.at("length").get<int64_t>())};
  };
  t["flatten"] = [](const Ins& in, const json& a) {
    return Outs{flatten(in[0], a.at("start").get<int64_t>(), a.at("end").get<int64_t>())};
  };
  // Linear algebra.
  t["matmul"] = binary(matmul);
  t["linear"] = [](const Ins& in, const json&) { return Outs{linear(in[0], in[1], opt(in, 2))}; };
  // Neural-network ops.
  t["softmax"] = [](const Ins& in, const json& a) { return Outs{softmax(in[0], a.at("axis").get<int64_t>())}; };
  t["log_softmax"] = [](const Ins& in, const json& a) {
    return Outs{log_softmax(in[0], a.at("axis").get<int64_t>())};
  };
  t["layer_norm"] = [](const Ins& in, const json& a) {
    return Outs{layer_norm(in[0], opt(in, 1), opt(in, 2), a.at("eps").get<double>())};
  };
  t["rms_norm"] = [](const Ins& in, const json& a) {
    return Outs{rms_norm(in[0], opt(in, 1), a.at("eps").get<double>())};
  };
  t["cross_entropy"] = [](const Ins& in, const json& a) {
    return Outs{cross_entropy(in[0], in[1], a.at("ignore_index").get<int64_t>(),
                              reduction_of(a.at("reduction").get<std::string>()))};
  };
  t["scaled_dot_product_attention"] = [](const Ins& in, const json& a) {
    return Outs{scaled_dot_product_attention(in[0], in[1], in[2], a.at("causal").get<bool>(),
                                             a.at("scale").get<double>())};
  };
  t["dropout"] = [](const Ins& in, const json& a) {
    return Outs{dropout(in[0], a.at("p").get<double>(), a.at("training").get<bool>())};
  };
  // Joining, indexing, sorting, scanning.
  t["concat"] = [](const Ins& in, const json& a) { return Outs{concat(in, a.at("axis").get<int64_t>())}; };
  t["stack"] = [](const Ins& in, const json& a) { return Outs{stack(in, a.at("axis").get<int64_t>())}; };
  t["split"] = [](const Ins& in, const json& a) {
    return split(in[0], a.at("sizes").get<std::vector<int64_t>>(), a.at("axis").get<int64_t>());
  };
  t["chunk"] = [](const Ins& in, const json& a) {
    return chunk(in[0], a.at("chunks").get<int64_t>(), a.at("axis").get<int64_t>());
  };
  t["embedding"] = [](const Ins& in, const json&) { return Outs{embedding(in[0], in[1])}; };
  t["gather"] = [](const Ins& in, const json& a) { return Outs{gather(in[0], a.at("axis").get<int64_t>(), in[1])}; };
  t["index_select"] = [](const Ins& in, const json& a) {
    return Outs{index_select(in[0], a.at("axis").get<int64_t>(), in[1])};
  };
  t["scatter_add"] = [](const Ins& in, const json& a) {
    return Outs{scatter_add(in[0], a.at("axis").get<int64_t>(), in[1], in[2])};
  };
  t["cumsum"] = [](const Ins& in, const json& a) { return Outs{cumsum(in[0], a.at("axis").get<int64_t>())}; };
  t["tril"] = [](const Ins& in, const json& a) { return Outs{tril(in[0], a.at("k").get<int64_t>())}; };
  t["triu"] = [](const Ins& in, const json& a) { return Outs{triu(in[0], a.at("k").get<int64_t>())}; };
  t["topk"] = [](const Ins& in, const json& a) {
    ValuesIndices r = topk(in[0], a.at("k").get<int64_t>(), a.at("axis").get<int64_t>(), a.at("largest").get<bool>());
    return Outs{r.values, r.indices};
  };
  t["sort"] = [](const Ins& in, const json& a) {
    ValuesIndices r = sort(in[0], a.at("axis").get<int64_t>(), a.at("descending").get<bool>());
    return Outs{r.values, r.indices};
  };
  t["argsort"] = [](const Ins& in, const json& a) {
    return Outs{argsort(in[0], a.at("axis").get<int64_t>(), a.at("descending").get<bool>())};
  };
  // Composites (composite_ops.cpp).
  t["gpt_block"] = gpt_block;
  t["adamw_trajectory"] = adamw_trajectory;
  return t;
}

}  // namespace

const std::map<std::string, OpFn>& op_table() {
  static const std::map<std::string, OpFn> table = make_table();
  return table;
}

}  // namespace ember::conformance
