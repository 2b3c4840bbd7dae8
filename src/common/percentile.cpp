#include "common/percentile.hpp"

#include <algorithm>
#include <cmath>

namespace medvision {

double percentile_sorted(const std::vector<double>& v, double q) {
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

std::pair<double, double> percentiles(const float* x, int64_t n, double low, double high) {
  std::vector<float> v(x, x + n);
  v.erase(std::remove_if(v.begin(), v.end(), [](float e) { return std::isnan(e); }), v.end());
  if (v.empty()) return {0.0, 0.0};
  const auto pick = [&](double q, size_t from) {
    const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
    const auto k = static_cast<size_t>(std::floor(pos));
    std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(from),
                     v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    const double a = v[k];
    // After nth_element everything past k is >= v[k], so the next order statistic is their min.
    const double b = k + 1 < v.size() ? *std::min_element(
                                            v.begin() + static_cast<std::ptrdiff_t>(k + 1), v.end())
                                      : a;
    return std::make_pair(a + (b - a) * (pos - std::floor(pos)), k);
  };
  const auto lo = pick(low, 0);
  // The second selection may start at the first one's index when it lies above it.
  const auto hi = pick(high, high >= low ? lo.second : 0);
  return {lo.first, hi.first};
}

}  // namespace medvision
