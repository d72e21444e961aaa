// Prometheus text exposition of the server's counters (see metrics.h).
#include "ember/serve/metrics.h"

#include <charconv>
#include <cmath>
#include <sstream>

namespace ember::serve {

std::string prometheus_number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(int64_t(v));
  // The shortest text that reads back as the same double: 0.1, not 0.10000000000000001.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

std::string Histogram::render(const std::string& name) const {
  std::ostringstream s;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? prometheus_number(bounds_[i]) : "+Inf";
    s << name << "_bucket{le=\"" << le << "\"} " << cumulative << "\n";
  }
  s << name << "_sum " << prometheus_number(sum_) << "\n";
  s << name << "_count " << count_ << "\n";
  return s.str();
}

// Latencies of a small model on a CPU run from milliseconds to minutes.
ServeMetrics::ServeMetrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}),
      duration_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}) {}

void ServeMetrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void ServeMetrics::add_tokens(int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += uint64_t(prompt);
  generated_tokens_ += uint64_t(generated);
}

void ServeMetrics::count_disconnect() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++disconnects_;
}

void ServeMetrics::observe_time_to_first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttft_.observe(seconds);
}

void ServeMetrics::observe_request_duration(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  duration_.observe(seconds);
}

std::string ServeMetrics::render(const EngineGauges& g) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream s;
  auto head = [&](const char* name, const char* type, const char* help) {
    s << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  head("ember_http_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, n] : requests_)
    s << "ember_http_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  head("ember_prompt_tokens_total", "counter", "Prompt tokens of accepted generation requests.");
  s << "ember_prompt_tokens_total " << prompt_tokens_ << "\n";
  head("ember_generated_tokens_total", "counter", "Tokens generated.");
  s << "ember_generated_tokens_total " << generated_tokens_ << "\n";
  head("ember_client_disconnects_total", "counter", "Streams cancelled because the client went away.");
  s << "ember_client_disconnects_total " << disconnects_ << "\n";
  head("ember_queue_depth", "gauge", "Requests waiting for a decode slot.");
  s << "ember_queue_depth " << g.queue_depth << "\n";
  head("ember_active_slots", "gauge", "Requests being decoded.");
  s << "ember_active_slots " << g.active_slots << "\n";
  head("ember_slots", "gauge", "Decode slots in the engine.");
  s << "ember_slots " << g.slots << "\n";
  head("ember_time_to_first_token_seconds", "histogram", "Time from submitting a request to its first token.");
  s << ttft_.render("ember_time_to_first_token_seconds");
  head("ember_request_duration_seconds", "histogram", "Duration of generation requests, received to finished.");
  s << duration_.render("ember_request_duration_seconds");
  return s.str();
}

}  // namespace ember::serve
