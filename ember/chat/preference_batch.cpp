// Preference rows, batches and pairwise losses (see preference_batch.h).
#include "ember/chat/preference_batch.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "ember/core/error.h"
#include "ember/ops/ops.h"
#include "ember/util/splitmix.h"


namespace ember::chat {

RankedRows render_ranked(const ChatTemplate& tmpl, const PreferenceRecord& record, int64_t max_len,
                         const std::string& where) {
  if (record.responses.size() < 2)
    fail("preferences", where, ": a preference record needs at least two ranked responses, got ",
         record.responses.size());
  if (max_len < 2) fail("preferences", "max_len must be at least 2, got ", max_len);
  const std::vector<int64_t> prompt = tmpl.render_prompt(record.prompt);
  RankedRows out;
  for (size_t i = 0; i < record.responses.size(); ++i) {
    Conversation c = record.prompt;
    c.push_back({Role::assistant, record.responses[i]});
    const RenderedChat r = tmpl.render(c);
    // render() ends the turn with "<|im_end|>\n"; generation stops at <|im_end|>,
    // so the row ends at the last assistant token.
    size_t end = r.ids.size();
    while (end > 0 && !r.mask[end - 1]) --end;
    if (end <= prompt.size() || !std::equal(prompt.begin(), prompt.end(), r.ids.begin()))
      fail("preferences", where, ": the rendered response does not extend the rendered prompt (chat template bug)");
    std::vector<int64_t> row(r.ids.begin(), r.ids.begin() + std::ptrdiff_t(end));
    int64_t start = int64_t(prompt.size());
    const int64_t reply = int64_t(end) - start;
    // One prompt token must stay: DPO's first response token is predicted from it.
    if (reply + 1 > max_len)
      fail("preferences", where, ": response ", i + 1, " is ", reply, " tokens (with <|im_end|>), too long for max_len ",
           max_len, " (at least one prompt token must remain)");
    if (int64_t(row.size()) > max_len) {
      const int64_t cut = int64_t(row.size()) - max_len;
      row.erase(row.begin(), row.begin() + std::ptrdiff_t(cut));
      start -= cut;
      out.prompt_tokens_cut += cut;
    }
    out.rows.push_back(std::move(row));
    out.response_start.push_back(start);
  }
  out.kind = record.kind;
  out.labels = record.labels;
  return out;
}

namespace {
std::string labels_key(const RankedRows& list, size_t better, size_t worse) {
  return list.labels[better] + ">" + list.labels[worse];
}
}  // namespace

PairBreakdown PairBreakdown::for_lists(const std::vector<RankedRows>& lists) {
  PairBreakdown b;
  for (const auto& l : lists) {
    if (!l.kind.empty()) b.by_kind[l.kind];
    if (l.labels.size() == l.rows.size())
      for (size_t i = 0; i < l.rows.size(); ++i)
        for (size_t j = i + 1; j < l.rows.size(); ++j) b.by_labels[labels_key(l, i, j)];
  }
  return b;
}

void PairBreakdown::add(const RankedRows& list, size_t better, size_t worse, double correct) {
  auto count = [&](std::map<std::string, Tally>& m, const std::string& key) {
    Tally& t = m.at(key);  // for_lists made every key; a missing one is a bug
    t.correct += correct;
    ++t.pairs;
  };
  if (!list.kind.empty()) count(by_kind, list.kind);
  if (list.labels.size() == list.rows.size()) count(by_labels, labels_key(list, better, worse));
}

std::vector<double> PairBreakdown::flat() const {
  std::vector<double> v;
  for (const auto* m : {&by_kind, &by_labels})
    for (const auto& [key, t] : *m) v.push_back(t.correct), v.push_back(double(t.pairs));
  return v;
}

void PairBreakdown::set_flat(const std::vector<double>& v) {
  size_t at = 0;
  for (auto* m : {&by_kind, &by_labels})
    for (auto& [key, t] : *m) t.correct = v.at(at++), t.pairs = int64_t(v.at(at++));
}

nlohmann::json PairBreakdown::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, m] : {std::pair{"by_kind", &by_kind}, std::pair{"by_labels", &by_labels}}) {
    nlohmann::json part = nlohmann::json::object();
    for (const auto& [key, t] : *m)
      if (t.pairs > 0) part[key] = {{"pairs", t.pairs}, {"accuracy", t.correct / double(t.pairs)}};
    if (!part.empty()) j[name] = part;
  }
  return j;
}

std::vector<RankedRows> render_ranked_all(const ChatTemplate& tmpl, const std::vector<PreferenceRecord>& records,
                                          int64_t max_len, const std::string& file, int64_t* cut) {
  std::vector<RankedRows> out;
  out.reserve(records.size());
  int64_t n_cut = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    out.push_back(render_ranked(tmpl, records[i], max_len, file + " record " + std::to_string(i + 1)));
    n_cut += out.back().prompt_tokens_cut > 0;
  }
  if (cut) *cut = n_cut;
  return out;
}

std::vector<const std::vector<int64_t>*> rows_in_context(const std::vector<std::vector<int64_t>>& rows, size_t from,
                                                         size_t to, size_t block,
                                                         std::vector<std::vector<int64_t>>& cut, const char* op) {
  std::vector<const std::vector<int64_t>*> out;
  cut.clear();
  cut.reserve(to - from);  // no reallocation: `out` points into it
  for (size_t i = from; i < to; ++i) {
    const std::vector<int64_t>& r = rows[i];
    if (r.empty()) fail(op, "row ", i, " is empty");
    if (r.size() > block) {
      cut.emplace_back(r.end() - std::ptrdiff_t(block), r.end());
      out.push_back(&cut.back());
    } else {
      out.push_back(&r);
    }
  }
  return out;
}

PaddedRows pad_right(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id) {
  if (rows.empty()) fail("preferences", "pad_right: no rows");
  PaddedRows p;
  for (const auto* r : rows) {
    if (r->empty()) fail("preferences", "pad_right: an empty row");
    p.width = std::max<int64_t>(p.width, int64_t(r->size()));
  }
  std::vector<int64_t> ids, last;
  ids.reserve(rows.size() * size_t(p.width));
  for (const auto* r : rows) {
    ids.insert(ids.end(), r->begin(), r->end());
    ids.insert(ids.end(), size_t(p.width) - r->size(), pad_id);
    last.push_back(int64_t(r->size()) - 1);
  }
  const int64_t B = int64_t(rows.size());
  p.idx = tensor_i64(ids, {B, p.width});
  p.last = tensor_i64(last, {B});
  return p;
}

std::vector<std::vector<size_t>> length_groups(const std::vector<const std::vector<int64_t>*>& rows, int max_groups) {
  const size_t n = rows.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows[a]->size() < rows[b]->size(); });
  const size_t G = std::max<size_t>(1, std::min<size_t>(size_t(std::max(max_groups, 1)), n));
  // cost[g][i]: fewest padded tokens for the i shortest rows in g groups; a
  // group of sorted rows (j, i] costs (i - j) * length of its longest row.
  const int64_t inf = std::numeric_limits<int64_t>::max() / 2;
  std::vector<std::vector<int64_t>> cost(G + 1, std::vector<int64_t>(n + 1, inf));
  std::vector<std::vector<size_t>> cut(G + 1, std::vector<size_t>(n + 1, 0));
  cost[0][0] = 0;
  for (size_t g = 1; g <= G; ++g)
    for (size_t i = 1; i <= n; ++i)
      for (size_t j = g - 1; j < i; ++j) {
        if (cost[g - 1][j] >= inf) continue;
        const int64_t c = cost[g - 1][j] + int64_t(i - j) * int64_t(rows[order[i - 1]]->size());
        if (c < cost[g][i]) cost[g][i] = c, cut[g][i] = j;
      }
  // Each extra pass has a fixed cost (more, smaller GEMMs): take one only when
  // it saves over 10% of the padded tokens.
  size_t best = 1;
  for (size_t g = 2; g <= G; ++g)
    if (double(cost[g][n]) < 0.9 * double(cost[best][n])) best = g;
  std::vector<std::vector<size_t>> groups(best);
  for (size_t g = best, i = n; g > 0; --g) {
    const size_t j = cut[g][i];
    groups[g - 1].assign(order.begin() + std::ptrdiff_t(j), order.begin() + std::ptrdiff_t(i));
    i = j;
  }
  return groups;
}

Tensor per_row_grouped(const std::vector<const std::vector<int64_t>*>& rows,
                       const std::function<Tensor(const std::vector<size_t>& group)>& fn, int max_groups) {
  if (rows.empty()) fail("preferences", "per_row_grouped: no rows");
  const auto groups = length_groups(rows, max_groups);
  if (groups.size() == 1) {
    std::vector<size_t> all(rows.size());
    std::iota(all.begin(), all.end(), size_t{0});
    return fn(all);
  }
  std::vector<Tensor> parts;
  std::vector<int64_t> position(rows.size());  // row -> its place in the concatenated parts
  int64_t at = 0;
  for (const auto& g : groups) {
    parts.push_back(fn(g));
    for (size_t r : g) position[r] = at++;
  }
  return index_select(concat(parts, 0), 0, tensor_i64(position, {int64_t(rows.size())}));
}

RankedPairs ranked_pairs(const std::vector<int64_t>& list_sizes, DType dtype) {
  if (list_sizes.empty()) fail("preferences", "ranked_pairs: no lists");
  std::vector<int64_t> better, worse;
  std::vector<double> weight;
  const double lists = double(list_sizes.size());
  int64_t offset = 0;
  for (int64_t k : list_sizes) {
    if (k < 2) fail("preferences", "ranked_pairs: a ranked list needs at least two responses, got ", k);
    const double w = 1.0 / (lists * double(k * (k - 1) / 2));
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = i + 1; j < k; ++j) {
        better.push_back(offset + i);
        worse.push_back(offset + j);
        weight.push_back(w);
      }
    offset += k;
  }
  RankedPairs p;
  p.count = int64_t(better.size());
  p.better = tensor_i64(better, {p.count});
  p.worse = tensor_i64(worse, {p.count});
  p.weight = tensor(weight, {p.count}, dtype);
  return p;
}

Tensor neg_log_sigmoid(const Tensor& x) {
  // log(1 + e^-x) = logsumexp(0, -x): logsumexp shifts by the max (no overflow)
  // and its gradient is a softmax, smooth at x = 0 (unlike relu/abs forms).
  return logsumexp(stack({zeros_like(x), neg(x)}, -1), {-1});
}

Tensor bradley_terry_loss(const Tensor& scores, const RankedPairs& pairs) {
  if (!scores.defined() || scores.ndim() != 1)
    fail("preferences", "bradley_terry_loss: scores must be 1-D [N]");
  const Tensor margin = index_select(scores, 0, pairs.better) - index_select(scores, 0, pairs.worse);
  return sum(pairs.weight * neg_log_sigmoid(margin));
}

Tensor dpo_implicit_rewards(const Tensor& policy_logps, const Tensor& ref_logps, double beta) {
  if (!policy_logps.defined() || !ref_logps.defined() || policy_logps.shape() != ref_logps.shape() ||
      policy_logps.ndim() != 1)
    fail("dpo", "policy and reference log-probabilities must both be 1-D of one length");
  // The reference is a constant: its gradient must never reach anything.
  return (policy_logps - ref_logps.detach()) * beta;
}

Tensor dpo_loss(const Tensor& policy_logps, const Tensor& ref_logps, const RankedPairs& pairs, double beta) {
  return bradley_terry_loss(dpo_implicit_rewards(policy_logps, ref_logps, beta), pairs);
}

Tensor response_token_nll(const Tensor& logits, const std::vector<const std::vector<int64_t>*>& rows,
                          const std::vector<int64_t>& response_start) {
  const int64_t B = int64_t(rows.size());
  if (!logits.defined() || logits.ndim() != 3 || logits.shape(0) != B || response_start.size() != rows.size())
    fail("preferences", "response log-probabilities: logits must be [", B, ", width - 1, V] for ", B, " rows");
  const int64_t n = logits.shape(1);  // width - 1 predicted positions
  std::vector<int64_t> targets(size_t(B * n), -1);
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = *rows[size_t(b)];
    if (int64_t(r.size()) > n + 1 || response_start[size_t(b)] < 1)
      fail("preferences", "response log-probabilities: row ", b, " does not fit the logits or has no prompt token");
    for (int64_t t = response_start[size_t(b)]; t < int64_t(r.size()); ++t)
      targets[size_t(b * n + t - 1)] = r[size_t(t)];
  }
  return cross_entropy(logits, tensor_i64(targets, {B, n}), -1, Reduction::none);  // 0 where ignored
}

Tensor response_logps(const Tensor& logits, const std::vector<const std::vector<int64_t>*>& rows,
                      const std::vector<int64_t>& response_start) {
  return neg(sum(response_token_nll(logits, rows, response_start), {1}));
}

std::vector<size_t> shuffled_order(size_t n, uint64_t seed, uint64_t epoch) {
  return shuffled_indices(n, seed * 0x2545F4914F6CDD1Dull + epoch);
}

std::vector<size_t> PreferenceBatches::next(size_t batch) {
  std::vector<size_t> which;
  while (which.size() < std::min(batch, n_)) {
    if (cursor_ >= order_.size()) order_ = shuffled_order(n_, seed_, epoch_++), cursor_ = 0;
    which.push_back(order_[cursor_++]);
  }
  return which;
}

void PreferenceBatches::restore(const nlohmann::json& position) {
  epoch_ = position.at("epoch").get<uint64_t>();
  cursor_ = position.at("cursor").get<size_t>();
  order_ = epoch_ > 0 ? shuffled_order(n_, seed_, epoch_ - 1) : std::vector<size_t>{};
  if (cursor_ > order_.size())
    fail("preferences", "data position: cursor ", cursor_, " is past the ", order_.size(), " lists of epoch ", epoch_);
}

Tensor rows_logps(models::GPT& model, const std::vector<const std::vector<int64_t>*>& rows,
                  const std::vector<int64_t>& starts, int64_t pad_id, bool lowest) {
  if (rows.size() != starts.size()) fail("preferences", "rows_logps: ", rows.size(), " rows but ", starts.size(), " starts");
  return per_row_grouped(rows, [&](const std::vector<size_t>& group) {
    std::vector<const std::vector<int64_t>*> sub;
    std::vector<int64_t> sub_starts;
    for (size_t r : group) sub.push_back(rows[r]), sub_starts.push_back(starts[r]);
    const PaddedRows p = pad_right(sub, pad_id);
    // The last token is only ever a target, never an input.
    const Tensor input = contiguous(narrow(p.idx, 1, 0, p.width - 1));
    const Tensor nll = response_token_nll(model.forward(input), sub, sub_starts);
    // Positions that are no response token hold 0, never above a real token's nll (>= 0).
    return neg(lowest ? max(nll, {1}) : sum(nll, {1}));
  });
}

Tensor lists_logps(models::GPT& model, const std::vector<RankedRows>& lists, const std::vector<size_t>& which,
                   int64_t pad_id, std::vector<int64_t>* sizes) {
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<int64_t> starts;
  if (sizes) sizes->clear();
  for (size_t i : which) {
    for (size_t r = 0; r < lists[i].rows.size(); ++r) {
      rows.push_back(&lists[i].rows[r]);
      starts.push_back(lists[i].response_start[r]);
    }
    if (sizes) sizes->push_back(int64_t(lists[i].rows.size()));
  }
  return rows_logps(model, rows, starts, pad_id);
}

}  // namespace ember::chat
