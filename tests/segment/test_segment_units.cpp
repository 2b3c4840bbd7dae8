// Units only where they are known (issue 16): without a pixel spacing a region's size is a pixel
// count, never "mm2"; a spacing the user supplies (mv_image_load_options.pixel_spacing) or the
// caller gives (mv_image_from_pixels() with a geometry) makes it an area again, and the result
// says where the spacing came from.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "medvision/medvision.h"
#include "model/model_fixture.hpp"
#include "segment/seg_fixture.hpp"

namespace {

using mvtest::load_ok;
using mvtest::seg_manifest;
using mvtest::TempDir;

// A 16 x 16 8-bit grey PNG without a pHYs chunk: 255 in rows 4-7, columns 6-10 (20 pixels).
const unsigned char kPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x98, 0xa0,
    0xbd, 0x00, 0x00, 0x00, 0x13, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60, 0xa0, 0x1a, 0xf8,
    0x0f, 0x02, 0x14, 0x0a, 0x0c, 0x38, 0x00, 0x00, 0x32, 0x95, 0x13, 0xed, 0xbb, 0x72, 0x7c, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

torch::jit::Module threshold2d() {
  torch::jit::Module m("Threshold2d");
  m.define(R"(
    def forward(self, x):
        return (x[:, 0:1] - 0.5) * 50.0
  )");
  return m;
}

mv_region_stats region0(mv_model* model, mv_image* img, std::string* json) {
  mv_result* r = nullptr;
  const mv_status s = mv_model_segment(model, img, nullptr, &r);
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  mv_region_stats st;
  std::memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  REQUIRE(mv_result_region(r, 0, &st) == MV_OK);
  *json = mv_result_json(r);
  mv_result_free(r);
  return st;
}

bool has(const std::string& text, const char* what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("segment units: no spacing means pixel counts; a given spacing means mm2",
          "[segment][units]") {
  TempDir tmp;
  auto module = threshold2d();
  auto manifest = seg_manifest(1, {"spot"}, {8, 8}, "sigmoid");
  manifest["preprocess"] = nlohmann::json::array({{{"op", "channels"}, {"channels", 1}}});
  const std::string pkg = mvtest::write_package(tmp.path() / "pkg", module, manifest);
  mv_model* model = load_ok(pkg);
  std::string json;

  SECTION("a PNG without pHYs: spacing unknown") {
    mv_image* img = nullptr;
    REQUIRE(mv_image_load_memory(kPng, sizeof kPng, nullptr, &img) == MV_OK);
    CHECK(std::string(mv_image_spacing_source(img)).empty());
    const mv_region_stats st = region0(model, img, &json);
    CHECK(st.voxels == 20);
    CHECK(st.spacing_known == 0);
    CHECK(std::isnan(st.area_mm2));  // never 20 "mm2"
    CHECK(st.volume_ml == 0.0);
    CHECK(has(json, "\"area_mm2\":null"));
    CHECK(has(json, "\"unit\":\"pixels\""));
    CHECK(has(json, "\"spacing_known\":false"));
    CHECK(has(json, "spacing unknown"));
    CHECK(has(json, "\"voxels\":20"));
    mv_image_free(img);
  }
  SECTION("the same PNG with the user's spacing: mm2, source user") {
    mv_image_load_options o;
    REQUIRE(mv_image_load_options_default(&o) == MV_OK);
    CHECK(o.pixel_spacing[0] == 0.0);
    o.pixel_spacing[0] = 0.5;  // column
    o.pixel_spacing[1] = 0.4;  // row
    mv_image* img = nullptr;
    REQUIRE(mv_image_load_memory(kPng, sizeof kPng, &o, &img) == MV_OK);
    CHECK(std::string(mv_image_spacing_source(img)) == "user");
    double sp[3];
    mv_image_spacing(img, sp);
    CHECK(sp[0] == 0.5);
    CHECK(sp[1] == 0.4);
    const mv_region_stats st = region0(model, img, &json);
    CHECK(st.spacing_known == 1);
    CHECK(st.area_mm2 == Approx(20 * 0.5 * 0.4));
    CHECK(has(json, "\"unit\":\"mm2\""));
    CHECK(has(json, "\"source\":\"user\""));
    mv_image_free(img);
  }
  SECTION("mv_image_from_pixels: with a geometry the caller's spacing counts, without it not") {
    std::vector<float> px(16 * 16, 0.0f);
    for (int y = 4; y < 8; ++y)
      for (int x = 6; x < 11; ++x) px[static_cast<size_t>(y * 16 + x)] = 1.0f;
    mv_image* bare = mvtest::image_from_floats(16, 16, px);
    CHECK(std::string(mv_image_spacing_source(bare)).empty());
    CHECK(region0(model, bare, &json).spacing_known == 0);
    mv_image_free(bare);
    mvtest::Volume v{1, 1, 16, 16, px, {}};
    REQUIRE(mv_image_geometry_init(&v.geom, sizeof v.geom) == MV_OK);
    v.geom.spacing[0] = v.geom.spacing[1] = 0.25;
    mv_image* img = mvtest::make_image(v);
    CHECK(std::string(mv_image_spacing_source(img)) == "caller");
    const mv_region_stats st = region0(model, img, &json);
    CHECK(st.spacing_known == 1);
    CHECK(st.area_mm2 == Approx(20 * 0.0625));
    mv_image_free(img);
  }
  SECTION("a bad spacing is refused, naming the field") {
    mv_image_load_options o;
    REQUIRE(mv_image_load_options_default(&o) == MV_OK);
    o.pixel_spacing[0] = -1.0;
    o.pixel_spacing[1] = 0.5;
    mv_image* img = nullptr;
    CHECK(mv_image_load_memory(kPng, sizeof kPng, &o, &img) == MV_ERR_INVALID_ARGUMENT);
    CHECK(img == nullptr);
    CHECK(has(mv_last_error(), "pixel_spacing"));
    o.pixel_spacing[0] = 0.5;
    o.pixel_spacing[1] = NAN;
    CHECK(mv_image_load_memory(kPng, sizeof kPng, &o, &img) == MV_ERR_INVALID_ARGUMENT);
  }
  CHECK(std::string(mv_image_spacing_source(nullptr)).empty());
  mv_model_free(model);
}
