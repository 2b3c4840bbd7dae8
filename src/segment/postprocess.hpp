#pragma once
// Post-processing of label maps: connected components (face connectivity: 4 in 2D, 6 in 3D),
// largest-component filtering, hole filling, and per-region measurements.

#include <array>
#include <cstdint>
#include <vector>

#include "common/image.hpp"

namespace medvision::segment {

using Size3 = std::array<int64_t, 3>;  // (D, H, W); a 2D map has D = 1

// Labels the connected components of `mask` (non-zero = foreground) with 1..n in `out`
// (0 = background) and returns the voxel count of each (index 0 unused).
std::vector<int64_t> connected_components(const std::vector<uint8_t>& mask, const Size3& size,
                                          std::vector<int32_t>* out);

// Keeps only the largest connected component of `mask` (ties: the first in scan order).
void keep_largest_component(std::vector<uint8_t>& mask, const Size3& size);

// Sets the holes of `mask` (background not connected to the volume's border) to 1. 2D maps
// (D = 1) are filled in-plane.
void fill_holes(std::vector<uint8_t>& mask, const Size3& size);

struct RegionStats {
  int64_t voxels = 0;
  double volume_ml = 0.0;                         // 3D (D > 1): voxels * voxel volume / 1000
  double area_mm2 = 0.0;                          // 2D (D = 1): pixels * pixel area
  std::array<int64_t, 3> bbox_min{{-1, -1, -1}};  // (column, row, slice), inclusive
  std::array<int64_t, 3> bbox_max{{-1, -1, -1}};
  int64_t components = 0;
  int64_t largest_component_voxels = 0;
  // Centroid of the largest component, as LPS mm and as (column, row, slice) index; NaN if empty.
  std::array<double, 3> centroid_lps{};
  std::array<double, 3> centroid_index{};
  // False when the grid's pixel spacing is unknown (Geometry::spacing_source empty): the area
  // (2D) or volume (3D) is then NaN and `voxels` is the measurement.
  bool spacing_known = true;
};

// Measures the region where mask != 0 on a grid with `geometry`.
RegionStats measure(const std::vector<uint8_t>& mask, const Size3& size, const Geometry& geometry);

}  // namespace medvision::segment
