// nn::Module bookkeeping: naming and order, train/eval, zero_grad, state_dict
// round trip through a safetensors file, every load_state_dict error, tied
// parameters, to(dtype), containers, registration errors, copy_.
#include <gtest/gtest.h>

#include <filesystem>

#include "ember/ember.h"
#include "ember/nn/nn.h"

using namespace ember;

namespace {

struct Block : nn::Module {
  explicit Block(Generator* gen) {
    scale = register_parameter("scale", ones({1}));
    ln = register_module("ln", std::make_shared<nn::LayerNorm>(4));
    register_buffer("mask", ones({2, 2}));
    fc = register_module("fc", std::make_shared<nn::Linear>(4, 3, true, gen));
  }
  std::string type_name() const override { return "Block"; }
  Tensor scale;
  std::shared_ptr<nn::LayerNorm> ln;
  std::shared_ptr<nn::Linear> fc;
};

struct Net : nn::Module {
  explicit Net(uint64_t seed) : gen(seed) {
    wte = register_module("wte", std::make_shared<nn::Embedding>(10, 4, &gen));
    h = register_module("h", std::make_shared<nn::ModuleList>());
    for (int i = 0; i < 2; ++i) h->push_back(std::make_shared<Block>(&gen));
    register_buffer("scratch", zeros({3}), /*persistent=*/false);
  }
  std::string type_name() const override { return "Net"; }
  Generator gen;
  std::shared_ptr<nn::Embedding> wte;
  std::shared_ptr<nn::ModuleList> h;
};

// Multiplies by a constant: a UnaryModule that needs no linear algebra.
struct Scale : nn::UnaryModule {
  explicit Scale(double f) : factor(f) {}
  Tensor forward(const Tensor& x) override { return x * factor; }
  double factor;
};

std::vector<std::string> names_of(const nn::NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error, expected one mentioning: " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(NnModule, NamesAreDottedAndOrdered) {
  Net net(1);
  std::vector<std::string> want = {"wte.weight",    "h.0.scale",   "h.0.ln.weight", "h.0.ln.bias",
                                   "h.0.fc.weight", "h.0.fc.bias", "h.1.scale",     "h.1.ln.weight",
                                   "h.1.ln.bias",   "h.1.fc.weight", "h.1.fc.bias"};
  EXPECT_EQ(names_of(net.named_parameters()), want);
  EXPECT_EQ(names_of(net.named_buffers()), (std::vector<std::string>{"scratch", "h.0.mask", "h.1.mask"}));
  EXPECT_EQ(net.parameters().size(), want.size());
  for (const Tensor& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_FALSE(net.get_tensor("h.0.mask").requires_grad());
  EXPECT_EQ(net.num_parameters(), 10 * 4 + 2 * (1 + 4 + 4 + 12 + 3));
  EXPECT_TRUE(net.get_tensor("h.1.fc.weight").same(net.h->at<Block>(1)->fc->weight));
  auto children = net.named_children();
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(children[0].first, "wte");
  EXPECT_EQ(children[1].first, "h");
  std::vector<std::string> modules;
  for (auto& [n, m] : net.named_modules()) modules.push_back(n);
  EXPECT_EQ(modules, (std::vector<std::string>{"", "wte", "h", "h.0", "h.0.ln", "h.0.fc", "h.1", "h.1.ln", "h.1.fc"}));
  expect_error([&] { net.get_tensor("h.2.scale"); }, "[get_tensor] no parameter or buffer named 'h.2.scale'");
}

TEST(NnModule, StrShowsTheTree) {
  Net net(1);
  std::string s = net.str();
  EXPECT_NE(s.find("Net()\n  (wte): Embedding(10, 4)\n  (h): ModuleList()\n    (0): Block()\n"), std::string::npos)
      << s;
  EXPECT_NE(s.find("      (fc): Linear(in_features=4, out_features=3, bias=true)\n"), std::string::npos) << s;
}

TEST(NnModule, TrainEvalPropagates) {
  Net net(1);
  EXPECT_TRUE(net.is_training());
  net.eval();
  for (auto& [n, m] : net.named_modules()) EXPECT_FALSE(m->is_training()) << n;
  net.h->train();
  EXPECT_FALSE(net.is_training());
  EXPECT_TRUE(net.h->at<Block>(0)->fc->is_training());
  net.train();
  for (auto& [n, m] : net.named_modules()) EXPECT_TRUE(m->is_training()) << n;
}

TEST(NnModule, ZeroGrad) {
  Net net(1);
  for (const Tensor& p : net.parameters()) p.set_grad(ones_like(p));
  net.zero_grad(/*set_to_none=*/false);
  for (const Tensor& p : net.parameters()) EXPECT_EQ(sum(p.grad()).item<double>(), 0.0);
  net.zero_grad();
  for (const Tensor& p : net.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(NnModule, StateDictRoundTripThroughSafetensors) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("ember_nn_" + std::to_string(::getpid()) + ".safetensors")).string();
  Net a(1), b(2);
  TensorMap sd = a.state_dict();
  EXPECT_EQ(sd.size(), 11u + 2u);  // parameters and persistent buffers, not "scratch"
  EXPECT_FALSE(sd.count("scratch"));
  EXPECT_NE(a.wte->weight.to_vector<float>(), b.wte->weight.to_vector<float>());
  nn::save_module(a, path);
  Tensor handle = b.wte->weight;
  nn::LoadResult r = nn::load_module(b, path);
  EXPECT_TRUE(r.missing_keys.empty());
  EXPECT_TRUE(r.unexpected_keys.empty());
  for (const auto& [name, t] : a.state_dict())
    EXPECT_EQ(t.to_vector<float>(), b.get_tensor(name).to_vector<float>()) << name;
  // Loaded in place: the layer's own handle sees the new values and still requires grad.
  EXPECT_TRUE(handle.same(b.wte->weight));
  EXPECT_TRUE(b.wte->weight.requires_grad());
  std::filesystem::remove(path);
}

TEST(NnModule, LoadStateDictListsEveryProblem) {
  Net net(1);
  TensorMap sd = Net(2).state_dict();
  std::vector<float> before = net.wte->weight.to_vector<float>();
  sd.erase("h.1.fc.bias");
  sd["foo"] = zeros({1});
  sd["wte.weight"] = zeros({12, 4});
  sd["h.0.scale"] = ones({1}, DType::f64);
  expect_error([&] { net.load_state_dict(sd); },
               "[load_state_dict] missing keys: h.1.fc.bias; unexpected keys: foo; shape mismatch for wte.weight: "
               "checkpoint [12, 4] vs model [10, 4]; dtype mismatch for h.0.scale: checkpoint float64 vs model "
               "float32");
  // Non-strict still refuses shape and dtype mismatches...
  expect_error([&] { net.load_state_dict(sd, false); }, "shape mismatch for wte.weight");
  // ...and nothing was written by the failed loads.
  EXPECT_EQ(net.wte->weight.to_vector<float>(), before);
  sd.erase("wte.weight");
  sd.erase("h.0.scale");
  nn::LoadResult r = net.load_state_dict(sd, /*strict=*/false);
  EXPECT_EQ(r.missing_keys, (std::vector<std::string>{"wte.weight", "h.0.scale", "h.1.fc.bias"}));
  EXPECT_EQ(r.unexpected_keys, (std::vector<std::string>{"foo"}));
  EXPECT_EQ(net.wte->weight.to_vector<float>(), before);
  EXPECT_EQ(net.h->at<Block>(1)->fc->weight.to_vector<float>(), sd.at("h.1.fc.weight").to_vector<float>());
  // The error names the file when loading from disk.
  const std::string path =
      (std::filesystem::temp_directory_path() / ("ember_nn_bad_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  save_safetensors(path, {{"foo", zeros({1})}});
  expect_error([&] { nn::load_module(net, path); }, "unexpected keys: foo");
  expect_error([&] { nn::load_module(net, path); }, path);
  std::filesystem::remove(path);
}

TEST(NnModule, TiedParametersAreListedOnce) {
  struct Tied : nn::Module {
    Tied() {
      wte = register_module("wte", std::make_shared<nn::Embedding>(5, 3));
      head = register_parameter("lm_head_weight", wte->weight);
    }
    std::shared_ptr<nn::Embedding> wte;
    Tensor head;
  } m;
  EXPECT_EQ(names_of(m.named_parameters()), (std::vector<std::string>{"lm_head_weight"}));
  EXPECT_EQ(m.num_parameters(), 15);
  TensorMap sd = m.state_dict();
  EXPECT_EQ(sd.size(), 2u);  // both names, as PyTorch
  m.load_state_dict(sd);
  EXPECT_TRUE(m.head.same(m.wte->weight));
}

TEST(NnModule, ToDtypeConvertsInPlace) {
  Net net(1);
  Tensor handle = net.h->at<Block>(0)->fc->weight;
  std::vector<float> values = handle.to_vector<float>();
  handle.set_grad(ones_like(handle));
  net.to(DType::f64);
  EXPECT_EQ(handle.dtype(), DType::f64);
  EXPECT_TRUE(handle.requires_grad());
  EXPECT_FALSE(handle.grad().defined());
  std::vector<double> converted = handle.to_vector<double>();
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(converted[i], double(values[i]));
  for (const auto& [n, t] : net.state_dict()) EXPECT_EQ(t.dtype(), DType::f64) << n;
  net.to(Device::cpu());  // a no-op here; the handles stay valid
  EXPECT_TRUE(handle.same(net.h->at<Block>(0)->fc->weight));
  expect_error([&] { net.to(DType::i64); }, "[Module::to] can only convert to a floating-point dtype");
}

TEST(NnModule, RegistrationErrors) {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  expect_error([&] { m.register_parameter("w", zeros({2})); }, "[register_parameter] 'w' is already registered");
  expect_error([&] { m.register_buffer("w", zeros({2})); }, "[register_buffer] 'w' is already registered");
  expect_error([&] { m.register_module("w", std::make_shared<nn::Module>()); }, "[register_module] 'w'");
  expect_error([&] { m.register_parameter("a.b", zeros({2})); }, "must be non-empty and contain no '.'");
  expect_error([&] { m.register_parameter("i", tensor_i64({1}, {1})); }, "must be floating-point, got int64");
  expect_error([&] { m.register_module("null", std::shared_ptr<nn::Module>()); }, "is a null module");
  // A parameter made from a computed tensor is detached into a leaf; a strided one made contiguous.
  Tensor x = ones({2, 3});
  x.requires_grad_();
  Tensor p = m.register_parameter("from_op", transpose(x * 2.0, 0, 1));
  EXPECT_TRUE(p.is_leaf());
  EXPECT_TRUE(p.is_contiguous());
  EXPECT_EQ(p.shape(), (Shape{3, 2}));
}

TEST(NnModule, SequentialAndModuleList) {
  nn::Sequential seq{std::make_shared<Scale>(2.0), std::make_shared<Scale>(3.0)};
  seq.push_back(std::make_shared<nn::Dropout>(0.5));
  seq.eval();
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq.forward(tensor({1, 2}, {2})).to_vector<float>(), (std::vector<float>{6, 12}));
  EXPECT_EQ(seq(tensor({1}, {1})).to_vector<float>(), (std::vector<float>{6}));
  EXPECT_THROW(seq[3], Error);
  nn::ModuleList list;
  list.push_back(std::make_shared<nn::LayerNorm>(3));
  list.push_back(std::make_shared<nn::RMSNorm>(3));
  EXPECT_EQ(names_of(list.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias", "1.weight"}));
  EXPECT_NE(list.at<nn::RMSNorm>(1), nullptr);
  expect_error([&] { list.at<nn::Linear>(0); }, "[ModuleList] module 0 is a LayerNorm, not the requested type");
  int count = 0;
  for (const auto& m : list) count += m != nullptr;
  EXPECT_EQ(count, 2);
}

TEST(NnModule, CopyBroadcastsAndConverts) {
  Tensor dst = zeros({2, 3});
  nn::copy_(dst, tensor({1, 2, 3}, {3}, DType::f64));
  EXPECT_EQ(dst.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  Tensor p = zeros({2});
  p.requires_grad_();
  nn::copy_(p, scalar(5.0));  // allowed on a parameter: copy_ never records gradients
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{5, 5}));
  expect_error([&] { nn::copy_(dst, zeros({4})); }, "[copy_] source of shape [4] does not broadcast to destination");
  expect_error([&] { nn::copy_(transpose(dst, 0, 1), zeros({3, 2})); },
               "[copy_] destination of shape [3, 2] must be contiguous");
}
