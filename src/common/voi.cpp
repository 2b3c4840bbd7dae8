#include "common/voi.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/activation.hpp"

namespace medvision::voi {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double table_value(const WindowPreset& w, double x) {
  if (w.table.empty()) return 0.0;
  if (std::isnan(x)) return kNaN;
  const double out_max = std::ldexp(1.0, w.table_bits) - 1.0;
  const auto last = static_cast<double>(w.table.size() - 1);
  const double k = std::clamp(std::floor(x - w.first_mapped), 0.0, last);
  return static_cast<double>(w.table[static_cast<size_t>(k)]) / out_max;
}

// A step at `at`: 0 at or below, 1 above (NaN stays NaN).
double step(double x, double at) {
  if (std::isnan(x)) return kNaN;
  return x <= at ? 0.0 : 1.0;
}

double linear_exact(double x, double c, double w);

double linear(double x, double c, double w) {
  if (w == 1.0) return step(x, c - 0.5);  // the formula divides by w - 1: its limit
  if (!(w > 1.0)) return linear_exact(x, c, w);
  if (x <= c - 0.5 - (w - 1.0) / 2.0) return 0.0;
  if (x > c - 0.5 + (w - 1.0) / 2.0) return 1.0;
  return std::clamp((x - (c - 0.5)) / (w - 1.0) + 0.5, 0.0, 1.0);
}

double linear_exact(double x, double c, double w) {
  if (!(w > 0.0)) return step(x, c);
  if (x <= c - w / 2.0) return 0.0;
  if (x > c + w / 2.0) return 1.0;
  return std::clamp((x - c) / w + 0.5, 0.0, 1.0);
}

double sigmoid_window(double x, double c, double w) {
  if (!(w > 0.0)) return step(x, c);
  return sigmoid(4.0 * (x - c) / w);
}

template <typename F>
void map(const float* in, float* out, size_t n, F f) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(f(static_cast<double>(in[i])));
}

}  // namespace

double value(const WindowPreset& w, double x) {
  switch (w.function) {
    case MV_VOI_TABLE:
      return table_value(w, x);
    case MV_VOI_SIGMOID:
      return sigmoid_window(x, w.center, w.width);
    case MV_VOI_LINEAR_EXACT:
      return linear_exact(x, w.center, w.width);
    default:
      return linear(x, w.center, w.width);
  }
}

void apply(const WindowPreset& w, const float* in, float* out, size_t n) {
  const double c = w.center, width = w.width;
  switch (w.function) {
    case MV_VOI_TABLE:
      map(in, out, n, [&](double x) { return table_value(w, x); });
      break;
    case MV_VOI_SIGMOID:
      map(in, out, n, [=](double x) { return sigmoid_window(x, c, width); });
      break;
    case MV_VOI_LINEAR_EXACT:
      map(in, out, n, [=](double x) { return linear_exact(x, c, width); });
      break;
    default:
      map(in, out, n, [=](double x) { return linear(x, c, width); });
      break;
  }
}

bool well_formed(const WindowPreset& w) {
  switch (w.function) {
    case MV_VOI_TABLE:
      return !w.table.empty();
    case MV_VOI_LINEAR:
      return w.width >= 1.0;
    default:
      return w.width > 0.0;
  }
}

}  // namespace medvision::voi
