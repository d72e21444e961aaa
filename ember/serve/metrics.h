// The server's counters in Prometheus' text exposition format (GET /metrics):
//
//   ember_http_requests_total{endpoint,status}  counter   answered requests
//   ember_prompt_tokens_total                   counter   tokens of accepted prompts
//   ember_generated_tokens_total                counter   tokens generated
//   ember_client_disconnects_total              counter   streams whose client went away
//   ember_queue_depth                           gauge     requests waiting for a slot
//   ember_active_slots                          gauge     requests being decoded
//   ember_slots                                 gauge     decode slots in the engine
//   ember_time_to_first_token_seconds           histogram submit -> first token
//   ember_request_duration_seconds              histogram generation request, start -> end
//
// Thread-safe. Endpoints are labelled by route, and unknown paths share the
// label "other", so a scanner cannot grow the label set without bound.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ember::serve {

// A cumulative histogram with fixed upper bounds (le), plus +Inf, sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // The `_bucket`, `_sum` and `_count` lines of metric `name`.
  std::string render(const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct EngineGauges {
  int64_t queue_depth = 0, active_slots = 0, slots = 0;
};

class ServeMetrics {
 public:
  ServeMetrics();
  void count_request(const std::string& endpoint, int status);
  void add_tokens(int64_t prompt, int64_t generated);
  void count_disconnect();
  void observe_time_to_first_token(double seconds);
  void observe_request_duration(double seconds);
  // The whole exposition, gauges read by the caller from the engine.
  std::string render(const EngineGauges& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0, disconnects_ = 0;
  Histogram ttft_, duration_;
};

// Prometheus number formatting: integers without a fraction, +Inf as "+Inf".
std::string prometheus_number(double value);

}  // namespace ember::serve
