#pragma once
// Shared by the segmentation tests: a segmentation manifest for tiny TorchScript models, and
// float volumes turned into images through the C ABI.

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "medvision/medvision.h"
#include "model/model_fixture.hpp"

namespace mvtest {

inline nlohmann::json seg_manifest(int64_t channels, std::vector<std::string> labels,
                                   std::vector<int64_t> roi, const char* activation) {
  nlohmann::json j;
  j["format_version"] = 1;
  j["name"] = "tiny-seg";
  j["version"] = "0.0.1";
  j["task"] = "segmentation";
  j["labels"] = labels;
  j["input"] = {{"channels", channels}, {"size", roi}, {"ndim", roi.size()}};
  j["preprocess"] = nlohmann::json::array();
  j["output"] = {{"activation", activation}};
  j["segmentation"] = {{"overlap", 0.5}, {"blend", "gaussian"}};
  j["notice"] = "Test model. Not for diagnostic use.";
  return j;
}

struct Volume {
  int64_t c = 1, d = 1, h = 1, w = 1;
  std::vector<float> px;
  mv_image_geometry geom{};
};

inline mv_image* make_image(const Volume& v) {
  mv_tensor_view t;
  std::memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.dtype = MV_DTYPE_FLOAT32;
  t.data = v.px.data();
  t.ndim = 4;
  const int64_t dims[4] = {v.c, v.d, v.h, v.w};
  int64_t stride = sizeof(float);
  for (int i = 3; i >= 0; --i) {
    t.shape[i] = dims[i];
    t.strides[i] = stride;
    stride *= dims[i];
  }
  mv_image* img = nullptr;
  const mv_status s = mv_image_from_pixels(&t, v.geom.struct_size ? &v.geom : nullptr, &img);
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  return img;
}

inline Volume random_volume(int64_t c, int64_t d, int64_t h, int64_t w, unsigned seed) {
  Volume v{c, d, h, w, {}, {}};
  v.px.resize(static_cast<size_t>(c * d * h * w));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& x : v.px) x = u(rng);
  return v;
}

}  // namespace mvtest
