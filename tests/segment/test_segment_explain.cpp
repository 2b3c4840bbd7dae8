// Segmentation Grad-CAM through the C ABI on tiny TorchScript models made here: the heat map of
// a class lies inside the bright cube that makes the class, not on a distractor the model
// ignores, through sliding windows (3D, sigmoid) and a resize (2D, softmax); the map keeps the
// source grid; and every error path is a status with a message.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "medvision/medvision.h"
#include "model/model_fixture.hpp"
#include "segment/seg_fixture.hpp"

namespace {

using mvtest::load_ok;
using mvtest::make_image;
using mvtest::seg_manifest;
using mvtest::TempDir;
using mvtest::Volume;

// Activations: channel means over 2x2(x2) cells. The class's logit is positive where channel 0's
// cell mean exceeds 0.5, so only channel 0's activations matter; channel 1 is a distractor.
torch::jit::Module cube_detector_3d() {
  torch::jit::Module m("CubeDetector3d");
  m.define(R"(
    def explain_forward(self, x):
        a = torch.avg_pool3d(x, [2, 2, 2])
        up = a.repeat_interleave(2, 2).repeat_interleave(2, 3).repeat_interleave(2, 4)
        return (up[:, 0:1] - 0.5) * 20.0, a

    def forward(self, x):
        return self.explain_forward(x)[0]
  )");
  return m;
}

// 2D, softmax over {background, square, never}: "square" wins where channel 0 is bright.
torch::jit::Module square_detector_2d() {
  torch::jit::Module m("SquareDetector2d");
  m.define(R"(
    def explain_forward(self, x):
        a = torch.avg_pool2d(x, [2, 2])
        up = a.repeat_interleave(2, 2).repeat_interleave(2, 3)
        fg = (up[:, 0:1] - 0.5) * 20.0
        return torch.cat([-fg, fg, -fg - 30.0], 1), a

    def forward(self, x):
        return self.explain_forward(x)[0]
  )");
  return m;
}

struct Box {
  int64_t z0, z1, y0, y1, x0, x1;  // half-open
  bool contains(int64_t z, int64_t y, int64_t x) const {
    return z >= z0 && z < z1 && y >= y0 && y < y1 && x >= x0 && x < x1;
  }
};

void fill(Volume& v, int64_t channel, const Box& b, float value) {
  for (int64_t z = b.z0; z < b.z1; ++z)
    for (int64_t y = b.y0; y < b.y1; ++y)
      for (int64_t x = b.x0; x < b.x1; ++x)
        v.px[static_cast<size_t>(((channel * v.d + z) * v.h + y) * v.w + x)] = value;
}

mv_heatmap* explain_ok(mv_model* model, mv_image* img, int32_t label,
                       mv_cam_method method = MV_CAM_GRADCAM) {
  mv_explain_options o;
  REQUIRE(mv_explain_options_default(&o) == MV_OK);
  o.method = method;
  o.label = label;
  mv_heatmap* hm = nullptr;
  const mv_status s = mv_explain(model, img, &o, &hm);
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  return hm;
}

}  // namespace

TEST_CASE("segment explain: 3D sliding-window Grad-CAM lies in the cube, not the distractor",
          "[segment][explain]") {
  TempDir tmp;
  auto module = cube_detector_3d();
  auto j = seg_manifest(2, {"cube"}, {8, 8, 8}, "sigmoid");
  j["explain"] = {{"activations", "explain_forward"}};
  mv_model* model = load_ok(mvtest::write_package(tmp.path() / "cube", module, j));

  Volume v{2, 24, 28, 32, {}, {}};
  v.px.assign(static_cast<size_t>(v.c * v.d * v.h * v.w), 0.0f);
  const Box cube{8, 16, 10, 18, 12, 20};     // channel 0: what the model segments
  const Box distractor{2, 6, 2, 6, 22, 28};  // channel 1: what it ignores
  fill(v, 0, cube, 1.0f);
  fill(v, 1, distractor, 1.0f);
  REQUIRE(mv_image_geometry_init(&v.geom, sizeof v.geom) == MV_OK);
  v.geom.spacing[0] = 1.5;
  v.geom.spacing[1] = 0.8;
  v.geom.spacing[2] = 2.0;
  v.geom.origin[0] = -12.0;
  v.geom.origin[1] = 30.0;
  v.geom.origin[2] = 5.0;
  mv_image* img = make_image(v);

  for (mv_cam_method method : {MV_CAM_GRADCAM, MV_CAM_GRADCAM_PLUS_PLUS}) {
    INFO("method " << method);
    mv_heatmap* hm = explain_ok(model, img, -1, method);  // -1: the only class
    CHECK(std::string(mv_heatmap_label(hm)) == "cube");
    CHECK(mv_heatmap_region_voxels(hm) == 8 * 8 * 8);
    CHECK(mv_heatmap_depth(hm) == v.d);
    CHECK(mv_heatmap_probability(hm) > 0.99f);

    const mv_image* map_img = mv_heatmap_image(hm);
    REQUIRE(map_img != nullptr);
    CHECK(mv_heatmap_image(hm) == map_img);  // made once
    int64_t shape[4];
    mv_image_shape(map_img, shape);
    CHECK(shape[0] == 1);
    CHECK(shape[1] == v.d);
    CHECK(shape[2] == v.h);
    CHECK(shape[3] == v.w);
    double spacing[3], origin[3];
    mv_image_spacing(map_img, spacing);
    mv_image_origin(map_img, origin);
    for (int a = 0; a < 3; ++a) {
      CHECK(spacing[a] == v.geom.spacing[a]);
      CHECK(origin[a] == v.geom.origin[a]);
    }

    const float* map = mv_heatmap_data(hm);
    size_t best = 0;
    const auto n = static_cast<size_t>(v.d * v.h * v.w);
    for (size_t i = 1; i < n; ++i)
      if (map[i] > map[best]) best = i;
    const auto bz = static_cast<int64_t>(best) / (v.h * v.w);
    const auto by = static_cast<int64_t>(best) / v.w % v.h;
    const auto bx = static_cast<int64_t>(best) % v.w;
    CHECK(map[best] == Approx(1.0f));
    CHECK(cube.contains(bz, by, bx));
    CHECK(mv_heatmap_slice(hm) >= cube.z0);
    CHECK(mv_heatmap_slice(hm) < cube.z1);
    const auto at = [&](int64_t z, int64_t y, int64_t x) {
      return map[static_cast<size_t>((z * v.h + y) * v.w + x)];
    };
    CHECK(at(4, 4, 25) < 0.02f);   // the distractor's centre
    CHECK(at(20, 24, 2) < 0.02f);  // far from both
    CHECK(at(12, 14, 16) > 0.5f);  // the cube's centre

    // The overlay shows the hottest slice; the NIfTI writer takes the map as an image.
    size_t needed = 0;
    REQUIRE(mv_heatmap_overlay(hm, img, 0.5f, nullptr, 0, &needed) == MV_OK);
    CHECK(needed == static_cast<size_t>(v.h * v.w * 3));
    const std::string nii = (tmp.path() / "map.nii.gz").string();
    REQUIRE(mv_image_write_nifti(map_img, nii.c_str()) == MV_OK);
    mv_image* back = nullptr;
    REQUIRE(mv_image_load(nii.c_str(), nullptr, &back) == MV_OK);
    int64_t back_shape[4];
    mv_image_shape(back, back_shape);
    CHECK(back_shape[1] == v.d);
    mv_image_free(back);
    mv_heatmap_free(hm);
  }

  SECTION("progress is reported per window, and cancelling stops the map") {
    mv_explain_options o;
    REQUIRE(mv_explain_options_default(&o) == MV_OK);
    std::vector<std::pair<uint64_t, uint64_t>> seen;
    o.progress = [](uint64_t done, uint64_t total, void* user) -> int32_t {
      auto* s = static_cast<std::vector<std::pair<uint64_t, uint64_t>>*>(user);
      s->emplace_back(done, total);
      return done < 3 ? 1 : 0;
    };
    o.progress_user = &seen;
    mv_heatmap* hm = nullptr;
    CHECK(mv_explain(model, img, &o, &hm) == MV_ERR_CANCELLED);
    CHECK(hm == nullptr);
    REQUIRE(seen.size() == 3);
    CHECK(seen.back().first == 3);
    CHECK(seen.back().second == 5 * 6 * 7);  // windows of 8 at stride 4 over 24 x 28 x 32
    // The first version of the struct (no callback fields) is still accepted.
    o.struct_size = offsetof(mv_explain_options, label) + sizeof(int32_t);
    CHECK(mv_explain(model, img, &o, &hm) == MV_OK);
    mv_heatmap_free(hm);
  }
  SECTION("an image without the class gives an empty map, no error") {
    Volume e = v;
    std::fill(e.px.begin(), e.px.begin() + v.d * v.h * v.w, 0.0f);
    mv_image* empty = make_image(e);
    mv_heatmap* hm = explain_ok(model, empty, 0);
    CHECK(mv_heatmap_region_voxels(hm) == 0);
    CHECK(std::isnan(mv_heatmap_probability(hm)));
    const float* map = mv_heatmap_data(hm);
    float mx = 0.0f;
    for (int64_t i = 0; i < v.d * v.h * v.w; ++i) mx = std::max(mx, map[i]);
    CHECK(mx == 0.0f);
    mv_heatmap_free(hm);
    mv_image_free(empty);
  }
  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("segment explain: 2D through a resize; the class must be named", "[segment][explain]") {
  TempDir tmp;
  auto module = square_detector_2d();
  auto j = seg_manifest(1, {"background", "square", "never"}, {32, 32}, "softmax");
  j["preprocess"] =
      nlohmann::json::array({{{"op", "resize"}, {"mode", "stretch"}, {"size", {32, 32}}}});
  j["explain"] = {{"activations", "explain_forward"}};
  mv_model* model = load_ok(mvtest::write_package(tmp.path() / "sq", module, j));

  const int64_t h = 60, w = 90;
  std::vector<float> px(static_cast<size_t>(h * w), 0.0f);
  const Box sq{0, 1, 20, 44, 50, 80};
  for (int64_t y = sq.y0; y < sq.y1; ++y)
    for (int64_t x = sq.x0; x < sq.x1; ++x) px[static_cast<size_t>(y * w + x)] = 1.0f;
  mv_image* img = mvtest::image_from_floats(h, w, px);

  mv_heatmap* hm = explain_ok(model, img, 1, MV_CAM_GRADCAM);
  int64_t shape[2];
  mv_heatmap_shape(hm, shape);
  CHECK(shape[0] == h);
  CHECK(shape[1] == w);
  CHECK(mv_heatmap_slice(hm) == 0);
  CHECK(mv_heatmap_depth(hm) == 1);
  CHECK(std::string(mv_heatmap_label(hm)) == "square");
  // The region as the model sees it (32 x 32, then back): about the square's 24 x 30 pixels.
  CHECK(std::abs(mv_heatmap_region_voxels(hm) - 24 * 30) < 24 * 30 / 5);
  const float* map = mv_heatmap_data(hm);
  size_t best = 0;
  for (size_t i = 1; i < static_cast<size_t>(h * w); ++i)
    if (map[i] > map[best]) best = i;
  CHECK(sq.contains(0, static_cast<int64_t>(best) / w, static_cast<int64_t>(best) % w));
  CHECK(map[10 * w + 10] < 0.02f);
  mv_heatmap_free(hm);

  // "never" is predicted nowhere: an empty map and a warning-free success.
  hm = explain_ok(model, img, 2);
  CHECK(mv_heatmap_region_voxels(hm) == 0);
  mv_heatmap_free(hm);

  mv_explain_options o;
  REQUIRE(mv_explain_options_default(&o) == MV_OK);
  SECTION("several classes: -1 is refused, naming them") {
    CHECK(mv_explain(model, img, &o, &hm) == MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(mv_last_error()).find("square, never") != std::string::npos);
  }
  SECTION("CAM needs a pooling head") {
    o.label = 1;
    o.method = MV_CAM_CAM;
    CHECK(mv_explain(model, img, &o, &hm) == MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(mv_last_error()).find("Grad-CAM") != std::string::npos);
  }
  SECTION("label out of range") {
    o.label = 3;
    CHECK(mv_explain(model, img, &o, &hm) == MV_ERR_INVALID_ARGUMENT);
  }
  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("segment explain: packages without a usable explain method",
          "[segment][explain][errors]") {
  TempDir tmp;
  std::vector<float> px(16 * 16, 1.0f);
  mv_image* img = mvtest::image_from_floats(16, 16, px);
  mv_explain_options o;
  REQUIRE(mv_explain_options_default(&o) == MV_OK);
  o.label = 1;
  mv_heatmap* hm = nullptr;

  SECTION("no explain.activations") {
    auto module = square_detector_2d();
    auto j = seg_manifest(1, {"background", "square", "never"}, {16, 16}, "softmax");
    mv_model* model = load_ok(mvtest::write_package(tmp.path() / "none", module, j));
    CHECK(mv_explain(model, img, &o, &hm) == MV_ERR_MODEL);
    CHECK(std::string(mv_last_error()).find("activations") != std::string::npos);
    mv_model_free(model);
  }
  SECTION("a method that returns one tensor") {
    torch::jit::Module one("One");
    one.define(R"(
      def explain_forward(self, x):
          return torch.cat([x, -x], 1)

      def forward(self, x):
          return self.explain_forward(x)
    )");
    auto j = seg_manifest(1, {"background", "square"}, {16, 16}, "softmax");
    j["explain"] = {{"activations", "explain_forward"}};
    mv_model* model = load_ok(mvtest::write_package(tmp.path() / "one", one, j));
    CHECK(mv_explain(model, img, &o, &hm) == MV_ERR_MODEL);
    CHECK(std::string(mv_last_error()).find("(output, activations)") != std::string::npos);
    mv_model_free(model);
  }
  SECTION("a method the module does not have is refused at load") {
    auto module = square_detector_2d();
    auto j = seg_manifest(1, {"background", "square", "never"}, {16, 16}, "softmax");
    j["explain"] = {{"activations", "no_such_method"}};
    const std::string pkg = mvtest::write_package(tmp.path() / "missing", module, j);
    mv_model* model = nullptr;
    CHECK(mv_model_load(pkg.c_str(), nullptr, &model) == MV_ERR_MODEL);
    CHECK(std::string(mv_last_error()).find("no_such_method") != std::string::npos);
  }
  SECTION("explain.activations on a classification manifest is refused at load") {
    auto lin = mvtest::make_linear_module(1, 2);
    auto j = mvtest::base_manifest(1, 2);
    j["explain"]["activations"] = "features";
    const std::string pkg = mvtest::write_package(tmp.path() / "cls", lin, j);
    mv_model* model = nullptr;
    CHECK(mv_model_load(pkg.c_str(), nullptr, &model) != MV_OK);
    CHECK(std::string(mv_last_error()).find("explain.activations") != std::string::npos);
  }
  CHECK(hm == nullptr);
  mv_image_free(img);
}
