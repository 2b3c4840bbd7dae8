// The DICOM SEG reader (mv_label_map_load) over a fuzzed SEG and the series it refers to: after
// one control byte, the input is split at each occurrence of the 8-byte separator "MVSLICE|"
// into up to 9 files (mvfuzz::split_to_files); all but the last are the source slices (read as a
// series, the image the SEG is placed on), the last is the SEG. The control byte picks the overlap
// rule, the fractional threshold and whether segment labels are mapped.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  ++data;
  --size;
  const auto dir = mvfuzz::scratch("label_map");
  std::vector<std::string> paths = mvfuzz::split_to_files(data, size, dir, 9);
  if (paths.size() < 2) return 0;
  const std::string seg = paths.back();
  paths.pop_back();
  std::vector<const char*> c_paths;
  for (const auto& p : paths) c_paths.push_back(p.c_str());
  const mv_image_load_options load = mvfuzz::load_options();
  mv_image* image = nullptr;
  if (mv_image_load_series(c_paths.data(), c_paths.size(), &load, &image) != MV_OK) {
    mv_image_free(image);
    return 0;
  }
  mv_label_map_options o;
  if (mv_label_map_options_default(&o) != MV_OK) __builtin_trap();
  static const char* const kLabels[] = {"dense bone", "soft", "whole_tumour"};
  static const int32_t kValues[] = {1, 2, 7};
  o.overlap = static_cast<int32_t>(control % 3);
  o.fractional_threshold = (control & 0x04) != 0 ? 0.9 : 0.5;
  if ((control & 0x08) != 0) {
    o.labels = kLabels;
    o.values = (control & 0x10) != 0 ? kValues : nullptr;
    o.label_count = 3;
  }
  mv_image* labels = nullptr;
  const mv_status st = mv_label_map_load(seg.c_str(), image, &o, &labels);
  mvfuzz::check_result(st, labels);
  mv_image_free(image);
  return 0;
}
