// Small statistics over timings: the median that every benchmark reports
// (noisy hosts make the mean meaningless).
#pragma once

#include <algorithm>
#include <vector>

namespace ember {

// The median of `v` (the upper one of an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace ember
