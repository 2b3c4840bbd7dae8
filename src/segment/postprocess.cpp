#include "segment/postprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/geometry.hpp"

namespace medvision::segment {

namespace {

// Flood fill from `seed` over voxels where accept(i) is true, writing `value` into labels.
template <typename Accept>
int64_t flood(int64_t seed, const Size3& s, std::vector<int32_t>& labels, int32_t value,
              std::vector<int64_t>& stack, Accept accept) {
  const int64_t plane = s[1] * s[2];
  int64_t n = 0;
  stack.clear();
  stack.push_back(seed);
  labels[static_cast<size_t>(seed)] = value;
  while (!stack.empty()) {
    const int64_t i = stack.back();
    stack.pop_back();
    ++n;
    const int64_t z = i / plane, y = (i / s[2]) % s[1], x = i % s[2];
    const auto visit = [&](int64_t j) {
      if (labels[static_cast<size_t>(j)] == 0 && accept(j)) {
        labels[static_cast<size_t>(j)] = value;
        stack.push_back(j);
      }
    };
    if (x > 0) visit(i - 1);
    if (x + 1 < s[2]) visit(i + 1);
    if (y > 0) visit(i - s[2]);
    if (y + 1 < s[1]) visit(i + s[2]);
    if (z > 0) visit(i - plane);
    if (z + 1 < s[0]) visit(i + plane);
  }
  return n;
}

}  // namespace

std::vector<int64_t> connected_components(const std::vector<uint8_t>& mask, const Size3& size,
                                          std::vector<int32_t>* out) {
  out->assign(mask.size(), 0);
  std::vector<int64_t> sizes{0};
  std::vector<int64_t> stack;
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] == 0 || (*out)[i] != 0) continue;
    const auto value = static_cast<int32_t>(sizes.size());
    sizes.push_back(flood(static_cast<int64_t>(i), size, *out, value, stack,
                          [&](int64_t j) { return mask[static_cast<size_t>(j)] != 0; }));
  }
  return sizes;
}

void keep_largest_component(std::vector<uint8_t>& mask, const Size3& size) {
  std::vector<int32_t> labels;
  const std::vector<int64_t> sizes = connected_components(mask, size, &labels);
  if (sizes.size() <= 2) return;  // empty or already one component
  const auto best =
      static_cast<int32_t>(std::max_element(sizes.begin() + 1, sizes.end()) - sizes.begin());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = labels[i] == best ? 1 : 0;
}

void fill_holes(std::vector<uint8_t>& mask, const Size3& s) {
  // Background reachable from the border (in-plane for 2D) is outside; the rest is a hole.
  std::vector<int32_t> outside(mask.size(), 0);
  std::vector<int64_t> stack;
  const auto background = [&](int64_t j) { return mask[static_cast<size_t>(j)] == 0; };
  const auto seed = [&](int64_t z, int64_t y, int64_t x) {
    const int64_t i = (z * s[1] + y) * s[2] + x;
    if (outside[static_cast<size_t>(i)] == 0 && background(i))
      flood(i, s, outside, 1, stack, background);
  };
  for (int64_t z = 0; z < s[0]; ++z) {
    const bool border_plane = s[0] > 1 && (z == 0 || z == s[0] - 1);
    for (int64_t y = 0; y < s[1]; ++y) {
      for (int64_t x = 0; x < s[2]; ++x) {
        if (border_plane || y == 0 || y == s[1] - 1 || x == 0 || x == s[2] - 1) seed(z, y, x);
      }
    }
  }
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] == 0 && outside[i] == 0) mask[i] = 1;
  }
}

RegionStats measure(const std::vector<uint8_t>& mask, const Size3& s, const Geometry& g) {
  RegionStats r;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.centroid_lps = {{nan, nan, nan}};
  r.centroid_index = {{nan, nan, nan}};
  std::vector<int32_t> labels;
  const std::vector<int64_t> sizes = connected_components(mask, s, &labels);
  r.components = static_cast<int64_t>(sizes.size()) - 1;
  if (r.components == 0) return r;
  const auto best =
      static_cast<int32_t>(std::max_element(sizes.begin() + 1, sizes.end()) - sizes.begin());
  r.largest_component_voxels = sizes[static_cast<size_t>(best)];
  r.bbox_min = {{s[2], s[1], s[0]}};
  r.bbox_max = {{-1, -1, -1}};
  std::array<double, 3> sum{{0, 0, 0}};
  size_t i = 0;
  for (int64_t z = 0; z < s[0]; ++z) {
    for (int64_t y = 0; y < s[1]; ++y) {
      for (int64_t x = 0; x < s[2]; ++x, ++i) {
        if (mask[i] == 0) continue;
        ++r.voxels;
        const std::array<int64_t, 3> idx{{x, y, z}};
        for (size_t a = 0; a < 3; ++a) {
          r.bbox_min[a] = std::min(r.bbox_min[a], idx[a]);
          r.bbox_max[a] = std::max(r.bbox_max[a], idx[a]);
        }
        if (labels[i] == best) {
          sum[0] += static_cast<double>(x);
          sum[1] += static_cast<double>(y);
          sum[2] += static_cast<double>(z);
        }
      }
    }
  }
  const double n = static_cast<double>(r.largest_component_voxels);
  for (size_t a = 0; a < 3; ++a) r.centroid_index[a] = sum[a] / n;
  const Eigen::Vector4d index(r.centroid_index[0], r.centroid_index[1], r.centroid_index[2], 1.0);
  r.centroid_lps = geometry::array((geometry::index_to_lps(g) * index).head<3>());
  const double voxel = g.spacing[0] * g.spacing[1] * g.spacing[2];
  r.spacing_known = !g.spacing_source.empty();
  if (!r.spacing_known) {
    // A placeholder 1 mm spacing: the pixel count is the measurement, never "mm2".
    r.volume_ml = s[0] > 1 ? std::numeric_limits<double>::quiet_NaN() : 0.0;
    r.area_mm2 = s[0] > 1 ? 0.0 : std::numeric_limits<double>::quiet_NaN();
  } else if (s[0] > 1) {
    r.volume_ml = static_cast<double>(r.voxels) * voxel / 1000.0;
  } else {
    r.area_mm2 = static_cast<double>(r.voxels) * g.spacing[0] * g.spacing[1];
  }
  return r;
}

}  // namespace medvision::segment
