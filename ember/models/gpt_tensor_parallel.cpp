// Tensor-parallel GPT: the checks that every rank holds the same full model and
// that the heads and hidden width split, then the in-place swap of each block's
// Linears for their column- and row-parallel shards.
#include "ember/models/gpt_tensor_parallel.h"

#include <vector>

#include "ember/autograd/grad_mode.h"
#include "ember/dist/tensor_parallel.h"
#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/reduce.h"

namespace ember::models {
namespace {

constexpr const char* kOp = "tensor_parallel(GPT)";

// Raises the same error on every rank when any rank's `bad` is set (naming those
// ranks), so no rank goes on into collectives the others never reach.
void fail_together(dist::Communicator& comm, bool bad, const std::string& what) {
  Tensor mine = tensor_i64({bad ? 1 : 0}, {1});
  Tensor all = zeros({comm.size()}, DType::i64);
  comm.all_gather(mine, all);
  std::string ranks;
  auto flags = all.to_vector<int64_t>();
  for (size_t r = 0; r < flags.size(); ++r)
    if (flags[r]) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  if (!ranks.empty()) fail(kOp, "rank(s) ", ranks, " ", what);
}

// Every rank must start from the same full model, or the shards would not fit
// together: compare the shape summary, then a per-parameter sum of |values|
// (float64), with rank 0's.
void check_same_model(const GPT& model, dist::Communicator& comm) {
  NoGradGuard no_grad;
  const GPTConfig& c = model.config();
  auto params = model.named_parameters();
  int64_t total = 0;
  for (const auto& np : params) total += np.second.numel();
  std::vector<int64_t> mine = {int64_t(params.size()), total, c.n_layer, c.n_head, c.n_kv_head, c.n_embd,
                               c.vocab_size, c.mlp_hidden()};
  Tensor shape_summary = tensor_i64(mine, {int64_t(mine.size())});
  comm.broadcast(shape_summary, 0);
  fail_together(comm, shape_summary.to_vector<int64_t>() != mine,
                "have a model of another configuration than rank 0's (layers, heads, widths or vocabulary)");
  std::vector<double> sums;
  for (const auto& np : params) sums.push_back(sum(abs(cast(np.second.detach(), DType::f64))).item<double>());
  Tensor fingerprint = tensor(sums, {int64_t(sums.size())}, DType::f64);
  comm.broadcast(fingerprint, 0);
  fail_together(comm, fingerprint.to_vector<double>() != sums,
                "have weights that differ from rank 0's: build the full model with the same seed, or load the "
                "same checkpoint, on every rank");
}

}  // namespace

bool is_tensor_parallel(const GPT& model) {
  for (const auto& m : *model.transformer->h)
    if (dynamic_cast<const dist::ParallelLinear*>(static_cast<const Block&>(*m).attn->c_attn.get())) return true;
  return false;
}

void make_tensor_parallel(GPT& model, std::shared_ptr<dist::Communicator> comm) {
  EMBER_CHECK(comm != nullptr, kOp, "needs a communicator, got null");
  EMBER_CHECK(!is_tensor_parallel(model), kOp, "the model is already tensor-parallel");
  const GPTConfig& cfg = model.config();
  const int64_t n = comm->size();
  // The config is the same on every rank once check_same_model passes, so these
  // checks fail on all ranks alike.
  check_same_model(model, *comm);
  EMBER_CHECK(cfg.n_head % n == 0, kOp, "n_head = ", cfg.n_head, " does not divide by ", n,
              " ranks (each rank takes whole attention heads)");
  EMBER_CHECK(cfg.n_kv_head % n == 0, kOp, "n_kv_head = ", cfg.n_kv_head, " does not divide by ", n,
              " ranks (grouped-query attention splits the key/value heads across ranks too)");
  EMBER_CHECK(cfg.mlp_hidden() % n == 0, kOp, "MLP hidden width ", cfg.mlp_hidden(), " does not divide by ", n,
              " ranks");

  for (const auto& m : *model.transformer->h) {
    Block& block = static_cast<Block&>(*m);
    nn::CausalSelfAttention& attn = *block.attn;
    const int64_t D = attn.head_dim;
    // q | k | v as three blocks: each rank keeps heads [r H/n, (r+1) H/n) of q
    // and [r Hkv/n, (r+1) Hkv/n) of k and v, so local query head i still maps
    // to local kv head i / (H / Hkv) as in the full model.
    auto c_attn = std::make_shared<dist::ColumnParallelLinear>(
        *attn.c_attn, comm, std::vector<int64_t>{attn.n_head * D, attn.n_kv_head * D, attn.n_kv_head * D});
    auto attn_proj = std::make_shared<dist::RowParallelLinear>(*attn.c_proj, comm);
    attn.c_attn = attn.replace_module("c_attn", c_attn);
    attn.c_proj = attn.replace_module("c_proj", attn_proj);
    attn.n_head /= n;
    attn.n_kv_head /= n;

    nn::MLP& mlp = *block.mlp;
    std::vector<int64_t> fc_blocks = mlp.activation == nn::Activation::swiglu
                                         ? std::vector<int64_t>{mlp.hidden, mlp.hidden}  // gate | value
                                         : std::vector<int64_t>{mlp.hidden};
    auto c_fc = std::make_shared<dist::ColumnParallelLinear>(*mlp.c_fc, comm, fc_blocks);
    auto mlp_proj = std::make_shared<dist::RowParallelLinear>(*mlp.c_proj, comm);
    mlp.c_fc = mlp.replace_module("c_fc", c_fc);
    mlp.c_proj = mlp.replace_module("c_proj", mlp_proj);
    mlp.hidden /= n;
  }
}

}  // namespace ember::models
