// The ember half of the preference-loss conformance test (driven by
// preference_losses.py):
//   preference_losses_tool --inputs FILE --out FILE
// For each case <c> in the inputs (tensors "<c>.scores", "<c>.policy",
// "<c>.ref" [N] and "<c>.sizes" int64 [L], the ranked lists' sizes; "<c>.beta"
// a one-element tensor), computes in the inputs' dtype
//   <c>.bt_loss, <c>.bt_grad    bradley_terry_loss(scores) and d/d scores
//   <c>.dpo_loss, <c>.dpo_grad  dpo_loss(policy, ref, beta) and d/d policy
// and <c>.dpo_ref_grad_defined (0: the reference received no gradient).
// Python compares everything; this tool only computes.
#include <iostream>
#include <set>
#include <string>

#include "ember/chat/preference_batch.h"
#include "ember/ember.h"

using namespace ember;

namespace {

int run(const std::string& inputs, const std::string& out_path) {
  const TensorMap in = load_safetensors(inputs).tensors;
  std::set<std::string> cases;
  for (const auto& [name, t] : in) cases.insert(name.substr(0, name.find('.')));
  TensorMap out;
  for (const std::string& c : cases) {
    const std::vector<int64_t> sizes = in.at(c + ".sizes").to_vector<int64_t>();
    Tensor scores = in.at(c + ".scores").detach();
    const chat::RankedPairs pairs = chat::ranked_pairs(sizes, scores.dtype());
    scores.requires_grad_();
    Tensor bt = chat::bradley_terry_loss(scores, pairs);
    bt.backward();
    out.emplace(c + ".bt_loss", bt.detach());
    out.emplace(c + ".bt_grad", scores.grad());

    Tensor policy = in.at(c + ".policy").detach(), ref = in.at(c + ".ref").detach();
    policy.requires_grad_();
    ref.requires_grad_();
    const double beta = in.at(c + ".beta").to_vector<double>().at(0);
    Tensor dpo = chat::dpo_loss(policy, ref, pairs, beta);
    dpo.backward();
    out.emplace(c + ".dpo_loss", dpo.detach());
    out.emplace(c + ".dpo_grad", policy.grad());
    out.emplace(c + ".dpo_ref_grad_defined", tensor({ref.grad().defined() ? 1.0 : 0.0}, {1}));
    std::cout << "ember: " << c << ": " << pairs.count << " pairs, bt " << bt.item<double>() << ", dpo "
              << dpo.item<double>() << "\n";
  }
  save_safetensors(out_path, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string inputs, out;
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string flag = argv[i];
      if (flag == "--inputs") inputs = argv[i + 1];
      else if (flag == "--out") out = argv[i + 1];
      else fail("preference_losses_tool", "unknown flag '", flag, "'");
    }
    if (inputs.empty() || out.empty()) {
      std::cerr << "usage: preference_losses_tool --inputs FILE --out FILE\n";
      return 2;
    }
    return run(inputs, out);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
