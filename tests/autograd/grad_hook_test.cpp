// Tests for post-accumulate-grad hooks (autograd/engine.h): a hook fires once
// per backward after the leaf's gradient is complete (also for a leaf used by
// several ops), in reverse order of use, not for leaves without a gradient,
// not under grad(), and can be removed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ember/ember.h"

using namespace ember;

namespace {

TEST(GradHook, FiresOnceWithTheCompleteGradientOfASharedLeaf) {
  Tensor w = tensor({1, 2, 3}, {3}).requires_grad_();
  Tensor x = tensor({4, 5, 6}, {3});
  std::vector<std::vector<float>> seen;
  register_post_accumulate_grad_hook(w, [&](const Tensor& leaf) { seen.push_back(leaf.grad().to_vector<float>()); });
  // w is used by three ops: d/dw sum(w*x + w*w + w) = x + 2w + 1.
  Tensor loss = sum(add(add(mul(w, x), mul(w, w)), w));
  loss.backward();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<float>{7, 10, 13}));
  EXPECT_EQ(w.grad().to_vector<float>(), seen[0]);
}

TEST(GradHook, FiresInReverseOrderOfUseDuringBackward) {
  // A chain a -> b -> c: c's gradient is ready first, a's last; each hook runs
  // before the vjps of earlier layers (that is what lets communication overlap).
  Tensor a = scalar(2).requires_grad_(), b = scalar(3).requires_grad_(), c = scalar(4).requires_grad_();
  std::vector<std::string> order;
  register_post_accumulate_grad_hook(a, [&](const Tensor&) { order.push_back("a"); });
  register_post_accumulate_grad_hook(b, [&](const Tensor&) { order.push_back("b"); });
  register_post_accumulate_grad_hook(c, [&](const Tensor&) { order.push_back("c"); });
  Tensor h = tanh(mul(a, scalar(0.1)));
  h = tanh(mul(h, b));
  h = mul(h, c);
  h.backward();
  EXPECT_EQ(order, (std::vector<std::string>{"c", "b", "a"}));
}

TEST(GradHook, AccumulatesAcrossBackwardsAndSkipsUnreachedLeaves) {
  Tensor w = tensor({1, 2}, {2}).requires_grad_();
  Tensor unused = tensor({1}, {1}).requires_grad_();
  int w_calls = 0, unused_calls = 0;
  std::vector<float> last;
  register_post_accumulate_grad_hook(w, [&](const Tensor& leaf) {
    ++w_calls;
    last = leaf.grad().to_vector<float>();
  });
  register_post_accumulate_grad_hook(unused, [&](const Tensor&) { ++unused_calls; });
  sum(mul(w, w)).backward();
  sum(mul(w, w)).backward();
  EXPECT_EQ(w_calls, 2);
  EXPECT_EQ(last, (std::vector<float>{4, 8}));  // the hook sees the accumulated .grad
  EXPECT_EQ(unused_calls, 0);
}

TEST(GradHook, LeafRootAndGradAndRemoval) {
  Tensor w = tensor({5}, {1}).requires_grad_();
  int calls = 0;
  int64_t id = register_post_accumulate_grad_hook(w, [&](const Tensor&) { ++calls; });
  w.backward(tensor({1}, {1}));  // the root itself is the leaf
  EXPECT_EQ(calls, 1);
  (void)ember::grad({sum(mul(w, w))}, {w});  // returns gradients, accumulates nothing
  EXPECT_EQ(calls, 1);
  remove_post_accumulate_grad_hook(w, id);
  sum(mul(w, w)).backward();
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(register_post_accumulate_grad_hook(mul(w, w), [](const Tensor&) {}), Error);
}

}  // namespace
