#pragma once
// Reference label maps for an image (issue 18): a DICOM Segmentation placed on the image's grid
// (dicom_seg_reader.cpp), or any other file medvision loads, checked against the grid.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/image.hpp"

namespace medvision::io {

struct LabelMapOptions {
  // Segment labels and the label-map value each becomes (values empty: 1, 2, ...). No labels:
  // the segment number is the value.
  std::vector<std::string> labels;
  std::vector<int32_t> values;
  mv_label_overlap overlap = MV_LABEL_OVERLAP_ERROR;
  double fractional_threshold = 0.5;
};

// The label map of `path` on `image`'s grid (one channel, `image`'s geometry), as
// mv_label_map_load() documents. Throws medvision::Error naming the file.
std::unique_ptr<Image> read_label_map(const std::string& path, const Image& image,
                                      const LabelMapOptions& options);

// Whether `path` is a DICOM file of the Segmentation Storage SOP class (header only).
bool is_dicom_seg_file(const std::string& path);

}  // namespace medvision::io
