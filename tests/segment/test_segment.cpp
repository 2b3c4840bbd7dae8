// Segmentation through the C ABI on tiny TorchScript models made here: sliding-window stitching
// against a whole-image pass, padding, mirror TTA, masks on the input grid after reorientation
// and resampling, post-processing, measurements, and every error path.

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
using mvtest::make_image;
using mvtest::random_volume;
using mvtest::seg_manifest;
using mvtest::TempDir;
using mvtest::Volume;

// K x C pointwise convolution (3D): translation-equivariant with a 1-voxel receptive field, so
// every window gives a voxel the same value and stitching must reproduce the whole-image pass.
torch::jit::Module pointwise3d(int64_t channels, int64_t classes) {
  torch::jit::Module m("Pointwise");
  torch::manual_seed(11);
  m.register_parameter("w", torch::randn({classes, channels, 1, 1, 1}), false);
  m.register_parameter("b", torch::randn({classes}), false);
  m.define(R"(
    def forward(self, x):
        return torch.conv3d(x, self.w, self.b)
  )");
  return m;
}

torch::jit::Module conv3x3x3(int64_t channels, int64_t classes) {
  torch::jit::Module m("Conv");
  torch::manual_seed(12);
  m.register_parameter("w", torch::randn({classes, channels, 3, 3, 3}) * 0.3, false);
  m.register_parameter("b", torch::randn({classes}), false);
  m.define(R"(
    def forward(self, x):
        return torch.conv3d(x, self.w, self.b, [1, 1, 1], [1, 1, 1])
  )");
  return m;
}

// One sigmoid class: foreground where channel 0 exceeds 0.5.
torch::jit::Module threshold3d() {
  torch::jit::Module m("Threshold");
  m.define(R"(
    def forward(self, x):
        return (x[:, 0:1] - 0.5) * 50.0
  )");
  return m;
}

// Softmax (or sigmoid) of the module's whole-image output, [K, D, H, W] flattened.
std::vector<float> whole_pass(torch::jit::Module& m, const Volume& v, bool softmax) {
  torch::NoGradGuard ng;
  auto x = torch::from_blob(const_cast<float*>(v.px.data()), {1, v.c, v.d, v.h, v.w}).clone();
  auto y = m.forward({x}).toTensor();
  y = softmax ? torch::softmax(y, 1) : torch::sigmoid(y);
  y = y.contiguous();
  return std::vector<float>(y.data_ptr<float>(), y.data_ptr<float>() + y.numel());
}

mv_result* segment(mv_model* m, mv_image* img, int mirror = -1, double overlap = -1.0) {
  mv_segment_options o;
  REQUIRE(mv_segment_options_default(&o) == MV_OK);
  o.probabilities = 1;
  o.mirror = mirror;
  o.overlap = overlap;
  mv_result* r = nullptr;
  const mv_status s = mv_model_segment(m, img, &o, &r);
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  return r;
}

float max_abs_diff(const float* a, const std::vector<float>& b) {
  float d = 0.0f;
  for (size_t i = 0; i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("segment: one window covering the image equals the whole-image pass", "[segment]") {
  TempDir tmp;
  auto module = conv3x3x3(2, 3);
  const std::string pkg = mvtest::write_package(
      tmp.path() / "pkg", module, seg_manifest(2, {"bg", "a", "b"}, {8, 12, 10}, "softmax"));
  mv_model* model = load_ok(pkg);
  const Volume v = random_volume(2, 8, 12, 10, 1);
  mv_image* img = make_image(v);
  mv_result* r = segment(model, img);
  REQUIRE(mv_result_task(r) == MV_TASK_SEGMENTATION);
  const mv_image* probs = mv_result_probability_map(r);
  REQUIRE(probs != nullptr);
  int64_t shape[4];
  mv_image_shape(probs, shape);
  REQUIRE(shape[0] == 3);
  REQUIRE(shape[1] == 8);
  const std::vector<float> ref = whole_pass(module, v, true);
  CHECK(max_abs_diff(mv_image_data(probs), ref) < 1e-5f);

  // The label map is the argmax, on the input grid.
  const mv_image* mask = mv_result_mask(r);
  mv_image_shape(mask, shape);
  REQUIRE((shape[0] == 1 && shape[1] == 8 && shape[2] == 12 && shape[3] == 10));
  const float* lab = mv_image_data(mask);
  const size_t n = 8 * 12 * 10;
  size_t agree = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t best = 0;
    for (size_t k = 1; k < 3; ++k) {
      if (ref[k * n + i] > ref[best * n + i]) best = k;
    }
    agree += static_cast<size_t>(lab[i]) == best ? 1 : 0;
  }
  CHECK(agree == n);
  REQUIRE(mv_result_label_count(r) == 3);
  CHECK(std::string(mv_result_label(r, 1)) == "a");
  CHECK(std::isnan(mv_result_probability(r, 0)));
  mv_result_free(r);
  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("segment: many overlapping windows stitch to the whole-image pass", "[segment]") {
  TempDir tmp;
  auto module = pointwise3d(2, 4);
  const std::string pkg = mvtest::write_package(
      tmp.path() / "pkg", module, seg_manifest(2, {"bg", "a", "b", "c"}, {6, 8, 8}, "softmax"));
  mv_model* model = load_ok(pkg);
  SECTION("larger than the window, odd sizes") {
    const Volume v = random_volume(2, 13, 21, 17, 2);
    mv_image* img = make_image(v);
    for (double overlap : {0.0, 0.25, 0.5, 0.8}) {
      for (int mirror : {0, 1}) {
        mv_result* r = segment(model, img, mirror, overlap);
        INFO("overlap " << overlap << " mirror " << mirror);
        CHECK(max_abs_diff(mv_image_data(mv_result_probability_map(r)),
                           whole_pass(module, v, true)) < 1e-5f);
        mv_result_free(r);
      }
    }
    mv_image_free(img);
  }
  SECTION("smaller than the window along some axes (zero padding)") {
    const Volume v = random_volume(2, 3, 20, 5, 3);
    mv_image* img = make_image(v);
    mv_result* r = segment(model, img);
    CHECK(max_abs_diff(mv_image_data(mv_result_probability_map(r)), whole_pass(module, v, true)) <
          1e-5f);
    mv_result_free(r);
    mv_image_free(img);
  }
  mv_model_free(model);
}

TEST_CASE("segment: the sliding window visits every voxel with a context-dependent model",
          "[segment]") {
  // A 3x3x3 convolution is not window-invariant at window borders, so stitching differs from the
  // whole pass there; inside it must agree closely and the result must be a valid distribution.
  TempDir tmp;
  auto module = conv3x3x3(1, 2);
  const std::string pkg = mvtest::write_package(
      tmp.path() / "pkg", module, seg_manifest(1, {"bg", "fg"}, {8, 8, 8}, "softmax"));
  mv_model* model = load_ok(pkg);
  const Volume v = random_volume(1, 16, 16, 16, 4);
  mv_image* img = make_image(v);
  mv_result* r = segment(model, img);
  const float* p = mv_image_data(mv_result_probability_map(r));
  const size_t n = 16 * 16 * 16;
  for (size_t i = 0; i < n; ++i) REQUIRE(std::abs(p[i] + p[n + i] - 1.0f) < 1e-5f);
  const std::vector<float> ref = whole_pass(module, v, true);
  float worst = 0.0f;
  double mean = 0.0;
  for (size_t i = 0; i < 2 * n; ++i) {
    worst = std::max(worst, std::abs(p[i] - ref[i]));
    mean += std::abs(p[i] - ref[i]);
  }
  CHECK(mean / (2 * n) < 0.05);
  CHECK(worst < 1.0f);
  mv_result_free(r);
  mv_image_free(img);
  mv_model_free(model);
}

namespace {

// A 20x24x16 (z, y, x) volume with a bright 6x8x5 block (value 1) plus a smaller 2x2x2 block
// elsewhere, on an LPS grid with 1 mm spacing.
Volume blocks() {
  Volume v{1, 20, 24, 16, std::vector<float>(20 * 24 * 16, 0.0f), {}};
  auto at = [&](int64_t z, int64_t y, int64_t x) -> float& {
    return v.px[static_cast<size_t>((z * 24 + y) * 16 + x)];
  };
  for (int64_t z = 4; z < 10; ++z)
    for (int64_t y = 5; y < 13; ++y)
      for (int64_t x = 3; x < 8; ++x) at(z, y, x) = 1.0f;
  for (int64_t z = 15; z < 17; ++z)
    for (int64_t y = 18; y < 20; ++y)
      for (int64_t x = 11; x < 13; ++x) at(z, y, x) = 1.0f;
  REQUIRE(mv_image_geometry_init(&v.geom, sizeof v.geom) == MV_OK);
  v.geom.spacing[0] = 0.8;
  v.geom.spacing[1] = 0.9;
  v.geom.spacing[2] = 2.0;
  v.geom.origin[0] = -10.0;
  v.geom.origin[1] = 5.0;
  v.geom.origin[2] = 30.0;
  return v;
}

}  // namespace

TEST_CASE("segment: regions are measured on the input grid; post-processing", "[segment]") {
  TempDir tmp;
  auto module = threshold3d();
  auto manifest = seg_manifest(1, {"tumour"}, {8, 8, 8}, "sigmoid");
  manifest["segmentation"]["regions"] = {{"tumour", {"tumour"}}};
  const std::string pkg = mvtest::write_package(tmp.path() / "pkg", module, manifest);
  mv_model* model = load_ok(pkg);
  const Volume v = blocks();
  mv_image* img = make_image(v);

  mv_result* r = segment(model, img);
  const mv_image* mask = mv_result_mask(r);
  double sp[3], org[3];
  mv_image_spacing(mask, sp);
  mv_image_origin(mask, org);
  CHECK(sp[0] == Approx(0.8));
  CHECK(sp[2] == Approx(2.0));
  CHECK(org[1] == Approx(5.0));
  REQUIRE(mv_result_label_count(r) == 2);
  CHECK(std::string(mv_result_label(r, 0)) == "background");
  CHECK(std::string(mv_result_label(r, 1)) == "tumour");
  const float* lab = mv_image_data(mask);
  for (size_t i = 0; i < v.px.size(); ++i) REQUIRE(lab[i] == v.px[i]);

  REQUIRE(mv_result_region_count(r) == 1);
  CHECK(std::string(mv_result_region_name(r, 0)) == "tumour");
  mv_region_stats st;
  st.struct_size = sizeof st;
  REQUIRE(mv_result_region(r, 0, &st) == MV_OK);
  CHECK(st.voxels == 6 * 8 * 5 + 8);
  CHECK(st.components == 2);
  CHECK(st.largest_component_voxels == 6 * 8 * 5);
  CHECK(st.volume_ml == Approx((6 * 8 * 5 + 8) * 0.8 * 0.9 * 2.0 / 1000.0));
  CHECK(st.area_mm2 == 0.0);
  CHECK(st.bbox_min[0] == 3);  // column
  CHECK(st.bbox_max[0] == 12);
  CHECK(st.bbox_min[2] == 4);  // slice
  CHECK(st.bbox_max[2] == 16);
  CHECK(st.centroid_index[0] == Approx(5.0));
  CHECK(st.centroid_index[1] == Approx(8.5));
  CHECK(st.centroid_index[2] == Approx(6.5));
  CHECK(st.centroid[0] == Approx(-10.0 + 5.0 * 0.8));
  CHECK(st.centroid[2] == Approx(30.0 + 6.5 * 2.0));
  const std::string json = mv_result_json(r);
  CHECK(json.find("\"volume_ml\"") != std::string::npos);
  CHECK(json.find("Not for diagnostic use") != std::string::npos);
  mv_result_free(r);

  mv_segment_options o;
  REQUIRE(mv_segment_options_default(&o) == MV_OK);
  o.largest_component = 1;
  REQUIRE(mv_model_segment(model, img, &o, &r) == MV_OK);
  REQUIRE(mv_result_region(r, 0, &st) == MV_OK);
  CHECK(st.voxels == 6 * 8 * 5);
  CHECK(st.components == 1);
  mv_result_free(r);
  mv_image_free(img);

  // Hole filling: a hollow block becomes solid.
  Volume hollow = blocks();
  auto at = [&](int64_t z, int64_t y, int64_t x) -> float& {
    return hollow.px[static_cast<size_t>((z * 24 + y) * 16 + x)];
  };
  at(6, 8, 5) = 0.0f;
  at(7, 8, 5) = 0.0f;
  img = make_image(hollow);
  o.largest_component = -1;
  o.fill_holes = 0;
  REQUIRE(mv_model_segment(model, img, &o, &r) == MV_OK);
  REQUIRE(mv_result_region(r, 0, &st) == MV_OK);
  CHECK(st.voxels == 6 * 8 * 5 + 8 - 2);
  mv_result_free(r);
  o.fill_holes = 1;
  REQUIRE(mv_model_segment(model, img, &o, &r) == MV_OK);
  REQUIRE(mv_result_region(r, 0, &st) == MV_OK);
  CHECK(st.voxels == 6 * 8 * 5 + 8);
  mv_result_free(r);

  // mv_model_run on a segmentation model segments with the manifest's settings.
  REQUIRE(mv_model_run(model, img, &r) == MV_OK);
  CHECK(mv_result_task(r) == MV_TASK_SEGMENTATION);
  CHECK(mv_result_probability_map(r) == nullptr);
  CHECK(mv_result_mask(r) != nullptr);
  mv_result_free(r);
  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("segment: a reoriented and resampled volume gives the same mask in patient space",
          "[segment]") {
  TempDir tmp;
  auto module = threshold3d();
  auto manifest = seg_manifest(1, {"tumour"}, {8, 8, 8}, "sigmoid");
  manifest["preprocess"] = {{{"op", "reorient"}, {"to", "RAS"}},
                            {{"op", "resample"}, {"spacing", {1.0, 1.0, 1.0}}, {"order", 1}}};
  manifest["input"]["spacing"] = {1.0, 1.0, 1.0};
  const std::string pkg = mvtest::write_package(tmp.path() / "pkg", module, manifest);
  mv_model* model = load_ok(pkg);

  // A: 1 mm LPS-aligned volume. B: the same voxels stored with the axes permuted (x<->z) and
  // the row axis flipped, with the geometry that keeps every voxel at the same LPS position.
  Volume a = blocks();
  a.geom.spacing[0] = a.geom.spacing[1] = a.geom.spacing[2] = 1.0;
  const int64_t D = a.d, H = a.h, W = a.w;
  Volume b{1, W, H, D, std::vector<float>(a.px.size()), {}};
  REQUIRE(mv_image_geometry_init(&b.geom, sizeof b.geom) == MV_OK);
  // B index (i, j, k) = (col, row, slice) = (z_a, H-1-y_a, x_a).
  for (int64_t z = 0; z < D; ++z)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t bi = z, bj = H - 1 - y, bk = x;
        b.px[static_cast<size_t>((bk * H + bj) * D + bi)] =
            a.px[static_cast<size_t>((z * H + y) * W + x)];
      }
  // LPS(a) = origin + (x, y, z). In B: x = k, y = H-1-j, z = i.
  // So column i moves along +z, row j along -y, slice k along +x.
  const double dir[9] = {0, 0, 1, 0, -1, 0, 1, 0, 0};
  std::memcpy(b.geom.direction, dir, sizeof dir);
  b.geom.origin[0] = a.geom.origin[0];
  b.geom.origin[1] = a.geom.origin[1] + static_cast<double>(H - 1);
  b.geom.origin[2] = a.geom.origin[2];

  mv_image* ia = make_image(a);
  mv_image* ib = make_image(b);
  mv_result* ra = segment(model, ia);
  mv_result* rb = segment(model, ib);
  const float* la = mv_image_data(mv_result_mask(ra));
  const float* lb = mv_image_data(mv_result_mask(rb));
  int64_t mismatches = 0, fg = 0;
  for (int64_t z = 0; z < D; ++z)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const float va = la[(z * H + y) * W + x];
        const float vb = lb[(x * H + (H - 1 - y)) * D + z];
        mismatches += va != vb ? 1 : 0;
        fg += va > 0 ? 1 : 0;
      }
  CHECK(fg == 6 * 8 * 5 + 8);
  CHECK(mismatches == 0);
  double da[9], db[9];
  mv_image_direction(mv_result_mask(rb), db);
  mv_image_direction(ib, da);
  for (int i = 0; i < 9; ++i) CHECK(db[i] == da[i]);

  // Anisotropic input: resampled to 1 mm for the model and back; the block survives.
  Volume c = blocks();  // spacing 0.8, 0.9, 2.0
  mv_image* ic = make_image(c);
  mv_result* rc = segment(model, ic);
  const float* lc = mv_image_data(mv_result_mask(rc));
  int64_t agree = 0;
  for (size_t i = 0; i < c.px.size(); ++i) agree += (lc[i] > 0) == (c.px[i] > 0) ? 1 : 0;
  CHECK(static_cast<double>(agree) / static_cast<double>(c.px.size()) > 0.98);
  mv_result_free(ra);
  mv_result_free(rb);
  mv_result_free(rc);
  mv_image_free(ia);
  mv_image_free(ib);
  mv_image_free(ic);
  mv_model_free(model);
}

TEST_CASE("segment: errors are statuses with messages", "[segment][errors]") {
  TempDir tmp;
  auto module = pointwise3d(2, 2);
  const std::string pkg = mvtest::write_package(
      tmp.path() / "pkg", module, seg_manifest(2, {"bg", "fg"}, {4, 4, 4}, "softmax"));
  mv_model* model = load_ok(pkg);
  mv_result* r = nullptr;

  SECTION("wrong channel count") {
    const Volume v = random_volume(1, 4, 4, 4, 5);
    mv_image* img = make_image(v);
    CHECK(mv_model_segment(model, img, nullptr, &r) == MV_ERR_SHAPE_MISMATCH);
    CHECK(std::string(mv_last_error()).find("channels") != std::string::npos);
    CHECK(r == nullptr);
    mv_image_free(img);
  }
  SECTION("bad options") {
    const Volume v = random_volume(2, 4, 4, 4, 5);
    mv_image* img = make_image(v);
    mv_segment_options o;
    REQUIRE(mv_segment_options_default(&o) == MV_OK);
    o.overlap = 1.0;
    CHECK(mv_model_segment(model, img, &o, &r) == MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(mv_last_error()).find("overlap") != std::string::npos);
    o.overlap = -1.0;
    o.struct_size = 4;
    CHECK(mv_model_segment(model, img, &o, &r) == MV_ERR_ABI_MISMATCH);
    CHECK(mv_segment_options_init(&o, 4) == MV_ERR_ABI_MISMATCH);
    CHECK(mv_model_segment(nullptr, img, nullptr, &r) == MV_ERR_INVALID_ARGUMENT);
    CHECK(r == nullptr);
    mv_image_free(img);
  }
  SECTION("cancelled by the progress callback") {
    const Volume v = random_volume(2, 12, 12, 12, 6);
    mv_image* img = make_image(v);
    mv_segment_options o;
    REQUIRE(mv_segment_options_default(&o) == MV_OK);
    o.batch_size = 1;
    int calls = 0;
    o.progress = [](uint64_t done, uint64_t total, void* user) -> int32_t {
      ++*static_cast<int*>(user);
      return done < total / 2 ? 1 : 0;
    };
    o.progress_user = &calls;
    CHECK(mv_model_segment(model, img, &o, &r) == MV_ERR_CANCELLED);
    CHECK(calls > 1);
    CHECK(r == nullptr);
    mv_image_free(img);
  }
  SECTION("region accessors") {
    const Volume v = random_volume(2, 4, 4, 4, 7);
    mv_image* img = make_image(v);
    REQUIRE(mv_model_segment(model, img, nullptr, &r) == MV_OK);
    mv_region_stats st;
    st.struct_size = sizeof st;
    CHECK(mv_result_region(r, 5, &st) == MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(mv_last_error()).find("out of range") != std::string::npos);
    st.struct_size = 8;
    CHECK(mv_result_region(r, 0, &st) == MV_ERR_ABI_MISMATCH);
    CHECK(mv_result_region_name(r, 5) == nullptr);
    mv_result_free(r);
    mv_image_free(img);
  }
  mv_model_free(model);

  SECTION("a model whose output is not [N, K, *window] is refused at load") {
    torch::jit::Module bad("Bad");
    bad.define(R"(
      def forward(self, x):
          return x[:, :, ::2]
    )");
    const std::string p2 = mvtest::write_package(
        tmp.path() / "bad", bad, seg_manifest(2, {"bg", "fg"}, {4, 4, 4}, "softmax"));
    mv_model* m = nullptr;
    CHECK(mv_model_load(p2.c_str(), nullptr, &m) == MV_ERR_MODEL);
    CHECK(std::string(mv_last_error()).find("window") != std::string::npos);
  }
  SECTION("a classification model cannot segment") {
    auto lin = mvtest::make_linear_module(1, 2);
    const std::string p3 =
        mvtest::write_package(tmp.path() / "lin", lin, mvtest::base_manifest(1, 2));
    mv_model* m = load_ok(p3);
    std::vector<float> px(16 * 16, 1.0f);
    mv_image* img = mvtest::image_from_floats(16, 16, px);
    CHECK(mv_model_segment(m, img, nullptr, &r) == MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(mv_last_error()).find("not a segmentation model") != std::string::npos);
    mv_image_free(img);
    mv_model_free(m);
  }
}

TEST_CASE("segment: mv_image_stack builds a multi-channel input", "[segment][image]") {
  Volume a = random_volume(1, 3, 4, 5, 8), b = random_volume(1, 3, 4, 5, 9);
  mv_image* ia = make_image(a);
  mv_image* ib = make_image(b);
  const mv_image* list[2] = {ia, ib};
  mv_image* s = nullptr;
  REQUIRE(mv_image_stack(list, 2, &s) == MV_OK);
  int64_t shape[4];
  mv_image_shape(s, shape);
  CHECK(shape[0] == 2);
  CHECK(mv_image_data(s)[60] == b.px[0]);
  mv_image_free(s);
  s = nullptr;
  Volume c = random_volume(1, 3, 4, 6, 10);
  mv_image* ic = make_image(c);
  const mv_image* bad[2] = {ia, ic};
  CHECK(mv_image_stack(bad, 2, &s) == MV_ERR_SHAPE_MISMATCH);
  CHECK(std::string(mv_last_error()).find("image 1") != std::string::npos);
  CHECK(s == nullptr);
  CHECK(mv_image_stack(list, 0, &s) == MV_ERR_INVALID_ARGUMENT);
  mv_image_free(ia);
  mv_image_free(ib);
  mv_image_free(ic);
}

TEST_CASE("segment: the manifest's DICOM SEG codes are validated", "[segment][errors]") {
  TempDir tmp;
  auto module = pointwise3d(2, 2);
  const nlohmann::json ok = {
      {"category",
       {{"value", "123037004"}, {"scheme", "SCT"}, {"meaning", "Anatomical Structure"}}},
      {"type", {{"value", "80891009"}, {"scheme", "SCT"}, {"meaning", "Heart"}}}};
  int n = 0;
  const auto status = [&](const nlohmann::json& codes, std::string* msg) {
    auto j = seg_manifest(2, {"bg", "fg"}, {4, 4, 4}, "softmax");
    j["segmentation"]["codes"] = codes;
    const std::string pkg =
        mvtest::write_package(tmp.path() / ("p" + std::to_string(n++)), module, j);
    mv_model* m = nullptr;
    const mv_status s = mv_model_load(pkg.c_str(), nullptr, &m);
    *msg = mv_last_error();
    mv_model_free(m);
    return s;
  };
  std::string msg;
  CHECK(status({{"fg", ok}}, &msg) == MV_OK);
  CHECK(status({{"nope", ok}}, &msg) == MV_ERR_MODEL);
  CHECK(msg.find("segmentation.codes.nope") != std::string::npos);
  auto no_type = ok;
  no_type.erase("type");
  CHECK(status({{"fg", no_type}}, &msg) == MV_ERR_MODEL);
  CHECK(msg.find("'category' and 'type'") != std::string::npos);
  auto empty = ok;
  empty["type"]["value"] = "";
  CHECK(status({{"fg", empty}}, &msg) == MV_ERR_MODEL);
  CHECK(msg.find("segmentation.codes.fg.type.value") != std::string::npos);
  auto extra = ok;
  extra["type"]["colour"] = "red";
  CHECK(status({{"fg", extra}}, &msg) == MV_ERR_MODEL);
  CHECK(msg.find("colour") != std::string::npos);
}
