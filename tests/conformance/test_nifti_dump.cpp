// mv_dump: decodes one file with the public C API and writes what medvision saw, for the Python
// conformance tests (tests/conformance/test_nifti_and_raster.py) to compare with nibabel and PIL.
//
//   mv_dump INPUT OUT_PREFIX  ->  OUT_PREFIX.json (status, message, geometry, metadata) and, on
//                                 success, OUT_PREFIX.npy (float32, C order, [C, D, H, W]).
// The exit code is 0 whenever the outputs were written, whatever the decode status; a failed
// decode is data for the test, not an error of this tool. Format-agnostic, so the DICOM
// conformance tests can use it too.

#include <cstdio>
#include <cstring>
#include <string>

#include "dump_util.hpp"
#include "medvision/medvision.h"

using mvtest::json_array;
using mvtest::json_string;
using mvtest::write_npy;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: mv_dump INPUT OUT_PREFIX\n");
    return 2;
  }
  const std::string prefix = argv[2];
  mv_image* image = nullptr;
  const mv_status st = mv_image_load(argv[1], nullptr, &image);
  std::string json = "{\"status\": " + json_string(mv_status_name(st)) +
                     ", \"message\": " + json_string(mv_last_error());
  if (st == MV_OK) {
    int64_t shape[4];
    double spacing[3], origin[3], direction[9];
    mv_image_shape(image, shape);
    mv_image_spacing(image, spacing);
    mv_image_origin(image, origin);
    mv_image_direction(image, direction);
    const double shape_d[4] = {static_cast<double>(shape[0]), static_cast<double>(shape[1]),
                               static_cast<double>(shape[2]), static_cast<double>(shape[3])};
    const char* descr = mv_image_meta(image, "SeriesDescription");
    json += ", \"shape\": " + json_array(shape_d, 4) + ", \"spacing\": " + json_array(spacing, 3) +
            ", \"origin\": " + json_array(origin, 3) +
            ", \"direction\": " + json_array(direction, 9) +
            ", \"format\": " + std::to_string(mv_image_get_format(image)) +
            ", \"photometric\": " + std::to_string(mv_image_photometric(image)) +
            ", \"stored_dtype\": " + std::to_string(mv_image_stored_dtype(image)) +
            ", \"bits_stored\": " + std::to_string(mv_image_bits_stored(image)) +
            ", \"warnings\": " + std::to_string(mv_image_warning_count(image)) +
            ", \"series_description\": " + (descr ? json_string(descr) : std::string("null"));
    if (!write_npy(prefix + ".npy", mv_image_data(image), shape)) {
      std::fprintf(stderr, "mv_dump: cannot write %s.npy\n", prefix.c_str());
      mv_image_free(image);
      return 1;
    }
    mv_image_free(image);
  }
  json += "}\n";
  if (!mvtest::write_text(prefix + ".json", json)) {
    std::fprintf(stderr, "mv_dump: cannot write %s.json\n", prefix.c_str());
    return 1;
  }
  return 0;
}
