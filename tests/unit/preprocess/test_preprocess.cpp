// medvision::preprocess against independent references: numpy / torch / torchvision outputs
// written by scripts/make_preprocess_reference.py (a CTest fixture, MV_PREPROCESS_REF), and
// hand-computed values for tiny synthetic inputs.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "preprocess/preprocess.hpp"
#include "preprocess/step.hpp"
#include "test_data.hpp"

using medvision::Error;
using medvision::Image;
using medvision::preprocess::InputSpec;
using medvision::preprocess::map_to_original;
using medvision::preprocess::Pipeline;
using medvision::preprocess::Prepared;
using nlohmann::json;

namespace {

struct Npy {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Reads a little-endian float32 C-order .npy (all the reference script writes).
Npy read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  char magic[10];
  f.read(magic, 10);
  const size_t header_len = static_cast<unsigned char>(magic[8]) |
                            (static_cast<size_t>(static_cast<unsigned char>(magic[9])) << 8);
  std::string header(header_len, ' ');
  f.read(&header[0], static_cast<std::streamsize>(header_len));
  REQUIRE(header.find("'<f4'") != std::string::npos);
  REQUIRE(header.find("'fortran_order': False") != std::string::npos);
  Npy n;
  const size_t open = header.find('(', header.find("'shape'"));
  const size_t close = header.find(')', open);
  std::string dims = header.substr(open + 1, close - open - 1);
  size_t pos = 0;
  while (pos < dims.size()) {
    const size_t comma = dims.find(',', pos);
    const std::string tok =
        dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (tok.find_first_of("0123456789") != std::string::npos) n.shape.push_back(std::stoll(tok));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  int64_t count = 1;
  for (int64_t d : n.shape) count *= d;
  n.data.resize(static_cast<size_t>(count));
  f.read(reinterpret_cast<char*>(n.data.data()), static_cast<std::streamsize>(count * 4));
  REQUIRE(f.good());
  return n;
}

// The reference directory, or "" (with a skip notice) when the fixture did not produce it.
std::string ref(const std::string& name) {
  const char* dir = std::getenv("MV_PREPROCESS_REF");
  const std::string path = std::string(dir ? dir : "") + "/" + name + ".npy";
  if (dir == nullptr || !std::ifstream(path).good()) {
    if (mvtest::in_ci()) FAIL("reference missing: " << path);
    WARN("SKIPPED: reference " << path << " not found (run through ctest)");
    return {};
  }
  return path;
}

Image make_image(int64_t c, int64_t d, int64_t h, int64_t w, std::vector<float> values = {}) {
  Image im(c, d, h, w, medvision::kDefaultMaxValues, "test");
  std::fill(im.data(), im.data() + im.size(), 0.0f);  // Image leaves its buffer uninitialised
  if (!values.empty()) {
    REQUIRE(values.size() == im.size());
    std::copy(values.begin(), values.end(), im.data());
  }
  im.photometric = c == 3 ? MV_PHOTOMETRIC_RGB : MV_PHOTOMETRIC_MONOCHROME2;
  return im;
}

// Real PNGs are read with OpenCV directly (the raster reader is a separate module).
Image load_png(const std::string& rel, int64_t crop_width = 0) {
  const std::string path = mvtest::data_path(rel);
  if (path.empty()) return {};
  cv::Mat m = cv::imread(path, cv::IMREAD_UNCHANGED);
  REQUIRE(!m.empty());
  REQUIRE(m.channels() == 1);
  if (crop_width > 0) m = m(cv::Rect(0, 0, static_cast<int>(crop_width), m.rows)).clone();
  cv::Mat f;
  m.convertTo(f, CV_32F);
  Image im = make_image(1, 1, f.rows, f.cols);
  for (int y = 0; y < f.rows; ++y) {
    std::copy(f.ptr<float>(y), f.ptr<float>(y) + f.cols, im.data() + int64_t{y} * f.cols);
  }
  return im;
}

Pipeline make(const std::string& steps, int64_t channels = 1, int ndim = 2,
              std::vector<int64_t> size = {224, 224}) {
  InputSpec in;
  in.channels = channels;
  in.ndim = ndim;
  in.size = std::move(size);
  in.modalities = {"CR", "DX"};
  return Pipeline::from_json(json::parse(steps), in, "test.json");
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

bool has_warning(const Prepared& p, const std::string& needle) {
  return std::any_of(p.warnings.begin(), p.warnings.end(),
                     [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

template <typename F>
void require_error(F&& f, mv_status status, const std::string& needle) {
  try {
    f();
    FAIL("no error; expected: " << needle);
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.status() == status);
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("preprocess: manifest validation", "[preprocess]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([{"op": "foo"}])", "test.json: preprocess[0].op: unknown step 'foo'"},
      {R"([{"mode": "minmax"}])", "preprocess[0]: 'op' is required"},
      {R"({"op": "scale"})", "'preprocess' must be an array"},
      {R"([42])", "preprocess[0]: must be an object"},
      {R"([{"op": "monochrome", "invert": true}])",
       "preprocess[0] (monochrome): unknown parameter 'invert'"},
      {R"([{"op": "monochrome"}, {"op": "monochrome"}, {"op": "resize", "size": [224]}])",
       "test.json: preprocess[2] (resize): 'size' must be two positive integers"},
      {R"([{"op": "resize", "size": [224, 0]}])", "'size' must be two positive integers"},
      {R"([{"op": "resize", "size": [224, 22.5]}])", "'size' must be two positive integers"},
      {R"([{"op": "resize"}])", "(resize): 'size' is required"},
      {R"([{"op": "resize", "size": [2, 2], "mode": "fit"}])", "'mode' must be one of"},
      {R"([{"op": "resize", "size": [2, 2], "antialias": 1}])", "'antialias' must be true"},
      {R"([{"op": "resize", "size": [2, 2], "interpolation": "cubic"}])",
       "unknown parameter 'interpolation'"},
      {R"([{"op": "scale"}])", "(scale): 'mode' is required"},
      {R"([{"op": "scale", "mode": "percentile", "low": 99, "high": 1}])",
       "'low' must be below 'high'"},
      {R"([{"op": "scale", "mode": "percentile", "low": -1}])", "'low' must be a percentile"},
      {R"([{"op": "scale", "mode": "percentile", "high": 100.5}])", "'high' must be a percentile"},
      {R"([{"op": "scale", "mode": "fixed", "min": 5, "max": 5}])", "'min' must be below 'max'"},
      {R"([{"op": "scale", "mode": "fixed", "min": "0", "max": 5}])", "'min' must be a number"},
      {R"([{"op": "scale", "mode": "minmax", "low": 1}])", "unknown parameter 'low'"},
      {R"([{"op": "window", "mode": "explicit", "center": 40}])", "'width' is required"},
      {R"([{"op": "window", "mode": "explicit", "center": 40, "width": 0.5}])",
       "'width' must be >= 1"},
      {R"([{"op": "window", "mode": "explicit", "center": 4, "width": 0, "function": "sigmoid"}])",
       "'width' must be positive"},
      {R"([{"op": "window", "function": "cubic"}])", "'function' must be one of"},
      {R"([{"op": "normalize", "mean": [0.5], "std": [0]}])", "'std' must be positive"},
      {R"([{"op": "normalize", "mean": 0.5, "std": -1}])", "'std' must be positive"},
      {R"([{"op": "normalize", "mean": [0.5, 0.5], "std": 1}])",
       "'mean' must be a number or an array of 1 numbers"},
      {R"([{"op": "normalize", "mean": 0.5}])", "'std' is required"},
      {R"([{"op": "normalize", "mode": "range", "min": 0, "max": 1, "to": [1, -1]}])",
       "'to' must be [a, b] with a < b"},
      {R"([{"op": "normalize", "mode": "range", "min": 0, "max": 1, "to": [1]}])",
       "'to' must be an array of 2 numbers"},
      {R"([{"op": "normalize", "mode": "zscore", "nonzero": "yes"}])", "'nonzero' must be"},
      {R"([{"op": "channels", "channels": 0}])", "'channels' must be a positive integer"},
      {R"([{"op": "center_crop", "size": [-1, 3]}])", "'size' must be two positive integers"},
      {R"([{"op": "resample", "spacing": [1, 1, 1]}])", "(resample): only for 3D models"},
      {R"([{"op": "reorient", "to": "RAS"}])", "(reorient): only for 3D models"},
      {R"([{"op": "crop_pad", "size": [1, 1, 1]}])", "(crop_pad): only for 3D models"},
      {R"([{"op": "clip"}])", "(clip): 'min' is required"},
      {R"([{"op": "clip", "min": 3, "max": 3}])", "'min' must be below 'max'"},
      {R"([{"op": "clip", "min": 0, "max": "1"}])", "'max' must be a number"},
      {R"([{"op": "clip", "mode": "percentile", "low": 90, "high": 10}])",
       "'low' must be below 'high'"},
      {R"([{"op": "clip", "mode": "percentile", "high": 101}])", "'high' must be a percentile"},
      {R"([{"op": "clip", "mode": "percentile", "min": 0}])", "unknown parameter 'min'"},
      {R"([{"op": "clip", "mode": "range"}])", "'mode' must be one of 'fixed', 'percentile'"},
  };
  for (const auto& c : cases) {
    INFO(c.first);
    require_error([&] { make(c.first); }, MV_ERR_MODEL, c.second);
  }
  const std::vector<std::pair<std::string, std::string>> cases3d = {
      {R"([{"op": "resample"}])", "'spacing' is required when input.spacing is null"},
      {R"([{"op": "resample", "spacing": [1, 0, 1]}])", "'spacing' must be three positive"},
      {R"([{"op": "resample", "spacing": [1, 1, 1], "order": 3}])", "'order' must be 1"},
      {R"([{"op": "reorient", "to": "RAI"}])", "'to' must be one of 'RAS', 'LPS'"},
      {R"([{"op": "reorient"}])", "'to' is required"},
      {R"([{"op": "crop_pad", "size": [1, 1]}])", "'size' must be three positive integers"},
      {R"([{"op": "crop_pad", "size": [1, 1, 1], "mode": "bbox"}])", "'mode' must be one of"},
  };
  for (const auto& c : cases3d) {
    INFO(c.first);
    require_error([&] { make(c.first, 1, 3, {8, 8, 8}); }, MV_ERR_MODEL, c.second);
  }
  InputSpec bad;
  bad.ndim = 4;
  require_error([&] { Pipeline::from_json(json::array(), bad, "m"); }, MV_ERR_MODEL, "ndim");
}

TEST_CASE("preprocess: monochrome inverts MONOCHROME1 only", "[preprocess]") {
  Image im = make_image(1, 1, 1, 4, {0, 1, 5, 3});
  im.photometric = MV_PHOTOMETRIC_MONOCHROME1;
  const Prepared p = make(R"([{"op": "monochrome"}])").run(im);
  CHECK(p.data == std::vector<float>{5, 4, 0, 2});
  CHECK(p.shape == std::vector<int64_t>{1, 1, 4});
  CHECK(p.warnings.empty());
  // Without the step: a warning, pixels untouched.
  const Prepared q = make("[]").run(im);
  CHECK(q.data == std::vector<float>{0, 1, 5, 3});
  CHECK(has_warning(q, "MONOCHROME1"));
  im.photometric = MV_PHOTOMETRIC_MONOCHROME2;
  CHECK(make(R"([{"op": "monochrome"}])").run(im).data == std::vector<float>{0, 1, 5, 3});
}

TEST_CASE("preprocess: window, DICOM PS3.3 C.11.2.1.2 formulas", "[preprocess]") {
  // c = 40, w = 400: 0 up to c - 0.5 - (w-1)/2 = -160, 1 above c - 0.5 + (w-1)/2 = 239,
  // y = (x - 39.5) / 399 + 0.5 between.
  Image im = make_image(1, 1, 1, 6, {-1000, -160, -159, 39.5f, 40, 239.5f});
  const Prepared lin =
      make(R"([{"op": "window", "mode": "explicit", "center": 40, "width": 400}])").run(im);
  const std::vector<float> want{
      0, 0, static_cast<float>(0.5 - 198.5 / 399), 0.5f, static_cast<float>(0.5 / 399 + 0.5), 1};
  for (size_t i = 0; i < want.size(); ++i) CHECK(lin.data[i] == Approx(want[i]).margin(1e-6));
  // Sigmoid: 1 / (1 + exp(-4 (x - c) / w)); x = c + w/4 gives 1 / (1 + e^-1).
  Image s = make_image(1, 1, 1, 3, {40, 140, -60});
  const Prepared sig = make(R"([{"op": "window", "mode": "explicit", "center": 40, "width": 400,
                                 "function": "sigmoid"}])")
                           .run(s);
  CHECK(sig.data[0] == Approx(0.5));
  CHECK(sig.data[1] == Approx(0.7310585786));
  CHECK(sig.data[2] == Approx(0.2689414214));
  // DICOM mode: the image's first preset with its own function (LINEAR_EXACT here).
  Image d = make_image(1, 1, 1, 3, {0, 50, 100});
  d.windows.push_back({50, 100, MV_VOI_LINEAR_EXACT, "TEST", {}, 0, 16});
  d.windows.push_back({0, 10, MV_VOI_LINEAR, "IGNORED", {}, 0, 16});
  const Prepared dp = make(R"([{"op": "window"}])").run(d);
  CHECK(dp.data == std::vector<float>{0.0f, 0.5f, 1.0f});
  CHECK(dp.warnings.empty());
  // A VOI LUT table: x -> table[clamp(x - first, 0, n-1)] / (2^bits - 1).
  Image t = make_image(1, 1, 1, 4, {-5, 10, 11, 99});
  t.windows.push_back({0, 1, MV_VOI_TABLE, "", {0, 100, 200, 255}, 10, 8});
  CHECK(make(R"([{"op": "window"}])").run(t).data ==
        std::vector<float>{0.0f, 0.0f, 100.0f / 255, 1.0f});
  // No preset: percentile fallback (0 and 100 -> exact min/max) and a warning.
  Image f = make_image(1, 1, 1, 3, {10, 20, 30});
  const Prepared fp = make(R"([{"op": "window", "low": 0, "high": 100}])").run(f);
  CHECK(fp.data == std::vector<float>{0.0f, 0.5f, 1.0f});
  CHECK(has_warning(fp, "no VOI preset"));
}

TEST_CASE("preprocess: clip, fixed and percentile (numpy.clip)", "[preprocess]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // numpy.clip([-2000, -1024, 0, 500, 3071, 5000, nan], -1024, 3071).
  Image ct = make_image(1, 1, 1, 7, {-2000, -1024, 0, 500, 3071, 5000, nan});
  const Prepared f = make(R"([{"op": "clip", "min": -1024, "max": 3071}])").run(ct);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(f.data[i] == std::vector<float>{-1024, -1024, 0, 500, 3071, 3071}[i]);
  }
  CHECK(std::isnan(f.data[6]));
  CHECK(f.chain.applied.back() == "clip: fixed [-1024, 3071]");
  CHECK(f.chain.steps.empty());  // an intensity step moves no pixels
  // numpy.percentile(arange(1, 101), [5, 95]) = [5.95, 95.05], then numpy.clip.
  std::vector<float> v(100);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i + 1);
  Image im = make_image(1, 1, 10, 10, v);
  const Prepared p =
      make(R"([{"op": "clip", "mode": "percentile", "low": 5, "high": 95}])").run(im);
  CHECK(p.data[0] == Approx(5.95));
  CHECK(p.data[5] == 6.0f);
  CHECK(p.data[94] == 95.0f);
  CHECK(p.data[95] == Approx(95.05));
  CHECK(p.data[99] == Approx(95.05));
}

TEST_CASE("preprocess: the step table and the manifest schema list the same ops", "[preprocess]") {
  const char* src = std::getenv("MV_SOURCE_DIR");
  REQUIRE(src != nullptr);
  std::ifstream f(std::string(src) + "/docs/model-package.schema.json");
  REQUIRE(f.good());
  const json schema = json::parse(f);
  std::set<std::string> in_schema, in_table;
  for (const auto& op : schema["$defs"]["step"]["properties"]["op"]["enum"]) {
    in_schema.insert(op.get<std::string>());
  }
  for (const auto& k : medvision::preprocess::step_table()) in_table.insert(k.op);
  CHECK(in_schema == in_table);
}

TEST_CASE("preprocess: scale", "[preprocess]") {
  Image im = make_image(1, 1, 2, 2, {10, 20, 30, 50});
  CHECK(make(R"([{"op": "scale", "mode": "minmax"}])").run(im).data ==
        std::vector<float>{0.0f, 0.25f, 0.5f, 1.0f});
  CHECK(make(R"([{"op": "scale", "mode": "fixed", "min": 20, "max": 40}])").run(im).data ==
        std::vector<float>{0.0f, 0.0f, 0.5f, 1.0f});
  CHECK(make(R"([{"op": "scale", "mode": "fixed", "min": 20, "max": 40, "clip": false}])")
            .run(im)
            .data == std::vector<float>{-0.5f, 0.0f, 0.5f, 1.5f});
  // numpy: percentile([10, 20, 30, 50], 50) = 25, 90 -> 44.
  const Prepared p =
      make(R"([{"op": "scale", "mode": "percentile", "low": 50, "high": 90}])").run(im);
  CHECK(p.data[3] == 1.0f);
  CHECK(p.data[2] == Approx(5.0 / 19));
  const Image flat = make_image(1, 1, 2, 2, {7, 7, 7, 7});
  const Prepared c = make(R"([{"op": "scale", "mode": "minmax"}])").run(flat);
  CHECK(c.data == std::vector<float>{0, 0, 0, 0});
  CHECK(has_warning(c, "constant"));
  CHECK(has_warning(c, "no value range"));

  const Image nih = load_png("nih14/images/00000075_000.png");
  const std::string r = ref("nih_scale_percentile");
  if (nih.size() == 0 || r.empty()) return;
  const Prepared q =
      make(R"([{"op": "scale", "mode": "percentile", "low": 0.5, "high": 99.5}])").run(nih);
  CHECK(max_abs_diff(q.data, read_npy(r).data) <= 1e-5f);
}

TEST_CASE("preprocess: resize matches torch interpolate on real images", "[preprocess]") {
  struct Case {
    const char* image;
    const char* ref;
    int h, w;
    bool aa;
  };
  const Case cases[] = {
      {"nih14/images/00000075_000.png", "nih_resize224_aa", 224, 224, true},
      {"nih14/images/00000075_000.png", "nih_resize224_noaa", 224, 224, false},
      {"nih14/images/00000075_000.png", "nih_resize500x410_aa", 500, 410, true},
      {"jsrt/images/JPCLN001.png", "jsrt_resize224x200_aa", 224, 200, true},
      {"jsrt/images/JPCLN001.png", "jsrt_resize97x131_aa", 97, 131, true},
  };
  for (const Case& c : cases) {
    INFO(c.ref);
    const Image im = load_png(c.image);
    const std::string r = ref(c.ref);
    if (im.size() == 0 || r.empty()) continue;
    const std::string steps = "[{\"op\": \"resize\", \"size\": [" + std::to_string(c.h) + ", " +
                              std::to_string(c.w) +
                              "], \"antialias\": " + (c.aa ? "true" : "false") + "}]";
    const Prepared p = make(steps).run(im);
    const Npy want = read_npy(r);
    CHECK(p.shape == std::vector<int64_t>{1, c.h, c.w});
    const float err = max_abs_diff(p.data, want.data);
    // Pixel values are 0..255; 1e-4 relative to that range is 0.0255.
    CHECK(err / 255.0f <= 1e-4f);
    WARN(c.ref << ": max |medvision - torch| = " << err << " (values 0..255)");
  }
}

TEST_CASE("preprocess: letterbox and centre crop match torch/torchvision", "[preprocess]") {
  const Image im = load_png("jsrt/images/JPCLN001.png", 300);  // 384 x 300
  const std::string rc = ref("jsrt300_centercrop224"), rl = ref("jsrt300_letterbox224");
  if (im.size() == 0 || rc.empty() || rl.empty()) return;
  const Prepared c =
      make(R"([{"op": "resize", "mode": "center_crop", "size": [224, 224]}])").run(im);
  CHECK(max_abs_diff(c.data, read_npy(rc).data) / 255.0f <= 1e-4f);
  const Prepared l = make(R"([{"op": "resize", "mode": "letterbox", "size": [224, 224]}])").run(im);
  CHECK(max_abs_diff(l.data, read_npy(rl).data) / 255.0f <= 1e-4f);
  REQUIRE(l.chain.steps.size() == 2);
  CHECK(l.chain.steps[1].op == "pad");
  CHECK(l.chain.steps[1].offset[2] == 24.0);
}

TEST_CASE("preprocess: resize speed, 2500x2000 -> 224x224 antialiased", "[preprocess]") {
  Image im = make_image(1, 1, 2500, 2000);
  for (size_t i = 0; i < im.size(); ++i) im.data()[i] = static_cast<float>(i % 4093);
  const Pipeline p = make(R"([{"op": "resize", "size": [224, 224]}])");
  p.run(im);  // warm up
  const auto t0 = std::chrono::steady_clock::now();
  const int n = 10;
  for (int i = 0; i < n; ++i) p.run(im);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n;
  WARN("resize 2500x2000 -> 224x224 antialias (incl. the input checks): " << ms << " ms");
  // Reported, never asserted: timings belong to benchmarks/ (a loaded CI machine is slow).
}

TEST_CASE("preprocess: center_crop, channels, normalize", "[preprocess]") {
  std::vector<float> v(5 * 6);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Image im = make_image(1, 1, 5, 6, v);
  // torchvision: top = round((5 - 3) / 2) = 1, left = round((6 - 3) / 2) = round(1.5) = 2.
  const Prepared c = make(R"([{"op": "center_crop", "size": [3, 3]}])").run(im);
  CHECK(c.data == std::vector<float>{8, 9, 10, 14, 15, 16, 20, 21, 22});
  // Padding: (7 - 5) // 2 = 1 row above.
  const Prepared pd = make(R"([{"op": "center_crop", "size": [7, 6]}])").run(im);
  CHECK(pd.data[0] == 0.0f);
  CHECK(pd.data[6] == 0.0f);
  CHECK(pd.data[6 + 5] == 5.0f);

  const Prepared g = make(R"([{"op": "channels", "channels": 3}])", 3).run(im);
  CHECK(g.shape == std::vector<int64_t>{3, 5, 6});
  CHECK(g.data[30 + 7] == 7.0f);
  CHECK(g.data[60 + 29] == 29.0f);

  const Image rgb = make_image(3, 1, 1, 2, {1, 0, 0, 1, 0, 0.5f});
  const Prepared y = make(R"([{"op": "channels", "channels": 1}])").run(rgb);
  CHECK(y.data[0] == Approx(0.299f));
  CHECK(y.data[1] == Approx(0.587f + 0.5f * 0.114f));
  CHECK(has_warning(y, "colour image"));

  const Prepared n = make(R"([{"op": "channels", "channels": 3},
      {"op": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}])",
                          3)
                         .run(make_image(1, 1, 1, 1, {0.5f}));
  CHECK(n.data[0] == Approx((0.5 - 0.485) / 0.229));
  CHECK(n.data[1] == Approx((0.5 - 0.456) / 0.224));
  CHECK(n.data[2] == Approx((0.5 - 0.406) / 0.225));

  // torchxrayvision normalize(img, 255): (2 * x / 255 - 1) * 1024, values above 255 clipped.
  const Prepared x = make(R"([{"op": "normalize", "mode": "range", "min": 0, "max": 255,
                                "to": [-1024, 1024]}])")
                         .run(make_image(1, 1, 1, 4, {0, 51, 255, 300}));
  CHECK(x.data[0] == -1024.0f);
  CHECK(x.data[1] == Approx((2.0 * 51 / 255 - 1) * 1024));
  CHECK(x.data[2] == 1024.0f);
  CHECK(x.data[3] == 1024.0f);

  // z-score (population std): [1, 2, 3, 4] -> mean 2.5, std sqrt(1.25).
  const Prepared z =
      make(R"([{"op": "normalize", "mode": "zscore"}])").run(make_image(1, 1, 1, 4, {1, 2, 3, 4}));
  CHECK(z.data[0] == Approx(-1.5 / std::sqrt(1.25)));
  CHECK(z.data[3] == Approx(1.5 / std::sqrt(1.25)));
}

TEST_CASE("preprocess: shape errors and warnings", "[preprocess]") {
  const Image vol = make_image(1, 4, 3, 3);
  require_error([&] { make("[]").run(vol); }, MV_ERR_SHAPE_MISMATCH,
                "the model takes 2D images but the image has 4 slices");
  const Image im = make_image(1, 1, 3, 3, std::vector<float>(9, 1.0f));
  require_error([&] { make("[]", 3).run(im); }, MV_ERR_SHAPE_MISMATCH,
                "expects 3 channels but the pipeline produced 1");
  require_error([&] { make(R"([{"op": "channels", "channels": 3}])", 1).run(im); },
                MV_ERR_SHAPE_MISMATCH, "expects 1 channels but the pipeline produced 3");
  Image ct = make_image(1, 1, 2, 2, {0, 1, 2, 3});
  ct.set_meta("Modality", "CT");
  const Prepared p = make("[]").run(ct);
  CHECK(has_warning(p, "modality CT"));
  CHECK(has_warning(make("[]").run(im), "constant"));
  CHECK(make("[]").run(make_image(1, 1, 1, 2, {0, 1})).warnings.empty());
}

TEST_CASE("preprocess: 3D resample matches torch trilinear; zscore nonzero", "[preprocess]") {
  const std::string ri = ref("vol_input"), ro = ref("vol_resampled");
  const std::string rz = ref("vol_zero_rows"), rzo = ref("vol_zscore_nonzero");
  if (ri.empty() || ro.empty() || rz.empty() || rzo.empty()) return;
  const Npy in = read_npy(ri), want = read_npy(ro);
  Image vol = make_image(1, in.shape[0], in.shape[1], in.shape[2], in.data);
  vol.geometry.spacing = {0.8, 0.8, 2.5};  // (x, y, z)
  const Prepared p =
      make(R"([{"op": "resample", "spacing": [1.5, 1.2, 1.0]}])", 1, 3, {8, 8, 8}).run(vol);
  CHECK(p.shape == std::vector<int64_t>{1, want.shape[0], want.shape[1], want.shape[2]});
  CHECK(max_abs_diff(p.data, want.data) <= 1e-3f);  // values 0..100
  const Npy zi = read_npy(rz);
  const Prepared z =
      make(R"([{"op": "normalize", "mode": "zscore", "nonzero": true}])", 1, 3, {8, 8, 8})
          .run(make_image(1, zi.shape[0], zi.shape[1], zi.shape[2], zi.data));
  CHECK(max_abs_diff(z.data, read_npy(rzo).data) <= 1e-5f);
}

TEST_CASE("preprocess: reorient to RAS / LPS", "[preprocess]") {
  // 2 x 3 x 4 volume, value = 100 z + 10 y + x. Direction: columns (x, y, z axes) in LPS.
  std::vector<float> v;
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) v.push_back(static_cast<float>(100 * z + 10 * y + x));
  Image vol = make_image(1, 2, 3, 4, v);
  // Already LPS: identity, no grid step.
  const Prepared lps = make(R"([{"op": "reorient", "to": "LPS"}])", 1, 3, {2, 3, 4}).run(vol);
  CHECK(lps.data == v);
  CHECK(lps.chain.steps.empty());
  // LPS -> RAS flips x and y.
  const Prepared ras = make(R"([{"op": "reorient", "to": "RAS"}])", 1, 3, {2, 3, 4}).run(vol);
  REQUIRE(ras.chain.steps.size() == 1);
  CHECK(ras.data[0] == 23.0f);  // z 0, y 2, x 3
  CHECK(ras.data[1] == 22.0f);
  CHECK(ras.data[12 + 4 * 2 + 3] == 100.0f);  // z 1, y 0, x 0
  // Columns: image x runs along +S, y along -P (= A), z along +L: a sagittal-like stack.
  vol.geometry.direction = {0, 0, 1, 0, -1, 0, 1, 0, 0};
  const Prepared s = make(R"([{"op": "reorient", "to": "LPS"}])", 1, 3, {4, 3, 2}).run(vol);
  // Output D (S) takes input x, H (P) takes input y flipped, W (L) takes input z.
  CHECK(s.shape == std::vector<int64_t>{1, 4, 3, 2});
  const auto at = [&](int64_t d, int64_t h, int64_t w) { return s.data[(d * 3 + h) * 2 + w]; };
  CHECK(at(0, 0, 0) == 20.0f);   // x 0, y 2, z 0
  CHECK(at(3, 0, 1) == 123.0f);  // x 3, y 2, z 1
  CHECK(at(1, 2, 1) == 101.0f);  // x 1, y 0, z 1
}

TEST_CASE("preprocess: crop_pad centre and non-zero box", "[preprocess]") {
  Image vol = make_image(1, 4, 6, 6);
  std::fill(vol.data(), vol.data() + vol.size(), 0.0f);
  vol.data()[(1 * 6 + 4) * 6 + 4] = 7.0f;  // z 1, y 4, x 4
  const Prepared c = make(R"([{"op": "crop_pad", "size": [2, 8, 4]}])", 1, 3, {2, 8, 4}).run(vol);
  // D: crop round((4-2)/2) = 1; H: pad 1; W: crop 1 -> voxel at (0, 5, 3).
  CHECK(std::count(c.data.begin(), c.data.end(), 7.0f) == 1);
  CHECK(c.data[(0 * 8 + 5) * 4 + 3] == 7.0f);
  const Prepared nz =
      make(R"([{"op": "crop_pad", "size": [3, 3, 3], "mode": "nonzero"}])", 1, 3, {3, 3, 3})
          .run(vol);
  // The box is the single voxel; it lands in the centre of the 3^3 window.
  CHECK(nz.data[13] == 7.0f);
}

TEST_CASE("preprocess: map_to_original undoes the grid steps", "[preprocess]") {
  // A smooth map that is a function of original coordinates survives forward + back.
  const int64_t H = 2000, W = 2500;
  Image im = make_image(1, 1, H, W);
  const auto f = [](int64_t y, int64_t x) {
    return static_cast<float>(0.01 * static_cast<double>(y) + 0.02 * static_cast<double>(x));
  };
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) im.data()[y * W + x] = f(y, x);
  for (const char* mode : {"stretch", "letterbox", "center_crop"}) {
    INFO(mode);
    const Prepared p =
        make(std::string(R"([{"op": "resize", "size": [224, 224], "mode": ")") + mode + "\"}]")
            .run(im);
    const std::vector<float> back = map_to_original(p.chain, p.data.data(), 1, false, -1.0f);
    REQUIRE(back.size() == static_cast<size_t>(H * W));
    // Away from the borders (where the antialias filter is cut), within interpolation error.
    double worst = 0;
    int64_t filled = 0;
    for (int64_t y = 100; y < H - 100; y += 7) {
      for (int64_t x = 100; x < W - 100; x += 7) {
        const float b = back[y * W + x];
        if (b == -1.0f) {
          ++filled;
          continue;
        }
        // The outermost half model pixel is clamped, not extrapolated: skip next to a crop.
        if (back[y * W + std::max<int64_t>(x - 20, 0)] == -1.0f ||
            back[y * W + std::min<int64_t>(x + 20, W - 1)] == -1.0f)
          continue;
        worst = std::max(worst, std::fabs(static_cast<double>(b - f(y, x))));
      }
    }
    CHECK(worst < 1e-2);  // values span 0..70
    if (std::string(mode) == "center_crop") {
      CHECK(filled > 0);
      CHECK(back[0] == -1.0f);  // cropped away on the left
      CHECK(back[1000 * W + 1250] != -1.0f);
    } else {
      CHECK(filled == 0);
    }
  }
  // A single hot pixel lands where it should (letterbox: scale 224/2500, 25-row pad... ).
  for (const char* mode : {"letterbox", "center_crop"}) {
    INFO(mode);
    const Prepared p =
        make(std::string(R"([{"op": "resize", "size": [224, 224], "mode": ")") + mode + "\"}]")
            .run(im);
    std::vector<float> hot(224 * 224, 0.0f);
    hot[100 * 224 + 150] = 1.0f;
    const std::vector<float> back = map_to_original(p.chain, hot.data(), 1, true, 0.0f);
    double sy = 0, sx = 0, n = 0;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        if (back[y * W + x] == 1.0f) {
          sy += static_cast<double>(y);
          sx += static_cast<double>(x);
          n += 1;
        }
    REQUIRE(n > 0);
    // Expected: invert the resize (half-pixel) and the pad/crop by hand.
    double ey, ex;
    if (std::string(mode) == "letterbox") {
      // 2000x2500 -> 179x224, pad top (224 - 179) / 2 = 22.
      ey = (100 - 22 + 0.5) * 2000.0 / 179 - 0.5;
      ex = (150 + 0.5) * 2500.0 / 224 - 0.5;
    } else {
      // 2000x2500 -> 224x280 (int(224 * 2500 / 2000)), crop left round(56 / 2) = 28.
      ey = (100 + 0.5) * 2000.0 / 224 - 0.5;
      ex = (150 + 28 + 0.5) * 2500.0 / 280 - 0.5;
    }
    CHECK(std::fabs(sy / n - ey) < 0.6);
    CHECK(std::fabs(sx / n - ex) < 0.6);
    // And forward: an original hot spot peaks at the predicted model pixel.
    Image spot = make_image(1, 1, H, W);
    std::fill(spot.data(), spot.data() + spot.size(), 0.0f);
    for (int64_t y = -6; y <= 6; ++y)
      for (int64_t x = -6; x <= 6; ++x)
        spot.data()[(static_cast<int64_t>(std::lround(ey)) + y) * W +
                    static_cast<int64_t>(std::lround(ex)) + x] = 1.0f;
    const Prepared fwd =
        make(std::string(R"([{"op": "resize", "size": [224, 224], "mode": ")") + mode + "\"}]")
            .run(spot);
    const auto it = std::max_element(fwd.data.begin(), fwd.data.end());
    const int64_t k = it - fwd.data.begin();
    CHECK(k / 224 == 100);
    CHECK(k % 224 == 150);
  }
}

TEST_CASE("preprocess: map_to_original through 3D reorient, resample, crop_pad", "[preprocess]") {
  const int64_t D = 20, H = 30, W = 40;
  Image vol = make_image(1, D, H, W);
  vol.geometry.spacing = {1.0, 1.5, 3.0};
  vol.geometry.direction = {-1, 0, 0, 0, 1, 0, 0, 0, 1};  // x runs to R
  const auto f = [](int64_t z, int64_t y, int64_t x) {
    return static_cast<float>(static_cast<double>(z) + 0.5 * static_cast<double>(y) +
                              0.25 * static_cast<double>(x));
  };
  for (int64_t z = 0; z < D; ++z)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) vol.data()[(z * H + y) * W + x] = f(z, y, x);
  const Prepared p = make(R"([{"op": "reorient", "to": "LPS"},
                              {"op": "resample", "spacing": [2, 2, 2]},
                              {"op": "crop_pad", "size": [24, 16, 24]}])",
                          1, 3, {24, 16, 24})
                         .run(vol);
  CHECK(p.shape == std::vector<int64_t>{1, 24, 16, 24});
  CHECK(p.chain.steps.size() == 3);
  const std::vector<float> back = map_to_original(p.chain, p.data.data(), 1, false, -100.0f);
  double worst = 0;
  int64_t filled = 0;
  for (int64_t z = 2; z < D - 2; ++z)
    for (int64_t y = 2; y < H - 2; ++y)
      for (int64_t x = 2; x < W - 2; ++x) {
        const float b = back[(z * H + y) * W + x];
        if (b == -100.0f) {
          ++filled;
          continue;
        }
        // The outermost half model voxel is clamped, not extrapolated: skip next to a crop.
        bool edge = false;
        for (int64_t d = -2; d <= 2; ++d) {
          const auto at = [&](int64_t zz, int64_t yy, int64_t xx) {
            return back[(std::clamp<int64_t>(zz, 0, D - 1) * H +
                         std::clamp<int64_t>(yy, 0, H - 1)) *
                            W +
                        std::clamp<int64_t>(xx, 0, W - 1)];
          };
          edge = edge || at(z + d, y, x) == -100.0f || at(z, y + d, x) == -100.0f ||
                 at(z, y, x + d) == -100.0f;
        }
        if (edge) continue;
        worst = std::max(worst, std::fabs(static_cast<double>(b - f(z, y, x))));
      }
  CHECK(worst < 1e-3);
  CHECK(filled > 0);  // H is cropped from 22 to 16
}
