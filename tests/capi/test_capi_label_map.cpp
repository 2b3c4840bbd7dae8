// mv_label_map_load() through the C ABI: options, argument checks, outputs untouched on error, and
// a plain label map (NIfTI written by the library) read back on its image's grid. DICOM SEG
// objects are checked against pydicom in tests/segment/test_seg_reference.py.

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "medvision/medvision.h"

namespace {

mv_image* volume(int64_t depth, int64_t height, int64_t width, const std::vector<uint8_t>& px) {
  mv_tensor_view v{};
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_UINT8;
  v.data = px.data();
  v.ndim = 4;
  const int64_t shape[4] = {1, depth, height, width};
  for (int i = 0; i < 4; ++i) v.shape[i] = shape[i];
  v.strides[3] = 1;
  v.strides[2] = width;
  v.strides[1] = width * height;
  v.strides[0] = width * height * depth;
  mv_image* out = nullptr;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &out) == MV_OK);
  return out;
}

}  // namespace

TEST_CASE("mv_label_map_load: options and argument checks", "[capi][label_map]") {
  mv_label_map_options o;
  REQUIRE(mv_label_map_options_default(&o) == MV_OK);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.labels == nullptr);
  CHECK(o.values == nullptr);
  CHECK(o.label_count == 0);
  CHECK(o.overlap == MV_LABEL_OVERLAP_ERROR);
  CHECK(o.fractional_threshold == 0.5);
  CHECK(mv_label_map_options_init(nullptr, sizeof o) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_label_map_options_init(&o, 4) == MV_ERR_ABI_MISMATCH);
  REQUIRE(mv_label_map_options_default(&o) == MV_OK);

  const std::vector<uint8_t> px(2 * 3 * 5, 0);
  mv_image* image = volume(2, 3, 5, px);
  mv_image* out = reinterpret_cast<mv_image*>(&o);  // must stay untouched
  const auto untouched = reinterpret_cast<mv_image*>(&o);
  CHECK(mv_label_map_load(nullptr, image, nullptr, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(mv_last_error()) > 0);
  CHECK(mv_label_map_load("x.nii", nullptr, nullptr, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_label_map_load("x.nii", image, nullptr, nullptr) == MV_ERR_INVALID_ARGUMENT);
  mv_label_map_options small = o;
  small.struct_size = 4;
  CHECK(mv_label_map_load("x.nii", image, &small, &out) == MV_ERR_ABI_MISMATCH);
  mv_label_map_options bad = o;
  bad.overlap = 3;
  CHECK(mv_label_map_load("x.nii", image, &bad, &out) == MV_ERR_INVALID_ARGUMENT);
  bad = o;
  bad.fractional_threshold = 0;
  CHECK(mv_label_map_load("x.nii", image, &bad, &out) == MV_ERR_INVALID_ARGUMENT);
  bad = o;
  bad.label_count = 2;  // labels NULL
  CHECK(mv_label_map_load("x.nii", image, &bad, &out) == MV_ERR_INVALID_ARGUMENT);
  const char* labels[1] = {"a"};
  const int32_t values[1] = {0};
  bad = o;
  bad.labels = labels;
  bad.values = values;
  bad.label_count = 1;
  CHECK(mv_label_map_load("x.nii", image, &bad, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("values[0]") != std::string::npos);
  CHECK(mv_label_map_load("/nonexistent/medvision/x.nii", image, nullptr, &out) == MV_ERR_IO);
  CHECK(std::string(mv_last_error()).find("/nonexistent/medvision/x.nii") != std::string::npos);
  CHECK(out == untouched);
  mv_image_free(image);
}

TEST_CASE("mv_label_map_load: a NIfTI label map on the image's grid", "[capi][label_map]") {
  std::vector<uint8_t> lab(2 * 3 * 5);
  for (size_t i = 0; i < lab.size(); ++i) lab[i] = static_cast<uint8_t>(i % 4);
  mv_image* map = volume(2, 3, 5, lab);
  const std::string path = "capi_label_map_test.nii.gz";
  REQUIRE(mv_image_write_nifti(map, path.c_str()) == MV_OK);
  mv_image* image = volume(2, 3, 5, std::vector<uint8_t>(lab.size(), 7));
  mv_image* out = nullptr;
  REQUIRE(mv_label_map_load(path.c_str(), image, nullptr, &out) == MV_OK);
  int64_t shape[4];
  mv_image_shape(out, shape);
  CHECK((shape[0] == 1 && shape[1] == 2 && shape[2] == 3 && shape[3] == 5));
  const float* got = mv_image_data(out);
  for (size_t i = 0; i < lab.size(); ++i) CHECK(got[i] == static_cast<float>(lab[i]));
  mv_image_free(out);

  // Another grid: refused, the file named, the output untouched.
  mv_image* wider = volume(2, 3, 6, std::vector<uint8_t>(2 * 3 * 6, 0));
  out = nullptr;
  CHECK(mv_label_map_load(path.c_str(), wider, nullptr, &out) == MV_ERR_SHAPE_MISMATCH);
  CHECK(std::string(mv_last_error()).find(path) != std::string::npos);
  CHECK(out == nullptr);
  std::remove(path.c_str());
  mv_image_free(wider);
  mv_image_free(image);
  mv_image_free(map);
}
