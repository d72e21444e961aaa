// PyTorch conformance test: runs every case that torch_cases.py wrote (inputs,
// PyTorch's outputs, cotangents and input gradients in one safetensors file plus
// a JSON manifest) through the ember op named in op_table.cpp, and compares the
// forward values and the input gradients within the case's tolerance.
//
// One GoogleTest test per case (registered at run time from the manifest), so a
// failure names the case. An op that still throws "not implemented yet" is
// reported as skipped, with its message, so the suite stays green while it lands.
//
// Usage: ember_torch_conformance --data DIR [gtest flags]   (DIR holds torch_cases.json)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ember/ember.h"
#include "tests/conformance/op_table.h"

using namespace ember;
using json = nlohmann::json;

namespace {

struct Reference {
  json manifest;
  SafetensorsFile file;
};
Reference* g_ref = nullptr;

bool not_implemented(const std::exception& e) {
  return std::string(e.what()).find("not implemented yet") != std::string::npos;
}

std::string index_str(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::ostringstream s;
  s << "[";
  for (size_t d = 0; d < idx.size(); ++d) s << (d ? ", " : "") << idx[d];
  s << "]";
  return s.str();
}

// Empty when `got` matches `want` (dtype `want_dtype`, shape, and every element
// within atol + rtol * |want|); otherwise a message naming the worst element.
std::string compare(const std::string& what, const Tensor& got, const Tensor& want, const std::string& want_dtype,
                    double rtol, double atol) {
  std::ostringstream msg;
  if (dtype_name(got.dtype()) != want_dtype)
    return what + ": dtype " + dtype_name(got.dtype()) + ", torch has " + want_dtype;
  if (got.shape() != want.shape())
    return what + ": shape " + shape_str(got.shape()) + ", torch has " + shape_str(want.shape());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  int64_t bad = 0, worst = -1;
  double worst_excess = 0.0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) && std::isnan(w[i])) continue;
    const double err = std::abs(g[i] - w[i]), allowed = atol + rtol * std::abs(w[i]);
    if (!(err <= allowed) && !(g[i] == w[i])) {  // g == w covers matching infinities
      ++bad;
      const double excess = std::isfinite(err) ? err / (allowed > 0 ? allowed : 1e-300) : INFINITY;
      if (worst < 0 || excess > worst_excess) worst = int64_t(i), worst_excess = excess;
    }
  }
  if (bad == 0) return "";
  const size_t k = size_t(worst);
  msg.precision(9);
  msg << what << ": " << bad << " of " << g.size() << " elements differ beyond rtol=" << rtol << " atol=" << atol
      << "; worst at " << index_str(worst, want.shape()) << ": ember=" << g[k] << " torch=" << w[k]
      << " (abs err " << std::abs(g[k] - w[k]) << ", rel err " << std::abs(g[k] - w[k]) / std::abs(w[k]) << ")";
  return msg.str();
}

class TorchCase : public testing::Test {
 public:
  explicit TorchCase(const json* c) : c_(*c) {}

  void TestBody() override {
    const std::string name = c_.at("name"), op = c_.at("op");
    const json& attrs = c_.at("attrs");
    if (!c_.value("note", std::string()).empty()) RecordProperty("note", c_.at("note").get<std::string>());
    const auto& table = conformance::op_table();
    auto entry = table.find(op);
    ASSERT_NE(entry, table.end()) << "op '" << op << "' has no entry in tests/conformance/op_table.cpp";
    auto ref = [&](const std::string& key) -> const Tensor& {
      auto it = g_ref->file.tensors.find(name + "." + key);
      if (it == g_ref->file.tensors.end()) throw std::runtime_error("reference tensor " + name + "." + key + " missing");
      return it->second;
    };

    // Inputs are copies, so we can check afterwards that the op left them alone.
    const int64_t n_in = c_.at("num_inputs").get<int64_t>();
    const std::vector<int64_t> diff = c_.at("differentiable"), cot_idx = c_.at("cotangents");
    std::vector<Tensor> inputs;
    for (int64_t i = 0; i < n_in; ++i) inputs.push_back(clone(ref("in" + std::to_string(i))));
    for (int64_t i : diff) inputs[size_t(i)].requires_grad_();

    std::vector<Tensor> outs;
    try {
      outs = entry->second(inputs, attrs);
    } catch (const std::exception& e) {
      if (not_implemented(e)) GTEST_SKIP() << e.what();
      FAIL() << "forward threw: " << e.what();
    }
    const std::vector<std::string> out_dtypes = c_.at("out_dtypes");
    ASSERT_EQ(outs.size(), out_dtypes.size()) << "number of outputs";
    const double rtol = c_.at("rtol"), atol = c_.at("atol");
    for (size_t j = 0; j < outs.size(); ++j) {
      std::string m = compare("out" + std::to_string(j), outs[j], ref("out" + std::to_string(j)), out_dtypes[j], rtol,
                              atol);
      EXPECT_TRUE(m.empty()) << m;
    }

    if (!diff.empty() && !cot_idx.empty()) {
      // An output that ember does not differentiate (sign, say) has a zero gradient,
      // which is what torch's reference must then hold.
      std::vector<Tensor> roots, seeds, wrt;
      for (int64_t j : cot_idx) {
        if (!outs[size_t(j)].requires_grad()) continue;
        roots.push_back(outs[size_t(j)]);
        seeds.push_back(cast(ref("cot" + std::to_string(j)), outs[size_t(j)].dtype()));
      }
      for (int64_t i : diff) wrt.push_back(inputs[size_t(i)]);
      std::vector<Tensor> grads(wrt.size());
      try {
        if (!roots.empty())
          grads = grad(roots, wrt, seeds, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
      } catch (const std::exception& e) {
        if (not_implemented(e)) GTEST_SKIP() << "backward: " << e.what();
        FAIL() << "backward threw: " << e.what();
      }
      const double grtol = c_.at("grad_rtol"), gatol = c_.at("grad_atol");
      for (size_t k = 0; k < diff.size(); ++k) {
        const std::string in = std::to_string(diff[k]);
        const Tensor& want = ref("grad" + in);
        Tensor g = grads[k].defined() ? grads[k] : zeros_like(want);
        std::string m = compare("grad of in" + in, g, want, dtype_name(want.dtype()), grtol, gatol);
        EXPECT_TRUE(m.empty()) << m;
      }
    }
    for (int64_t i = 0; i < n_in; ++i) {
      const Tensor& orig = ref("in" + std::to_string(i));
      std::string m = compare("in" + std::to_string(i) + " after the op", inputs[size_t(i)].detach(), orig,
                              dtype_name(orig.dtype()), 0.0, 0.0);
      EXPECT_TRUE(m.empty()) << m << " (the op wrote into its input)";
    }
  }

 private:
  const json& c_;
};

int load_and_register(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path manifest_path = fs::path(dir) / "torch_cases.json";
  if (!fs::exists(manifest_path)) {
    std::cerr << "torch conformance: no reference data at " << manifest_path
              << ".\nRun ./scripts/test.sh: it creates the PyTorch peers venv and the CTest fixture "
                 "conformance.generate writes this file with it.\n";
    return 1;
  }
  g_ref = new Reference;
  try {
    std::ifstream f(manifest_path);
    g_ref->manifest = json::parse(f);
    g_ref->file = load_safetensors((fs::path(dir) / g_ref->manifest.at("data").get<std::string>()).string());
  } catch (const std::exception& e) {
    std::cerr << "torch conformance: cannot read the reference data in " << dir << ": " << e.what() << "\n";
    return 1;
  }
  std::cout << "torch conformance: " << g_ref->manifest.at("cases").size() << " cases from torch "
            << g_ref->manifest.value("torch_version", std::string("?")) << "\n";
  for (const json& c : g_ref->manifest.at("cases")) {
    const json* cp = &c;
    const std::string name = c.at("name");
    testing::RegisterTest("Torch", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [cp]() -> testing::Test* { return new TorchCase(cp); });
  }
  return 0;
}

// One closing line with the counts, and which ops are still skipped.
void print_summary() {
  const testing::UnitTest& u = *testing::UnitTest::GetInstance();
  int passed = 0, failed = 0, skipped = 0;
  std::set<std::string> skipped_ops;
  std::map<std::string, std::string> op_of;
  for (const json& c : g_ref->manifest.at("cases")) op_of[c.at("name")] = c.at("op");
  for (int s = 0; s < u.total_test_suite_count(); ++s) {
    const testing::TestSuite& suite = *u.GetTestSuite(s);
    for (int t = 0; t < suite.total_test_count(); ++t) {
      const testing::TestInfo& info = *suite.GetTestInfo(t);
      if (!info.should_run()) continue;
      if (info.result()->Skipped()) {
        ++skipped;
        skipped_ops.insert(op_of[info.name()]);
      } else if (info.result()->Failed()) {
        ++failed;
      } else {
        ++passed;
      }
    }
  }
  std::cout << "torch conformance: " << passed << " passed, " << failed << " failed, " << skipped << " skipped";
  if (!skipped_ops.empty()) {
    std::cout << " (not implemented yet:";
    for (const auto& op : skipped_ops) std::cout << " " << op;
    std::cout << ")";
  }
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::string dir;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--data" && i + 1 < argc) dir = argv[++i];
  if (dir.empty())
    if (const char* env = std::getenv("EMBER_CONFORMANCE_DATA")) dir = env;
  if (dir.empty()) {
    std::cerr << "usage: " << argv[0] << " --data DIR [gtest flags]  (DIR holds torch_cases.json)\n";
    return 2;
  }
  if (int rc = load_and_register(dir)) return rc;
  const int rc = RUN_ALL_TESTS();
  print_summary();
  return rc;
}
