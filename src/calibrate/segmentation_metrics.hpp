#pragma once
// medvision::calibrate segmentation metrics for `medvision evaluate --masks` (mv_segmentation_*):
// per case and region the Dice coefficient, the 95th-percentile Hausdorff distance between mask
// surfaces and the volume (area) error, then per model the means with case-level percentile
// bootstrap CIs and, for two or more models, a paired bootstrap of the differences. Definitions
// and the JSON layout: docs/evaluate.md ("Segmentation").

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/evaluate.hpp"

namespace medvision::calibrate {

// A label map's grid: [depth][height][width] voxels, spacing (column, row, slice) in mm.
struct MaskGrid {
  int64_t depth = 1, height = 0, width = 0;
  std::array<double, 3> spacing{{1.0, 1.0, 1.0}};
  bool spacing_known = false;
  size_t size() const { return static_cast<size_t>(depth * height * width); }
};

// 2 |A and B| / (|A| + |B|); 1 when both masks are empty.
double dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

// Surface voxels: in the mask with a face neighbour (4-connectivity in 2D, 6 in 3D) outside it or
// outside the grid (scipy.ndimage.binary_erosion with a cross and border_value=0, XOR the mask).
// A grid of depth 1 is 2D: its slices have no neighbours above or below.
std::vector<uint8_t> surface(const std::vector<uint8_t>& mask, const MaskGrid& grid);

// Exact Euclidean distance (in the grid's spacing) from every voxel to the nearest voxel where
// `feature` is non-zero (Felzenszwalb & Huttenlocher 2012, separable); +inf everywhere when there
// is no feature voxel. scipy.ndimage.distance_transform_edt(~feature, sampling=spacing).
std::vector<double> distance_to(const std::vector<uint8_t>& feature, const MaskGrid& grid);

// 95th percentile (numpy's linear interpolation) of the distances from each surface voxel of `a`
// to the surface of `b` together with those from `b`'s surface to `a`'s (the pooled symmetric
// HD95 of medpy and models/common/metrics.py). NaN when either mask is empty.
double hd95(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, const MaskGrid& grid);

// A region: the voxels whose label-map value is one of `values`.
struct RegionDef {
  std::string name;
  std::vector<int> values;
};

struct SegmentationModelInfo {
  std::string name;
  std::string version;
};

// Collects per-case metrics for every model (so that nothing image-sized is kept) and summarises
// them at the end. Label maps hold integer values 0..max_value; anything else in a reference is a
// clear error naming the case.
class SegmentationEvaluator {
 public:
  SegmentationEvaluator(std::vector<SegmentationModelInfo> models, std::vector<RegionDef> regions,
                        int max_value, const EvaluateOptions& options);

  // One case: the reference label map and one predicted label map per model, all on `grid`.
  // Every case must agree on whether the spacing is known (the units of the summary).
  void add(const std::string& case_name, const MaskGrid& grid, const float* reference,
           const std::vector<const float*>& predictions);

  size_t cases() const { return case_names_.size(); }

  // The evaluation JSON; throws MV_ERR_INVALID_ARGUMENT when no case was added.
  nlohmann::json summary() const;

 private:
  struct CaseRegion {
    double dice = 0, hd95 = 0;
    double reference = 0, prediction = 0;  // sizes in the summary's volume unit
    uint64_t reference_voxels = 0, prediction_voxels = 0;
  };
  std::vector<SegmentationModelInfo> models_;
  std::vector<RegionDef> regions_;
  int max_value_;
  EvaluateOptions options_;
  bool spacing_known_ = false;
  bool three_d_ = false;
  std::vector<std::string> case_names_;
  // [case][model][region]
  std::vector<std::vector<std::vector<CaseRegion>>> metrics_;
};

}  // namespace medvision::calibrate
