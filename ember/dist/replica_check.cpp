// The rank drift guard (see replica_check.h).
#include "ember/dist/replica_check.h"

#include <cstring>
#include <map>

#include "ember/core/error.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"

namespace ember::dist {
namespace {

constexpr uint64_t kPrime = 1099511628211ull;

uint64_t mix(uint64_t h, uint64_t word) { return (h ^ word) * kPrime; }

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() > 1 ? "ranks " : "rank ";
  for (size_t i = 0; i < ranks.size(); ++i)
    s += (i == 0 ? "" : i + 1 == ranks.size() ? " and " : ", ") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

uint64_t tensors_checksum(const std::vector<Tensor>& tensors) {
  uint64_t h = 1469598103934665603ull;
  for (const Tensor& given : tensors) {
    // (h ^ w) * odd is a bijection of h for each word w: every word counts.
    Tensor t = given.device().is_cpu() && given.is_contiguous() ? given : contiguous(to_device(given, Device::cpu()));
    const size_t bytes = t.nbytes();
    h = mix(h, bytes);
    const auto* p = static_cast<const unsigned char*>(t.raw_data());
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = mix(h, w);
    }
    if (i < bytes) {
      uint64_t w = 0;
      std::memcpy(&w, p + i, bytes - i);
      h = mix(h, w);
    }
  }
  return h;
}

void check_replicas_agree(Communicator& comm, const std::vector<Tensor>& tensors, const std::string& op,
                          const std::string& when, int label) {
  const int n = comm.size();
  if (n == 1) return;
  const uint64_t mine = tensors_checksum(tensors);
  int64_t as_signed;
  std::memcpy(&as_signed, &mine, 8);
  Tensor all = zeros({2 * int64_t(n)}, DType::i64);
  comm.all_gather(tensor_i64({int64_t(label), as_signed}, {2}), all);
  const std::vector<int64_t> v = all.to_vector<int64_t>();
  std::vector<int> labels(static_cast<size_t>(n));
  std::vector<uint64_t> sums(static_cast<size_t>(n));
  std::map<uint64_t, int> votes;
  for (int r = 0; r < n; ++r) {
    labels[size_t(r)] = int(v[size_t(2 * r)]);
    std::memcpy(&sums[size_t(r)], &v[size_t(2 * r + 1)], 8);
    ++votes[sums[size_t(r)]];
  }
  if (votes.size() == 1) return;
  // The replicas' checksum: the one most ranks hold, rank 0's on a tie.
  uint64_t agreed = sums[0];
  for (const auto& [sum, count] : votes)
    if (count > votes[agreed]) agreed = sum;
  std::vector<int> drifted, kept;
  for (int r = 0; r < n; ++r) (sums[size_t(r)] == agreed ? kept : drifted).push_back(labels[size_t(r)]);
  size_t first = 0;
  while (sums[first] == agreed) ++first;
  fail(op, when, ": the data-parallel replicas have drifted apart: the parameters on ", rank_list(drifted),
       " differ from those on ", rank_list(kept), " (checksum ", hex(sums[first]), " against ", hex(agreed),
       "); no checkpoint is written (resume from the last one)");
}

}  // namespace ember::dist
