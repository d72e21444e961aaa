// Data parallel for the fine-tuning loops (see data_parallel_run.h).
#include "ember/train/data_parallel_run.h"

#include <algorithm>
#include <cstring>

#include "ember/core/error.h"
#include "ember/dist/replica_check.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"

namespace ember::train {

namespace {

// FNV-1a of a string, kept to 62 bits so it travels as a positive int64.
int64_t fingerprint(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return int64_t(h >> 2);
}

}  // namespace

DataParallelRun::DataParallelRun(std::string op) : op_(std::move(op)), comm_(dist::world()) {
  rank_ = comm_->rank();
  size_ = comm_->size();
}

DataParallelRun::~DataParallelRun() = default;

void DataParallelRun::require_divisible(int64_t n, const std::string& flag, bool resumed) const {
  if (n % size_ == 0) return;
  if (resumed)
    fail(op_, "--resume: the run's ", flag, " ", n, " (from its trainer.json) does not divide by the ", size_,
         " ranks (resume it on a number of ranks that divides ", n, ")");
  fail(op_, flag, " ", n, " does not divide by the ", size_,
       " ranks (each rank takes an equal share of the global batch; choose a multiple of ", size_,
       " or another number of ranks)");
}

void DataParallelRun::require_same(const nlohmann::json& options, const std::string& what) const {
  if (size_ == 1) return;
  const std::vector<int64_t> all = all_gather(std::vector<int64_t>{fingerprint(options.dump())});
  for (int r = 1; r < size_; ++r)
    if (all[size_t(r)] != all[0])
      fail(op_, "rank ", r, " runs with other ", what, " than rank 0 (every rank must be started with the same "
           "command line and files)");
}

std::pair<int64_t, int64_t> DataParallelRun::share_of(int r, int64_t n) const {
  return {n * r / size_, n * (r + 1) / size_};
}

std::pair<int64_t, int64_t> DataParallelRun::share(int64_t n) const { return share_of(rank_, n); }

Tensor DataParallelRun::weighted_loss(const Tensor& mean_loss, double mine, double global) const {
  if (size_ == 1) return mean_loss;
  return mean_loss * scalar(mine * double(size_) / global, mean_loss.dtype());
}

void DataParallelRun::wrap(nn::Module& module) {
  if (size_ == 1) return;
  if (ddp_) fail(op_, "DataParallelRun::wrap: a module is wrapped already (wrap one module holding all trained ones)");
  // A handle that does not own the module: the caller keeps it alive.
  ddp_ = std::make_unique<dist::DataParallel>(std::shared_ptr<nn::Module>(std::shared_ptr<void>(), &module), comm_);
}

void DataParallelRun::sync_gradients() {
  if (ddp_) ddp_->finish_gradient_sync();
}

void DataParallelRun::check_replicas(int64_t step) const {
  if (ddp_) dist::check_replicas_agree(*comm_, ddp_->module().parameters(), op_, "step " + std::to_string(step), rank_);
}

void DataParallelRun::sum(std::vector<double>& values) const {
  if (size_ == 1 || values.empty()) return;
  Tensor t = tensor(values, {int64_t(values.size())}, DType::f64);
  comm_->all_reduce(t, dist::CommOp::sum);
  values = t.to_vector<double>();
}

double DataParallelRun::sum(double value) const {
  std::vector<double> v{value};
  sum(v);
  return v[0];
}

double DataParallelRun::max(double value) const {
  if (size_ == 1) return value;
  Tensor t = tensor({value}, {1}, DType::f64);
  comm_->all_reduce(t, dist::CommOp::max);
  return t.item<double>();
}

void DataParallelRun::barrier() const {
  if (size_ > 1) comm_->barrier();
}

std::vector<double> DataParallelRun::all_gather(const std::vector<double>& mine) const {
  if (size_ == 1) return mine;
  Tensor in = tensor(mine, {int64_t(mine.size())}, DType::f64);
  Tensor out = zeros({int64_t(mine.size()) * size_}, DType::f64);
  comm_->all_gather(in, out);
  return out.to_vector<double>();
}

std::vector<int64_t> DataParallelRun::all_gather(const std::vector<int64_t>& mine) const {
  if (size_ == 1) return mine;
  Tensor in = tensor_i64(mine, {int64_t(mine.size())});
  Tensor out = zeros({int64_t(mine.size()) * size_}, DType::i64);
  comm_->all_gather(in, out);
  return out.to_vector<int64_t>();
}

std::vector<std::string> DataParallelRun::all_gather_text(const std::string& mine) const {
  if (size_ == 1) return {mine};
  // The lengths first, then the bytes packed eight to an int64, padded to the longest.
  const std::vector<int64_t> lengths = all_gather(std::vector<int64_t>{int64_t(mine.size())});
  const size_t words = size_t((*std::max_element(lengths.begin(), lengths.end()) + 7) / 8);
  std::vector<int64_t> packed(words, 0);
  if (!mine.empty()) std::memcpy(packed.data(), mine.data(), mine.size());
  const std::vector<int64_t> all = words > 0 ? all_gather(packed) : std::vector<int64_t>{};
  std::vector<std::string> out(static_cast<size_t>(size_));
  for (size_t r = 0; r < out.size(); ++r) {
    out[r].resize(size_t(lengths[r]));
    if (!out[r].empty()) std::memcpy(out[r].data(), all.data() + r * words, out[r].size());
  }
  return out;
}

}  // namespace ember::train
