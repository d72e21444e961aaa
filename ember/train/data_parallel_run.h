// Data parallel for a training loop under `mpirun -np N` (the fine-tuning
// stages: SFT, the reward model, DPO, PPO; pretrain keeps its own loader-based
// split): this process's place in dist::world(), each rank's share of a global
// batch, the trained module wrapped in dist::DataParallel, host-side sums over
// the ranks, and the ranks' agreement on when to stop. On one process (no
// launcher) every call is the identity or a no-op, so a loop has one code path.
//
// The rules the stages follow, so that N ranks compute what one process does:
//  - the global batch is what the flags say (--batch, --rollout-batch); rank r
//    takes the contiguous share [r n / N, (r + 1) n / N) of each global
//    batch's n items (packed rows, ranked lists, rollouts), which every rank
//    can work out because every rank reads all the data;
//  - a loss that is a mean over the global batch (tokens, lists) is computed on
//    a rank as its own mean times its share of the global count times N:
//    DataParallel averages the ranks' gradients, so their mean is then exactly
//    the one-process gradient (to float32 rounding: the sums run in another
//    order);
//  - evaluation sums (losses, correct pairs) are split over the ranks by
//    evaluation batch and summed with sum(): each batch is computed exactly as
//    one process computes it, so only the order of the double-precision sum
//    differs;
//  - generation for evaluation (chat/eval.h's oracle) is split by contiguous
//    share of the prompts, each prompt keeping its one-process seed, and the
//    graded replies are gathered: every rank gets the one-process figures;
//  - rank 0 alone writes files and prints, after the ranks checked that their
//    parameters agree bitwise (check_replicas); checkpoints are the one-process
//    ones, so a run resumes on any number of ranks whose count divides the
//    global batch.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ember/dist/communicator.h"
#include "ember/dist/data_parallel.h"
#include "ember/nn/module.h"

namespace ember::train {

class DataParallelRun {
 public:
  // `op` names the stage in errors ("sft"). The communicator is dist::world().
  explicit DataParallelRun(std::string op);
  ~DataParallelRun();
  DataParallelRun(const DataParallelRun&) = delete;
  DataParallelRun& operator=(const DataParallelRun&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool lead() const { return rank_ == 0; }  // writes files, prints
  bool distributed() const { return size_ > 1; }
  dist::Communicator& comm() const { return *comm_; }  // dist::world()

  // A one-line error, the same on every rank, unless `n` divides by the rank
  // count; `flag` names where n comes from ("--batch"). When `resumed`, n came
  // from the checkpoint's trainer.json (the flag cannot change it), so the
  // error says to pick the number of ranks instead.
  void require_divisible(int64_t n, const std::string& flag, bool resumed = false) const;
  // Every rank must run with the same `options` (a fingerprint of their JSON
  // is compared with rank 0's): otherwise a one-line error on every rank
  // naming the first rank that differs and `what` ("the options").
  void require_same(const nlohmann::json& options, const std::string& what) const;

  // This rank's share [begin, end) of n items (see above).
  std::pair<int64_t, int64_t> share(int64_t n) const;
  // Evaluation split by whole batches: the starts of the batches of `batch`
  // items out of n that this rank computes (batches r, r + N, r + 2N, ...), so
  // each batch is computed exactly as one process computes it and the ranks'
  // sums add up to one process's. With dp == nullptr: every batch.
  static std::vector<size_t> my_batches(const DataParallelRun* dp, size_t n, int64_t batch) {
    const size_t first = dp ? size_t(dp->rank_) : 0, ranks = dp ? size_t(dp->size_) : 1;
    std::vector<size_t> starts;
    for (size_t b = first * size_t(batch); b < n; b += ranks * size_t(batch)) starts.push_back(b);
    return starts;
  }
  // Rank r's share, for code that lays out every rank's part.
  std::pair<int64_t, int64_t> share_of(int r, int64_t n) const;
  // This rank's share of a global batch's items (indices of lists, rows).
  template <typename T>
  std::vector<T> take_share(const std::vector<T>& global) const {
    const auto [begin, end] = share(int64_t(global.size()));
    return std::vector<T>(global.begin() + begin, global.begin() + end);
  }
  // A loss that is a mean over `global` items (tokens, lists) of which this
  // rank's `mean_loss` covers `mine`: weighted by mine / global and by the rank
  // count, so that DataParallel's average of the ranks' gradients is the
  // one-process gradient. The identity on one rank.
  Tensor weighted_loss(const Tensor& mean_loss, double mine, double global) const;

  // From now on backward averages `module`'s gradients over the ranks
  // (dist::DataParallel: rank 0's weights are broadcast after checking that
  // every rank's shapes agree). Call once, after the weights are loaded (a
  // module holding several trained ones wraps them all). Not owned: only the
  // parameters' handles are kept. No-op on one rank.
  void wrap(nn::Module& module);
  // After backward, before clipping and the optimizer step, on every rank and
  // every step (also on a rank whose share was empty and ran no backward).
  void sync_gradients();
  // Before a checkpoint, on every rank: the wrapped module's parameters must be
  // bitwise the same on every rank (dist/replica_check.h), otherwise a one-line
  // error on every rank naming the ranks that drifted and `step`. No-op on one rank.
  void check_replicas(int64_t step) const;

  // Element-wise sums over the ranks, in double; the identity on one rank.
  void sum(std::vector<double>& values) const;
  double sum(double value) const;
  double max(double value) const;
  bool any(bool flag) const { return max(flag ? 1.0 : 0.0) > 0; }
  void barrier() const;
  // Every rank's `mine` (the same length on every rank), concatenated in rank order.
  std::vector<double> all_gather(const std::vector<double>& mine) const;
  std::vector<int64_t> all_gather(const std::vector<int64_t>& mine) const;
  // Every rank's `mine` (any length, any bytes), in rank order.
  std::vector<std::string> all_gather_text(const std::string& mine) const;

 private:
  std::string op_;
  std::shared_ptr<dist::Communicator> comm_;
  int rank_ = 0, size_ = 1;
  std::unique_ptr<dist::DataParallel> ddp_;
};

}  // namespace ember::train
