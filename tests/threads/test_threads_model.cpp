// Thread stress through the C ABI (label threads): 8 threads share one mv_model and classify
// (mv_model_run, mv_model_run_batch), explain (Grad-CAM, Grad-CAM++, CAM; one heat map's lazily
// made image), segment (2D with and without mirror TTA, 3D sliding window, segmentation
// Grad-CAM) and check drift against a calibrated package (and calibrate into folders of their
// own). Every result must be bit-identical to the same call made serially first. The models are
// tiny and made at test time, so that ThreadSanitizer's slowdown stays small (docs/testing.md).

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "medvision/medvision.h"
#include "model/model_fixture.hpp"
#include "segment/seg_fixture.hpp"
#include "threads/thread_fixture.hpp"

namespace {

using mvtest::Faults;
using mvtest::kThreads;
using mvtest::on_threads;
using mvtest::TempDir;

// CPU options for the models of these tests.
mv_model_options cpu_options() {
  mv_model_options o;
  mv_model_options_default(&o);
  o.device = "cpu";
  if (mvtest::kUnderTsan) {
    // LibTorch's intra-op pool is libgomp, which is not built with ThreadSanitizer: the
    // hand-offs between its workers are invisible to TSan and would be reported as races in
    // whatever instrumented code runs on them. With one intra-op thread every operator runs on
    // the calling thread, so all the concurrency TSan sees is the 8 threads of this test (the
    // normal and ASan builds keep LibTorch's default pool).
    o.num_threads = 1;
  }
  return o;
}

// Loads a package on the CPU for sharing between the threads.
mv_model* load_shared(const std::string& path) {
  const mv_model_options o = cpu_options();
  mv_model* m = nullptr;
  const mv_status s = mv_model_load(path.c_str(), &o, &m);
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  return m;
}

// ---- Fingerprints: every observable part of a result, as bytes --------------------------------

template <typename T>
void put(std::string& s, const T& v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_str(std::string& s, const char* p) {
  s += p ? p : "(null)";
  s += '\0';
}
void put_image(std::string& s, const mv_image* im) {
  if (im == nullptr) {
    s += "(no image)";
    return;
  }
  int64_t shape[4];
  mv_image_shape(im, shape);
  s.append(reinterpret_cast<const char*>(shape), sizeof shape);
  const size_t n = static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]);
  s.append(reinterpret_cast<const char*>(mv_image_data(im)), n * sizeof(float));
  double g[9];
  mv_image_spacing(im, g);
  s.append(reinterpret_cast<const char*>(g), 3 * sizeof(double));
  mv_image_origin(im, g);
  s.append(reinterpret_cast<const char*>(g), 3 * sizeof(double));
  mv_image_direction(im, g);
  s.append(reinterpret_cast<const char*>(g), 9 * sizeof(double));
}

std::string fingerprint(const mv_result* r) {
  std::string s;
  put_str(s, mv_result_model_name(r));
  put_str(s, mv_result_model_version(r));
  put_str(s, mv_result_notice(r));
  put(s, mv_result_task(r));
  const size_t labels = mv_result_label_count(r);
  put(s, labels);
  for (size_t i = 0; i < labels; ++i) {
    put_str(s, mv_result_label(r, i));
    put(s, mv_result_logit(r, i));
    put(s, mv_result_probability(r, i));
    put(s, mv_result_calibrated(r, i));
    put(s, mv_result_decision(r, i));
    put(s, mv_result_refer(r, i));
    put(s, mv_result_conformal(r, i));
    put(s, mv_result_ranked(r, i));
  }
  put(s, mv_result_conformal_alpha(r));
  for (size_t i = 0; i < mv_result_warning_count(r); ++i) put_str(s, mv_result_warning(r, i));
  put_image(s, mv_result_mask(r));
  put_image(s, mv_result_probability_map(r));
  for (size_t i = 0; i < mv_result_region_count(r); ++i) {
    put_str(s, mv_result_region_name(r, i));
    mv_region_stats st;
    std::memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    if (mv_result_region(r, i, &st) != MV_OK) s += "(region failed)";
    put(s, st);
  }
  put_str(s, mv_result_json(r));
  return s;
}

std::string fingerprint(const mv_heatmap* h) {
  std::string s;
  int64_t shape[2];
  mv_heatmap_shape(h, shape);
  put(s, shape);
  const int64_t depth = mv_heatmap_depth(h);
  put(s, depth);
  put(s, mv_heatmap_slice(h));
  put(s, mv_heatmap_region_voxels(h));
  put_str(s, mv_heatmap_label(h));
  put(s, mv_heatmap_probability(h));
  s.append(reinterpret_cast<const char*>(mv_heatmap_data(h)),
           static_cast<size_t>(depth * shape[0] * shape[1]) * sizeof(float));
  return s;
}

// "" on success, else what failed; `out` gets the fingerprint.
std::string classify(const mv_model* m, const mv_image* img, std::string* out) {
  mv_result* r = nullptr;
  if (mv_model_run(m, img, &r) != MV_OK) return std::string("mv_model_run: ") + mv_last_error();
  *out = fingerprint(r);
  mv_result_free(r);
  return "";
}

std::string classify_batch(const mv_model* m, const std::vector<mv_image*>& imgs,
                           std::vector<std::string>* out) {
  std::vector<mv_result*> rs(imgs.size(), nullptr);
  if (mv_model_run_batch(m, imgs.data(), imgs.size(), rs.data()) != MV_OK) {
    return std::string("mv_model_run_batch: ") + mv_last_error();
  }
  out->clear();
  for (mv_result* r : rs) {
    out->push_back(fingerprint(r));
    mv_result_free(r);
  }
  return "";
}

std::string explain(const mv_model* m, const mv_image* img, mv_cam_method method, int32_t label,
                    std::string* out) {
  mv_explain_options o;
  if (mv_explain_options_default(&o) != MV_OK) return "mv_explain_options_default failed";
  o.method = method;
  o.label = label;
  mv_heatmap* h = nullptr;
  if (mv_explain(m, img, &o, &h) != MV_OK) return std::string("mv_explain: ") + mv_last_error();
  *out = fingerprint(h);
  // Each thread's own map made into an image (mv_heatmap_image) as well.
  const mv_image* im = mv_heatmap_image(h);
  if (im == nullptr) {
    mv_heatmap_free(h);
    return std::string("mv_heatmap_image: ") + mv_last_error();
  }
  put_image(*out, im);
  mv_heatmap_free(h);
  return "";
}

std::string segment(const mv_model* m, const mv_image* img, int32_t mirror, std::string* out) {
  mv_segment_options o;
  if (mv_segment_options_default(&o) != MV_OK) return "mv_segment_options_default failed";
  o.probabilities = 1;
  o.mirror = mirror;
  mv_result* r = nullptr;
  if (mv_model_segment(m, img, &o, &r) != MV_OK) {
    return std::string("mv_model_segment: ") + mv_last_error();
  }
  *out = fingerprint(r);
  mv_result_free(r);
  return "";
}

// Records a fault unless `err` is empty and `got` equals `want`.
void expect_same(Faults& f, const std::string& what, const std::string& err, const std::string& got,
                 const std::string& want) {
  if (!err.empty()) {
    f.add(what + ": " + err);
  } else if (got != want) {
    f.add(what + ": differs from the serial result");
  }
}

// An h x w image (c = 1 grey, c = 3 interleaved RGB) of reproducible noise in [0, 255].
mv_image* noise_image(int64_t h, int64_t w, int64_t c, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 255.0f);
  std::vector<float> px(static_cast<size_t>(h * w * c));
  for (float& v : px) v = u(rng);
  mv_image* img = mvtest::image_from_floats(h, w, px);
  REQUIRE(img != nullptr);
  return img;
}

// features(x): ReLU(conv 4x4 stride 4 of x - 0.5) in 4 channels; head(f): global mean + linear
// (tests/model/test_explain.cpp's square detector).
torch::jit::Module square_detector() {
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

// 2D segmentation: 3x3 convolution, 1 channel -> 3 classes (softmax); explain_forward gives the
// logits and 2x2-pooled activations for segmentation Grad-CAM.
torch::jit::Module seg2d() {
  torch::jit::Module m("Seg2d");
  torch::manual_seed(21);
  m.register_parameter("w", torch::randn({3, 1, 3, 3}) * 0.5, false);
  m.register_parameter("b", torch::randn({3}), false);
  m.define(R"(
    def explain_forward(self, x):
        a = torch.avg_pool2d(x, [2, 2])
        up = a.repeat_interleave(2, 2).repeat_interleave(2, 3)
        return torch.conv2d(up, self.w, self.b, [1, 1], [1, 1]), a

    def forward(self, x):
        return self.explain_forward(x)[0]
  )");
  return m;
}

// 3D segmentation: 3x3x3 convolution, 2 channels -> 3 classes (softmax).
torch::jit::Module seg3d() {
  torch::jit::Module m("Seg3d");
  torch::manual_seed(12);
  m.register_parameter("w", torch::randn({3, 2, 3, 3, 3}) * 0.3, false);
  m.register_parameter("b", torch::randn({3}), false);
  m.define(R"(
    def forward(self, x):
        return torch.conv3d(x, self.w, self.b, [1, 1, 1], [1, 1, 1])
  )");
  return m;
}

// Removes every "date" key (the calibration date: it would change at midnight UTC).
void drop_dates(nlohmann::json& j) {
  if (j.is_object()) {
    j.erase("date");
    for (auto& kv : j.items()) drop_dates(kv.value());
  } else if (j.is_array()) {
    for (auto& v : j) drop_dates(v);
  }
}

std::string calibration_of(const std::string& dir) {
  std::ifstream f(dir + "/manifest.json");
  if (!f) return "(no manifest in " + dir + ")";
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded()) return "(unparseable manifest in " + dir + ")";
  nlohmann::json c = {{"calibration", j["calibration"]}, {"thresholds", j["thresholds"]}};
  drop_dates(c);
  return c.dump();
}

std::string drift(const mv_model* m, const std::vector<float>& z, std::string* out) {
  size_t needed = 0;
  if (mv_model_drift_check(m, z.data(), z.size(), nullptr, 0, &needed) != MV_OK) {
    return std::string("mv_model_drift_check (size): ") + mv_last_error();
  }
  std::string buf(needed, '\0');
  if (mv_model_drift_check(m, z.data(), z.size(), buf.data(), buf.size(), &needed) != MV_OK) {
    return std::string("mv_model_drift_check: ") + mv_last_error();
  }
  *out = buf;
  return "";
}

}  // namespace

TEST_CASE("threads: classify with mv_model_run and mv_model_run_batch", "[threads][model]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(3, 2);
  mv_model* model =
      load_shared(mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(3, 2)));
  // Grey and colour images of several sizes (the manifest resizes them to 16 x 16).
  std::vector<mv_image*> images;
  for (unsigned i = 0; i < 8; ++i) {
    images.push_back(noise_image(12 + 3 * i, 20 - i, i % 3 == 0 ? 3 : 1, 100 + i));
  }
  const std::vector<std::vector<mv_image*>> batches = {
      {images[0], images[1], images[2], images[3]}, {images[4], images[5], images[6], images[7]}};
  std::vector<std::string> serial(images.size());
  for (size_t i = 0; i < images.size(); ++i) REQUIRE(classify(model, images[i], &serial[i]) == "");
  std::vector<std::vector<std::string>> serial_batch(batches.size());
  for (size_t b = 0; b < batches.size(); ++b) {
    REQUIRE(classify_batch(model, batches[b], &serial_batch[b]) == "");
  }

  const auto faults = on_threads([&](int t, Faults& f) {
    for (int rep = 0; rep < 4; ++rep) {
      for (size_t k = 0; k < images.size(); ++k) {
        const size_t i = (k + static_cast<size_t>(t)) % images.size();  // each starts elsewhere
        std::string got;
        const std::string err = classify(model, images[i], &got);
        expect_same(f, "mv_model_run image " + std::to_string(i), err, got, serial[i]);
      }
      const size_t b = static_cast<size_t>(t + rep) % batches.size();
      std::vector<std::string> got;
      const std::string err = classify_batch(model, batches[b], &got);
      if (!err.empty()) {
        f.add(err);
      } else if (got != serial_batch[b]) {
        f.add("mv_model_run_batch " + std::to_string(b) + ": differs from the serial result");
      }
    }
  });
  MV_CHECK_NO_FAULTS(faults);
  for (auto* im : images) mv_image_free(im);
  mv_model_free(model);
}

TEST_CASE("threads: Grad-CAM, Grad-CAM++ and CAM; one heat map's image made once",
          "[threads][explain]") {
  TempDir tmp;
  auto module = square_detector();
  auto j = mvtest::base_manifest(1, 2, 32);
  j["labels"] = {"square", "no-square"};
  j["preprocess"][1]["mode"] = "letterbox";
  mv_model* model = load_shared(mvtest::write_package(tmp.path() / "pkg", module, j));
  const int64_t h = 40, w = 56;
  std::vector<float> px(static_cast<size_t>(h * w), 10.0f);
  for (int64_t y = 20; y < 32; ++y)
    for (int64_t x = 30; x < 44; ++x) px[static_cast<size_t>(y * w + x)] = 250.0f;
  mv_image* img = mvtest::image_from_floats(h, w, px);
  REQUIRE(img != nullptr);

  struct Call {
    mv_cam_method method;
    int32_t label;
  };
  const std::vector<Call> calls = {{MV_CAM_GRADCAM, 0},
                                   {MV_CAM_GRADCAM_PLUS_PLUS, 0},
                                   {MV_CAM_CAM, 0},
                                   {MV_CAM_GRADCAM, -1},
                                   {MV_CAM_GRADCAM, 1}};
  std::vector<std::string> serial(calls.size());
  for (size_t c = 0; c < calls.size(); ++c) {
    const std::string err = explain(model, img, calls[c].method, calls[c].label, &serial[c]);
    INFO(err);
    REQUIRE(err.empty());
  }

  // One map shared by all threads: mv_heatmap_image() makes its image on the first call.
  mv_explain_options o;
  REQUIRE(mv_explain_options_default(&o) == MV_OK);
  mv_heatmap* shared = nullptr;
  REQUIRE(mv_explain(model, img, &o, &shared) == MV_OK);
  std::vector<const mv_image*> shared_images(kThreads, nullptr);

  const auto faults = on_threads([&](int t, Faults& f) {
    shared_images[static_cast<size_t>(t)] = mv_heatmap_image(shared);
    for (int rep = 0; rep < 2; ++rep) {
      for (size_t k = 0; k < calls.size(); ++k) {
        const size_t c = (k + static_cast<size_t>(t)) % calls.size();
        std::string got;
        const std::string err = explain(model, img, calls[c].method, calls[c].label, &got);
        expect_same(f, "mv_explain call " + std::to_string(c), err, got, serial[c]);
      }
    }
  });
  MV_CHECK_NO_FAULTS(faults);
  REQUIRE(shared_images[0] != nullptr);
  for (const mv_image* im : shared_images) CHECK(im == shared_images[0]);
  CHECK(std::memcmp(mv_image_data(shared_images[0]), mv_heatmap_data(shared),
                    static_cast<size_t>(h * w) * sizeof(float)) == 0);
  mv_heatmap_free(shared);
  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("threads: 2D and 3D sliding-window segmentation and segmentation Grad-CAM",
          "[threads][segment]") {
  TempDir tmp;
  auto m2 = seg2d();
  auto j2 = mvtest::seg_manifest(1, {"background", "a", "b"}, {16, 16}, "softmax");
  j2["explain"] = {{"activations", "explain_forward"}};
  mv_model* model2d = load_shared(mvtest::write_package(tmp.path() / "seg2d", m2, j2));
  auto m3 = seg3d();
  mv_model* model3d = load_shared(mvtest::write_package(
      tmp.path() / "seg3d", m3,
      mvtest::seg_manifest(2, {"background", "a", "b"}, {8, 8, 8}, "softmax")));

  // 30 x 44 pixels in 16 x 16 windows (overlap 0.5) and 2 x 10 x 12 x 9 voxels in 8^3 windows.
  mv_image* img2d = noise_image(30, 44, 1, 7);
  const mvtest::Volume v = mvtest::random_volume(2, 10, 12, 9, 3);
  mv_image* img3d = mvtest::make_image(v);

  std::string s2d, s2d_mirror, s3d, s2d_run, s_cam;
  REQUIRE(segment(model2d, img2d, 0, &s2d) == "");
  REQUIRE(segment(model2d, img2d, 1, &s2d_mirror) == "");
  REQUIRE(segment(model3d, img3d, 0, &s3d) == "");
  REQUIRE(classify(model2d, img2d, &s2d_run) == "");  // mv_model_run: the manifest's settings
  {
    const std::string err = explain(model2d, img2d, MV_CAM_GRADCAM, 1, &s_cam);
    INFO(err);
    REQUIRE(err.empty());
  }

  const auto faults = on_threads([&](int t, Faults& f) {
    for (int rep = 0; rep < 2; ++rep) {
      for (int k = 0; k < 5; ++k) {
        std::string got, err;
        switch ((k + t) % 5) {
          case 0:
            err = segment(model2d, img2d, 0, &got);
            expect_same(f, "2D segment", err, got, s2d);
            break;
          case 1:
            err = segment(model2d, img2d, 1, &got);
            expect_same(f, "2D segment with mirror TTA", err, got, s2d_mirror);
            break;
          case 2:
            err = segment(model3d, img3d, 0, &got);
            expect_same(f, "3D segment", err, got, s3d);
            break;
          case 3:
            err = classify(model2d, img2d, &got);
            expect_same(f, "mv_model_run on a segmentation model", err, got, s2d_run);
            break;
          default:
            err = explain(model2d, img2d, MV_CAM_GRADCAM, 1, &got);
            expect_same(f, "segmentation Grad-CAM", err, got, s_cam);
            break;
        }
      }
    }
  });
  MV_CHECK_NO_FAULTS(faults);
  mv_image_free(img3d);
  mv_image_free(img2d);
  mv_model_free(model3d);
  mv_model_free(model2d);
}

TEST_CASE("threads: drift checks and calibrated results of one calibrated model; calibrate",
          "[threads][calibrate]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 1);
  mv_model* model =
      load_shared(mvtest::write_package(tmp.path() / "p", module, mvtest::base_manifest(1, 1, 8)));
  // Overconfident synthetic outputs: labels drawn from sigmoid(z / 3), logits z.
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const size_t n = 400;
  std::vector<float> z(n);
  std::vector<int32_t> y(n);
  for (size_t i = 0; i < n; ++i) {
    z[i] = nd(rng);
    y[i] = u(rng) < 1.0f / (1.0f + std::exp(-z[i] / 3.0f)) ? 1 : 0;
  }
  mv_calibrate_options co;
  REQUIRE(mv_calibrate_options_default(&co) == MV_OK);
  co.version = "0.0.2";
  co.conformal = 1;
  const std::string cal_dir = (tmp.path() / "calibrated").string();
  {
    const mv_status s = mv_model_calibrate(model, z.data(), y.data(), n, &co, cal_dir.c_str());
    INFO(mv_last_error());
    REQUIRE(s == MV_OK);
  }
  const std::string serial_calibration = calibration_of(cal_dir);
  mv_model* cal = load_shared(cal_dir);

  const std::vector<float> same(z.begin(), z.begin() + 200);
  std::vector<float> moved(same);
  for (float& x : moved) x += 6.0f;
  std::string drift_same, drift_moved, run_serial;
  REQUIRE(drift(cal, same, &drift_same) == "");
  REQUIRE(drift(cal, moved, &drift_moved) == "");
  CHECK(drift_same.find("\"shifted\":false") != std::string::npos);
  CHECK(drift_moved.find("\"shifted\":true") != std::string::npos);
  mv_image* img = noise_image(8, 8, 1, 9);
  REQUIRE(classify(cal, img, &run_serial) == "");

  const auto faults = on_threads([&](int t, Faults& f) {
    for (int rep = 0; rep < 4; ++rep) {
      std::string got, err;
      err = drift(cal, (rep + t) % 2 ? same : moved, &got);
      expect_same(f, "drift check", err, got, (rep + t) % 2 ? drift_same : drift_moved);
      err = classify(cal, img, &got);
      expect_same(f, "calibrated mv_model_run", err, got, run_serial);
    }
    // Each thread calibrates the shared model into a folder of its own.
    const std::string dir = (tmp.path() / ("cal-" + std::to_string(t))).string();
    if (mv_model_calibrate(model, z.data(), y.data(), n, &co, dir.c_str()) != MV_OK) {
      f.add(std::string("mv_model_calibrate: ") + mv_last_error());
    } else if (calibration_of(dir) != serial_calibration) {
      f.add("mv_model_calibrate: the calibration differs from the serial one");
    }
  });
  MV_CHECK_NO_FAULTS(faults);
  mv_image_free(img);
  mv_model_free(cal);
  mv_model_free(model);
}

TEST_CASE("threads: 8 threads load the same package (folder and archive) at once",
          "[threads][model]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(3, 2);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(3, 2));
  const std::string archive = (tmp.path() / "pkg.tar.gz").string();
  REQUIRE(std::system(("tar -C '" + pkg + "' -czf '" + archive + "' .").c_str()) == 0);
  mv_image* img = noise_image(20, 18, 3, 4);
  mv_model* model = load_shared(pkg);
  std::string serial;
  REQUIRE(classify(model, img, &serial) == "");
  mv_model_free(model);

  const auto faults = on_threads([&](int t, Faults& f) {
    for (int rep = 0; rep < 2; ++rep) {
      const std::string& path = (t + rep) % 2 ? archive : pkg;
      const mv_model_options o = cpu_options();
      mv_model* m = nullptr;
      if (mv_model_load(path.c_str(), &o, &m) != MV_OK) {
        f.add(path + ": " + mv_last_error());
        continue;
      }
      std::string got;
      const std::string err = classify(m, img, &got);
      expect_same(f, path, err, got, serial);
      if (std::string(mv_model_name(m)) != "tiny-linear") f.add(path + ": name");
      mv_model_free(m);
    }
  });
  MV_CHECK_NO_FAULTS(faults);
  mv_image_free(img);
}
