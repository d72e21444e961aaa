// Tests of the communicator's gather-to-one-rank and split-by-colour under
// mpirun (any rank count >= 2), against hand computations: gather fills the
// root's output in rank order and leaves the other ranks' alone; split makes
// sub-communicators whose ranks follow the key and whose collectives stay
// inside the colour, beside the parent's.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/ember.h"
#include "tests/dist/dist_test_util.h"

using namespace ember;
using namespace ember::dist;
using namespace ember::dist_test;

namespace {

TEST(DistGather, OnlyTheRootReceivesInRankOrder) {
  auto c = world();
  const int n = c->size(), r = c->rank();
  for (int root : {0, n - 1}) {
    for (DType dt : {DType::f32, DType::f64, DType::i64, DType::bf16}) {
      Tensor in = ranked(dt, 3, r);
      // The others pass an undefined output, or a tensor that stays as it was.
      Tensor out = r == root ? zeros({3 * n}, dt) : (r % 2 ? Tensor() : full({5}, -1.0, dt));
      c->gather(in, out, root);
      if (r != root) {
        if (out.defined()) {
          EXPECT_EQ(out.to_vector<double>(), std::vector<double>(5, -1.0)) << dtype_name(dt);
        }
        continue;
      }
      std::vector<double> got = out.to_vector<double>();
      for (int q = 0; q < n; ++q)
        for (int i = 0; i < 3; ++i)
          EXPECT_EQ(got[size_t(3 * q + i)], 10.0 * q + i) << dtype_name(dt) << " root " << root << " chunk " << q;
    }
  }
  c->barrier();
}

TEST(DistGather, ArgumentErrorsNameTheOp) {
  auto c = world();
  const int n = c->size();
  // A root out of range fails on every rank, before anything is sent.
  std::string e = error_of([&] { c->gather(zeros({2}), zeros({2 * n}), n); });
  EXPECT_EQ(e, str_cat("[gather] rank ", n, " is out of range for ", n, " ranks"));
  // The root's output is checked on the root alone: shown on one process.
  auto one = make_local_communicator();
  e = error_of([&] { one->gather(zeros({2}), zeros({3}), 0); });
  EXPECT_EQ(e.rfind("[gather] output of shape [3] (3 elements) must have 1 x input of shape [2]", 0), 0u) << e;
  e = error_of([&] { one->gather(zeros({2}), Tensor(), 0); });
  EXPECT_EQ(e, "[gather] output on the root is undefined or has no storage");
  Tensor same = ranked(DType::f32, 2, 0), got = zeros({2});
  one->gather(same, got, 0);
  EXPECT_EQ(got.to_vector<float>(), same.to_vector<float>());
  c->barrier();
}

TEST(DistSplit, ColoursGroupRanksOrderedByKey) {
  auto c = world();
  const int n = c->size(), r = c->rank();
  // Even and odd ranks, each colour ordered from its highest world rank down.
  auto sub = c->split(r % 2, -r);
  std::vector<int> members;
  for (int q = n - 1; q >= 0; --q)
    if (q % 2 == r % 2) members.push_back(q);
  EXPECT_EQ(sub->size(), int(members.size()));
  EXPECT_EQ(sub->rank(), int(std::find(members.begin(), members.end(), r) - members.begin()));
  EXPECT_EQ(sub->backend(), c->backend());
  // A sum stays inside the colour; the parent still sums over everyone.
  Tensor in_colour = tensor({double(r)}, {1}, DType::f64), everyone = tensor({double(r)}, {1}, DType::f64);
  auto w = sub->all_reduce_async(in_colour, CommOp::sum);
  c->all_reduce(everyone, CommOp::sum);
  w->wait();
  double colour_sum = 0;
  for (int q : members) colour_sum += q;
  EXPECT_EQ(in_colour.item<double>(), colour_sum);
  EXPECT_EQ(everyone.item<double>(), n * (n - 1) / 2.0);
  // Rank 0 of the colour (its highest world rank) broadcasts to the others.
  Tensor b = tensor({double(r)}, {1}, DType::f64);
  sub->broadcast(b, 0);
  EXPECT_EQ(b.item<double>(), double(members.front()));
  // One colour and equal keys: the parent's order.
  auto same = c->split(0, 0);
  EXPECT_EQ(same->size(), n);
  EXPECT_EQ(same->rank(), r);
  EXPECT_EQ(error_of([&] { c->split(-1, 0); }), "[split] colour must be >= 0, got -1");
  c->barrier();
}

}  // namespace
