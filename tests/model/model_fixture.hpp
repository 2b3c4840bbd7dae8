#pragma once
// Builds tiny model packages at test time: a TorchScript module defined from source with
// torch::jit::Module::define, saved next to a manifest.json with the right sha256.

#include <torch/cuda.h>
#include <torch/script.h>
#include <catch2/catch.hpp>

// glog, pulled in by LibTorch, defines CHECK as an assertion that aborts the process; give the
// name back to Catch2 so that a failed CHECK is reported and the test goes on.
#undef CHECK
#define CHECK(...) \
  INTERNAL_CATCH_TEST("CHECK", Catch::ResultDisposition::ContinueOnFailure, __VA_ARGS__)

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/sha256.hpp"
#include "medvision/medvision.h"

namespace mvtest {

namespace fs = std::filesystem;

// A fresh folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("mvtest-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A linear classifier over the global mean of each channel: logits = W @ mean_c(x) + b.
// `features` returns x itself (so CAM maps are defined) and `head` pools and applies W.
inline torch::jit::Module make_linear_module(int64_t channels, int64_t labels) {
  torch::jit::Module m("Linear");
  torch::manual_seed(7);
  m.register_parameter("w", torch::randn({labels, channels}), false);
  m.register_parameter("b", torch::randn({labels}), false);
  m.define(R"(
    def features(self, x):
        return x
    def head(self, f):
        pooled = f.mean(dim=[2, 3])
        return pooled.matmul(self.w.t()) + self.b
    def forward(self, x):
        return self.head(self.features(x))
  )");
  return m;
}

inline nlohmann::json base_manifest(int64_t channels, int64_t labels, int64_t size = 16) {
  nlohmann::json j;
  j["format_version"] = 1;
  j["name"] = "tiny-linear";
  j["version"] = "0.0.1";
  j["task"] = "classification";
  j["labels"] = nlohmann::json::array();
  for (int64_t i = 0; i < labels; ++i) j["labels"].push_back("L" + std::to_string(i));
  j["input"] = {{"channels", channels}, {"size", {size, size}}};
  j["preprocess"] =
      nlohmann::json::array({{{"op", "scale"}, {"mode", "fixed"}, {"min", 0.0}, {"max", 255.0}},
                             {{"op", "resize"}, {"mode", "stretch"}, {"size", {size, size}}},
                             {{"op", "channels"}, {"channels", channels}}});
  j["output"] = {{"activation", labels > 1 ? "softmax" : "sigmoid"}};
  j["explain"] = {{"features", "features"}, {"head", "head"}};
  j["notice"] = "Test model. Not for diagnostic use.";
  return j;
}

// Saves `module` and `manifest` (sha256 filled in) into `dir`. Returns the package folder.
inline std::string write_package(const fs::path& dir, torch::jit::Module& module,
                                 nlohmann::json manifest) {
  fs::create_directories(dir);
  module.save((dir / "model.pt").string());
  if (!manifest.contains("sha256")) {
    manifest["sha256"] = medvision::sha256_file((dir / "model.pt").string());
  }
  std::ofstream(dir / "manifest.json") << manifest.dump(2);
  return dir.string();
}

// Loads a package on the CPU, failing the test (with mv_last_error()) when it does not load.
inline mv_model* load_ok(const std::string& path) {
  mv_model* m = nullptr;
  mv_model_options o;
  REQUIRE(mv_model_options_default(&o) == MV_OK);
  o.device = "cpu";
  const mv_status s = mv_model_load(path.c_str(), &o, &m);
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  return m;
}

// An mv_image of h x w grey float pixels (or, with 3 values per pixel, interleaved RGB).
inline mv_image* image_from_floats(int64_t h, int64_t w, const std::vector<float>& px) {
  const int64_t c = static_cast<int64_t>(px.size()) / (h * w);
  mv_tensor_view v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_FLOAT32;
  v.data = px.data();
  v.ndim = c == 1 ? 2 : 3;
  v.shape[0] = h;
  v.shape[1] = w;
  v.shape[2] = c;
  v.strides[0] = static_cast<int64_t>(w * c * sizeof(float));
  v.strides[1] = static_cast<int64_t>(c * sizeof(float));
  v.strides[2] = sizeof(float);
  mv_image* img = nullptr;
  if (mv_image_from_pixels(&v, nullptr, &img) != MV_OK) return nullptr;
  return img;
}

}  // namespace mvtest
