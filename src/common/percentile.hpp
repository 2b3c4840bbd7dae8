#pragma once
// Percentiles with numpy's default ('linear') interpolation, the one copy the library uses
// (percentile windows and scales in preprocessing, the grey base of renderings, bootstrap
// confidence intervals).

#include <cstdint>
#include <utility>
#include <vector>

namespace medvision {

// numpy.percentile(v, q): v sorted ascending, non-empty and free of NaN; q in [0, 100].
double percentile_sorted(const std::vector<double>& v, double q);

// numpy.nanpercentile(x, [low, high]) of n floats: NaNs are ignored (the values need not be
// sorted; partial selection, O(n)). {0, 0} when no value is left.
std::pair<double, double> percentiles(const float* x, int64_t n, double low, double high);

}  // namespace medvision
