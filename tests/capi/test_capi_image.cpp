// mv_image through the C ABI: argument checks, options struct sizes, from_pixels, NULL-safety.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "medvision/medvision.h"

TEST_CASE("capi image: NULL arguments give MV_ERR_INVALID_ARGUMENT and a message", "[capi]") {
  mv_image* img = reinterpret_cast<mv_image*>(0x1);
  REQUIRE(mv_image_load(nullptr, nullptr, &img) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(img == reinterpret_cast<mv_image*>(0x1));
  REQUIRE(std::string(mv_last_error()).find("path") != std::string::npos);
  REQUIRE(mv_image_load("x", nullptr, nullptr) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_image_load_memory(nullptr, 10, nullptr, &img) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_image_load_series(nullptr, 1, nullptr, &img) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_image_from_pixels(nullptr, nullptr, &img) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(img == reinterpret_cast<mv_image*>(0x1));
}

TEST_CASE("capi image: free functions and getters accept NULL", "[capi]") {
  mv_image_free(nullptr);
  int64_t shape[4] = {9, 9, 9, 9};
  mv_image_shape(nullptr, shape);
  REQUIRE(shape[0] == 0);
  REQUIRE(mv_image_data(nullptr) == nullptr);
  REQUIRE(mv_image_meta(nullptr, "Modality") == nullptr);
  REQUIRE(mv_image_warning(nullptr, 0) == nullptr);
  REQUIRE(mv_image_window_count(nullptr) == 0);
}

TEST_CASE("capi image: mv_image_meta_key lists the allow-list, without PHI", "[capi]") {
  std::vector<std::string> keys;
  for (size_t i = 0; const char* k = mv_image_meta_key(i); ++i) {
    REQUIRE(keys.size() < 1000);
    keys.emplace_back(k);
  }
  REQUIRE(keys.size() == 14);
  CHECK(keys.front() == "Modality");
  CHECK(mv_image_meta_key(keys.size()) == nullptr);
  CHECK(mv_image_meta_key(static_cast<size_t>(-1)) == nullptr);
  for (const auto& k : keys) {
    CHECK(k.find("Patient") == std::string::npos);
    CHECK(std::count(keys.begin(), keys.end(), k) == 1);
  }
  CHECK(std::find(keys.begin(), keys.end(), "NumberOfFrames") != keys.end());
  // A DICOM file: the values mv_image_meta() returns are under listed keys.
  const char* src = std::getenv("MV_SOURCE_DIR");
  if (src == nullptr) return;
  mv_image* img = nullptr;
  const std::string path = std::string(src) + "/examples/data/cxr-example.dcm";
  REQUIRE(mv_image_load(path.c_str(), nullptr, &img) == MV_OK);
  CHECK(mv_image_meta(img, "Modality") != nullptr);
  CHECK(mv_image_meta(img, "PatientName") == nullptr);
  size_t present = 0;
  for (const auto& k : keys) present += mv_image_meta(img, k.c_str()) != nullptr;
  CHECK(present >= 5);
  mv_image_free(img);
}

TEST_CASE("capi image: options struct_size too small is refused, larger is accepted", "[capi]") {
  mv_image_load_options o;
  REQUIRE(mv_image_load_options_init(&o, 4) == MV_ERR_ABI_MISMATCH);
  REQUIRE(mv_image_load_options_init(nullptr, sizeof o) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_image_load_options_default(&o) == MV_OK);
  REQUIRE(o.struct_size == sizeof o);
  REQUIRE(o.frame == -1);
  REQUIRE(o.apply_voi == -1);

  // A newer client with a larger struct: extra bytes are ignored.
  struct Bigger {
    mv_image_load_options base;
    uint64_t future_field;
  } big;
  std::memset(&big, 0xAB, sizeof big);
  REQUIRE(mv_image_load_options_init(&big.base, sizeof big) == MV_OK);
  REQUIRE(big.future_field == 0);

  // A too-small struct passed to a loader is refused before anything is read.
  mv_image_load_options small;
  REQUIRE(mv_image_load_options_default(&small) == MV_OK);
  small.struct_size = 8;
  mv_image* img = nullptr;
  const uint8_t bytes[4] = {1, 2, 3, 4};
  REQUIRE(mv_image_load_memory(bytes, sizeof bytes, &small, &img) == MV_ERR_ABI_MISMATCH);
  REQUIRE(img == nullptr);
}

TEST_CASE("capi image: unknown content is MV_ERR_UNSUPPORTED_FORMAT naming the input", "[capi]") {
  const char junk[] = "this is not an image at all, just some text of some length..........";
  mv_image* img = nullptr;
  REQUIRE(mv_image_load_memory(junk, sizeof junk, nullptr, &img) == MV_ERR_UNSUPPORTED_FORMAT);
  REQUIRE(std::string(mv_last_error()).find("<memory>") != std::string::npos);
  REQUIRE(mv_image_load_memory(junk, 0, nullptr, &img) == MV_ERR_CORRUPT_DATA);
  REQUIRE(img == nullptr);
}

TEST_CASE("capi image: from_pixels copies interleaved RGB into planar float", "[capi]") {
  const uint8_t rgb[2][3][3] = {{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}},
                                {{10, 11, 12}, {13, 14, 15}, {16, 17, 18}}};
  mv_tensor_view v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_UINT8;
  v.data = rgb;
  v.ndim = 3;
  v.shape[0] = 2;
  v.shape[1] = 3;
  v.shape[2] = 3;
  v.strides[0] = 9;
  v.strides[1] = 3;
  v.strides[2] = 1;
  mv_image_geometry g;
  REQUIRE(mv_image_geometry_init(&g, sizeof g) == MV_OK);
  g.spacing[0] = 0.5;
  g.spacing[1] = 0.25;
  mv_image* img = nullptr;
  REQUIRE(mv_image_from_pixels(&v, &g, &img) == MV_OK);
  int64_t shape[4];
  mv_image_shape(img, shape);
  REQUIRE(shape[0] == 3);
  REQUIRE(shape[1] == 1);
  REQUIRE(shape[2] == 2);
  REQUIRE(shape[3] == 3);
  const float* p = mv_image_data(img);
  REQUIRE(p[0] == 1.0f);        // R of (0,0)
  REQUIRE(p[6] == 2.0f);        // G of (0,0)
  REQUIRE(p[12 + 5] == 18.0f);  // B of (1,2)
  REQUIRE(mv_image_photometric(img) == MV_PHOTOMETRIC_RGB);
  REQUIRE(mv_image_get_format(img) == MV_FORMAT_PIXELS);
  double sp[3];
  mv_image_spacing(img, sp);
  REQUIRE(sp[0] == 0.5);
  REQUIRE(sp[1] == 0.25);
  mv_tensor_view out;
  out.struct_size = sizeof out;
  REQUIRE(mv_image_view(img, &out) == MV_OK);
  REQUIRE(out.ndim == 4);
  REQUIRE(out.strides[3] == 4);
  REQUIRE(out.strides[0] == 4 * 6);
  REQUIRE(out.data == p);
  mv_image_free(img);
}

TEST_CASE("capi image: from_pixels handles strided signed 16-bit and rejects bad input", "[capi]") {
  // A 2x2 view into every other column of a 2x4 buffer.
  const int16_t buf[2][4] = {{-1000, 7, 2000, 7}, {30000, 7, -32768, 7}};
  mv_tensor_view v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_INT16;
  v.data = buf;
  v.ndim = 2;
  v.shape[0] = 2;
  v.shape[1] = 2;
  v.strides[0] = 8;
  v.strides[1] = 4;
  mv_image* img = nullptr;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &img) == MV_OK);
  const float* p = mv_image_data(img);
  REQUIRE(p[0] == -1000.0f);
  REQUIRE(p[1] == 2000.0f);
  REQUIRE(p[2] == 30000.0f);
  REQUIRE(p[3] == -32768.0f);
  REQUIRE(mv_image_photometric(img) == MV_PHOTOMETRIC_MONOCHROME2);
  REQUIRE(mv_image_stored_dtype(img) == MV_DTYPE_INT16);
  mv_image_free(img);

  mv_image* bad = nullptr;
  v.dtype = 99;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &bad) == MV_ERR_INVALID_ARGUMENT);
  v.dtype = MV_DTYPE_INT16;
  v.shape[0] = 0;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &bad) == MV_ERR_INVALID_ARGUMENT);
  v.shape[0] = 2;
  v.ndim = 5;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &bad) == MV_ERR_INVALID_ARGUMENT);
  v.ndim = 2;
  v.struct_size = 4;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &bad) == MV_ERR_ABI_MISMATCH);
  REQUIRE(bad == nullptr);
  REQUIRE(mv_image_window(nullptr, 0, nullptr, nullptr, nullptr) == MV_ERR_INVALID_ARGUMENT);
}

TEST_CASE("capi image: write_nifti picks an exact type, round-trips, and reports errors",
          "[capi][writers]") {
  // Integers beyond uint8: written as int16 and read back unchanged.
  const int16_t buf[2][3] = {{-1000, 0, 7}, {300, 2000, -32768}};
  mv_tensor_view v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_INT16;
  v.data = buf;
  v.ndim = 2;
  v.shape[0] = 2;
  v.shape[1] = 3;
  v.strides[0] = 6;
  v.strides[1] = 2;
  mv_image* img = nullptr;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &img) == MV_OK);
  const std::string dir = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  const std::string path = dir + "/mv_capi_write.nii.gz";
  REQUIRE(mv_image_write_nifti(img, path.c_str()) == MV_OK);
  mv_image* back = nullptr;
  REQUIRE(mv_image_load(path.c_str(), nullptr, &back) == MV_OK);
  REQUIRE(mv_image_stored_dtype(back) == MV_DTYPE_INT16);
  REQUIRE(std::memcmp(mv_image_data(back), mv_image_data(img), 6 * sizeof(float)) == 0);
  mv_image_free(back);
  std::remove(path.c_str());

  REQUIRE(mv_image_write_nifti(nullptr, path.c_str()) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_image_write_nifti(img, nullptr) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_image_write_nifti(img, (dir + "/x.png").c_str()) == MV_ERR_INVALID_ARGUMENT);
  const std::string bad = dir + "/mv-no-such-folder/out.nii";
  REQUIRE(mv_image_write_nifti(img, bad.c_str()) == MV_ERR_IO);
  REQUIRE(std::string(mv_last_error()).find(bad) != std::string::npos);
  // A DICOM Secondary Capture needs a DICOM source file: NULLs and non-DICOM are refused.
  REQUIRE(mv_heatmap_write_dicom_sc(nullptr, img, 0.5f, "x.dcm") == MV_ERR_INVALID_ARGUMENT);
  mv_image_free(img);
}
