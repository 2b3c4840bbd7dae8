#pragma once
// Synthetic inputs for the writer tests, shared by the Catch2 tests and the writers_tool that the
// Python (nibabel / pydicom) checks drive. tests/conformance/test_writers.py restates the same
// formulas independently: keep them in step.

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/image.hpp"

namespace mvtest {

// An oblique, anisotropic volume: channels x 6 x 7 x 5 (depth, height, width), value
// c*1000 + k*100 + j*10 + i, direction = Rz(30 deg) * Rx(20 deg), spacing 0.7 x 0.9 x 2.5 mm,
// LPS origin (-12.5, 30.25, -100).
inline medvision::Image oblique_image(int64_t channels) {
  medvision::Image im(channels, 6, 7, 5, medvision::kDefaultMaxValues, "fixture");
  float* p = im.data();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t k = 0; k < 6; ++k)
      for (int64_t j = 0; j < 7; ++j)
        for (int64_t i = 0; i < 5; ++i) *p++ = static_cast<float>(c * 1000 + k * 100 + j * 10 + i);
  constexpr double kPi = 3.14159265358979323846;
  const double a = 30.0 * kPi / 180.0, b = 20.0 * kPi / 180.0;
  const double rz[9] = {std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0, 0, 0, 1};
  const double rx[9] = {1, 0, 0, 0, std::cos(b), -std::sin(b), 0, std::sin(b), std::cos(b)};
  for (int r = 0; r < 3; ++r)
    for (int col = 0; col < 3; ++col) {
      double v = 0;
      for (int t = 0; t < 3; ++t) v += rz[r * 3 + t] * rx[t * 3 + col];
      im.geometry.direction[static_cast<size_t>(r * 3 + col)] = v;
    }
  im.geometry.spacing = {0.7, 0.9, 2.5};
  im.geometry.origin = {-12.5, 30.25, -100.0};
  im.format = MV_FORMAT_PIXELS;
  return im;
}

// Segment 1: rows 8-15 x columns 8-15 on slices 1-2; segment 2: rows 18-27 x columns 4-19 on
// slices 2-3 (on slice 2 both are present, apart). Slices 0 and 4 are empty.
inline int fixture_label(int64_t k, int64_t y, int64_t x) {
  if (k >= 1 && k <= 2 && y >= 8 && y <= 15 && x >= 8 && x <= 15) return 1;
  if (k >= 2 && k <= 3 && y >= 18 && y <= 27 && x >= 4 && x <= 19) return 2;
  return 0;
}

// A label map on `source`'s grid and geometry (expects at least 4 slices of 32 x 32 or more).
inline medvision::Image fixture_label_map(const medvision::Image& source) {
  medvision::Image m(1, source.depth(), source.height(), source.width(),
                     medvision::kDefaultMaxValues, "labels");
  float* p = m.data();
  for (int64_t k = 0; k < m.depth(); ++k)
    for (int64_t y = 0; y < m.height(); ++y)
      for (int64_t x = 0; x < m.width(); ++x) *p++ = static_cast<float>(fixture_label(k, y, x));
  m.geometry = source.geometry;
  return m;
}

// An RGB test pattern, interleaved: (7x mod 256, 5y mod 256, x + y mod 256).
inline std::vector<uint8_t> fixture_rgb(int64_t height, int64_t width) {
  std::vector<uint8_t> rgb;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      rgb.push_back(static_cast<uint8_t>((7 * x) % 256));
      rgb.push_back(static_cast<uint8_t>((5 * y) % 256));
      rgb.push_back(static_cast<uint8_t>((x + y) % 256));
    }
  return rgb;
}

}  // namespace mvtest
