// Heat maps through the C ABI: a model whose answer depends only on a bright square must have
// its heat map peak inside the square, for every CAM method, after stretch, letterbox and crop.

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "medvision/medvision.h"
#include "model_fixture.hpp"

namespace {

// features(x): ReLU(conv 4x4 stride 4 of x - 0.5) in 4 channels; head(f): global mean + linear.
// Only pixels brighter than half the range produce features, i.e. only the bright square.
torch::jit::Module make_square_detector() {
  torch::jit::Module m("SquareDetector");
  m.register_parameter("kernel", torch::full({4, 1, 4, 4}, 1.0f / 16.0f), false);
  m.register_parameter("w", torch::tensor({{1.0f, 0.5f, 2.0f, 1.0f}, {-1.0f, -0.5f, -2.0f, -1.0f}}),
                       false);
  m.define(R"(
    def features(self, x):
        return torch.relu(torch.conv2d(x, self.kernel, None, [4, 4]) - 0.5)
    def head(self, f):
        return f.mean(dim=[2, 3]).matmul(self.w.t())
    def forward(self, x):
        return self.head(self.features(x))
  )");
  return m;
}

struct Square {
  int64_t top, left, size;
};

mv_image* image_with_square(int64_t h, int64_t w, Square sq) {
  std::vector<float> px(static_cast<size_t>(h * w), 10.0f);
  for (int64_t y = sq.top; y < sq.top + sq.size; ++y)
    for (int64_t x = sq.left; x < sq.left + sq.size; ++x)
      px[static_cast<size_t>(y * w + x)] = 250.0f;
  mv_image* img = mvtest::image_from_floats(h, w, px);
  REQUIRE(img != nullptr);
  return img;
}

}  // namespace

TEST_CASE("explain: the heat map peaks inside the bright square", "[explain]") {
  mvtest::TempDir tmp;
  auto module = make_square_detector();
  const char* modes[] = {"stretch", "letterbox", "center_crop"};
  const mv_cam_method methods[] = {MV_CAM_GRADCAM, MV_CAM_GRADCAM_PLUS_PLUS, MV_CAM_CAM};
  // A non-square image, so that letterbox pads and centre crop cuts.
  const int64_t h = 150, w = 260;
  const Square sq{90, 150, 30};
  mv_image* img = image_with_square(h, w, sq);
  for (const char* mode : modes) {
    auto j = mvtest::base_manifest(1, 2, 64);
    j["labels"] = {"square", "no-square"};
    j["preprocess"][1]["mode"] = mode;
    const auto pkg = mvtest::write_package(tmp.path() / mode, module, j);
    mv_model* model = nullptr;
    REQUIRE(mv_model_load(pkg.c_str(), nullptr, &model) == MV_OK);
    for (mv_cam_method method : methods) {
      INFO("resize " << mode << ", method " << method);
      mv_explain_options o;
      REQUIRE(mv_explain_options_default(&o) == MV_OK);
      o.method = method;
      o.label = 0;
      mv_heatmap* hm = nullptr;
      const mv_status s = mv_explain(model, img, &o, &hm);
      INFO(mv_last_error());
      REQUIRE(s == MV_OK);
      int64_t shape[2];
      mv_heatmap_shape(hm, shape);
      REQUIRE(shape[0] == h);
      REQUIRE(shape[1] == w);
      REQUIRE(std::string(mv_heatmap_label(hm)) == "square");
      const float* map = mv_heatmap_data(hm);
      size_t best = 0;
      for (size_t i = 1; i < static_cast<size_t>(h * w); ++i)
        if (map[i] > map[best]) best = i;
      const int64_t by = static_cast<int64_t>(best) / w, bx = static_cast<int64_t>(best) % w;
      CHECK(by >= sq.top);
      CHECK(by < sq.top + sq.size);
      CHECK(bx >= sq.left);
      CHECK(bx < sq.left + sq.size);
      // Far from the square the map is cold.
      CHECK(map[5 * w + 5] < 0.05f);
      // The overlay renders, and the size query works.
      size_t needed = 0;
      REQUIRE(mv_heatmap_overlay(hm, img, 0.5f, nullptr, 0, &needed) == MV_OK);
      REQUIRE(needed == static_cast<size_t>(h * w * 3));
      std::vector<uint8_t> rgb(needed);
      REQUIRE(mv_heatmap_overlay(hm, img, 0.5f, rgb.data(), rgb.size(), &needed) == MV_OK);
      const std::string png = (tmp.path() / (std::string(mode) + ".png")).string();
      REQUIRE(mv_heatmap_write_png(hm, img, 0.5f, png.c_str()) == MV_OK);
      REQUIRE(std::filesystem::file_size(png) > 100);
      mv_heatmap_free(hm);
    }
    mv_model_free(model);
  }
  mv_image_free(img);
}

TEST_CASE("explain: errors", "[explain][errors]") {
  mvtest::TempDir tmp;
  auto module = make_square_detector();
  auto j = mvtest::base_manifest(1, 2, 64);
  const auto pkg = mvtest::write_package(tmp.path() / "p", module, j);
  mv_model* model = nullptr;
  REQUIRE(mv_model_load(pkg.c_str(), nullptr, &model) == MV_OK);
  mv_image* img = image_with_square(64, 64, {10, 10, 8});
  mv_heatmap* hm = nullptr;
  mv_explain_options o;
  REQUIRE(mv_explain_options_default(&o) == MV_OK);
  o.label = 7;
  REQUIRE(mv_explain(model, img, &o, &hm) == MV_ERR_INVALID_ARGUMENT);
  o.label = 0;
  o.method = 42;
  REQUIRE(mv_explain(model, img, &o, &hm) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(hm == nullptr);
  o.method = MV_CAM_GRADCAM;
  REQUIRE(mv_explain(model, img, &o, &hm) == MV_OK);
  REQUIRE(mv_heatmap_write_png(hm, img, 0.5f, "/nonexistent-dir/x.png") == MV_ERR_IO);
  REQUIRE(std::string(mv_last_error()).find("/nonexistent-dir/x.png") != std::string::npos);
  mv_heatmap_free(hm);
  mv_heatmap_free(nullptr);
  mv_model_free(model);

  // A package without explain methods.
  auto j2 = mvtest::base_manifest(1, 2, 64);
  j2.erase("explain");
  const auto pkg2 = mvtest::write_package(tmp.path() / "q", module, j2);
  REQUIRE(mv_model_load(pkg2.c_str(), nullptr, &model) == MV_OK);
  REQUIRE(mv_explain(model, img, nullptr, &hm) == MV_ERR_MODEL);
  REQUIRE(std::string(mv_last_error()).find("explain") != std::string::npos);
  mv_model_free(model);
  mv_image_free(img);
}
