// mv_image_load_memory() on arbitrary bytes. Built three times (fuzz_load_dicom, fuzz_load_nifti,
// fuzz_load_raster) with the same entry point and a seed corpus per format family: the format is
// found from the content, so each campaign explores its family from its seeds. The first byte
// picks the frame option (all frames or frame 0/1) and whether to apply a VOI preset.

#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mv_image_load_options o = mvfuzz::load_options();
  mv_image* image = nullptr;
  mv_status st = mv_image_load_memory(data, size, &o, &image);
  mvfuzz::check_result(st, image);
  if (size > 0 && (data[0] & 0x3) == 1) {  // a second pass with options, on a quarter of inputs
    o.frame = data[size - 1] & 1;
    o.apply_voi = 0;
    image = nullptr;
    st = mv_image_load_memory(data, size, &o, &image);
    mvfuzz::check_result(st, image);
  }
  return 0;
}
