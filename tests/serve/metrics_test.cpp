// The /metrics exposition: Prometheus text format, exact lines.
#include <gtest/gtest.h>

#include <sstream>

#include "ember/serve/metrics.h"

namespace ember::serve {
namespace {

TEST(Metrics, HistogramIsCumulativeWithInfSumAndCount) {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(0.5);
  h.observe(7);
  EXPECT_EQ(h.render("lat"),
            "lat_bucket{le=\"0.1\"} 2\n"
            "lat_bucket{le=\"1\"} 3\n"
            "lat_bucket{le=\"+Inf\"} 4\n"
            "lat_sum 7.65\n"
            "lat_count 4\n");
}

TEST(Metrics, NumbersInPrometheusForm) {
  EXPECT_EQ(prometheus_number(3), "3");
  EXPECT_EQ(prometheus_number(0.25), "0.25");
  EXPECT_EQ(prometheus_number(1.0 / 0.0), "+Inf");
}

TEST(Metrics, RendersEveryFamilyWithHelpAndType) {
  ServeMetrics m;
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 200);
  m.count_request("/v1/chat/completions", 400);
  m.count_request("/health", 200);
  m.add_tokens(10, 4);
  m.count_disconnect();
  m.observe_time_to_first_token(0.02);
  m.observe_request_duration(0.3);
  const std::string text = m.render({2, 1, 4});
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("# TYPE ember_http_requests_total counter"));
  EXPECT_TRUE(has("ember_http_requests_total{endpoint=\"/health\",status=\"200\"} 1"));
  EXPECT_TRUE(has("ember_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2"));
  EXPECT_TRUE(has("ember_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"} 1"));
  EXPECT_TRUE(has("ember_prompt_tokens_total 10"));
  EXPECT_TRUE(has("ember_generated_tokens_total 4"));
  EXPECT_TRUE(has("ember_client_disconnects_total 1"));
  EXPECT_TRUE(has("# TYPE ember_queue_depth gauge"));
  EXPECT_TRUE(has("ember_queue_depth 2"));
  EXPECT_TRUE(has("ember_active_slots 1"));
  EXPECT_TRUE(has("ember_slots 4"));
  EXPECT_TRUE(has("# TYPE ember_time_to_first_token_seconds histogram"));
  EXPECT_TRUE(has("ember_time_to_first_token_seconds_bucket{le=\"0.025\"} 1"));
  EXPECT_TRUE(has("ember_time_to_first_token_seconds_bucket{le=\"0.01\"} 0"));
  EXPECT_TRUE(has("ember_time_to_first_token_seconds_count 1"));
  EXPECT_TRUE(has("ember_request_duration_seconds_bucket{le=\"+Inf\"} 1"));
  // Every sample line belongs to a family announced by # HELP and # TYPE.
  std::istringstream lines(text);
  std::string line, family;
  int help = 0, type = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) ++help;
    if (line.rfind("# TYPE ", 0) == 0) {
      ++type;
      family = line.substr(7, line.find(' ', 7) - 7);
    } else if (line[0] != '#') {
      EXPECT_EQ(line.rfind(family, 0), 0u) << line;
    }
  }
  EXPECT_EQ(help, 9);
  EXPECT_EQ(type, 9);
}

}  // namespace
}  // namespace ember::serve
