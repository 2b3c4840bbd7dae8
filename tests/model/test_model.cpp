// Model packages through the C ABI: loading, validation, classification, batching, threads and
// every error path, on tiny TorchScript models made here.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "medvision/medvision.h"
#include "medvision/medvision.hpp"
#include "model_fixture.hpp"

namespace {

using mvtest::load_ok;
using mvtest::TempDir;
namespace fs = std::filesystem;

// A grey image of constant value `v` (or a ramp when ramp = true), h x w, as an mv_image.
mv_image* grey_image(int64_t h, int64_t w, float v, bool ramp = false) {
  std::vector<float> px(static_cast<size_t>(h * w));
  for (size_t i = 0; i < px.size(); ++i) px[i] = ramp ? static_cast<float>(i % 251) : v;
  mv_image* img = mvtest::image_from_floats(h, w, px);
  REQUIRE(img != nullptr);
  return img;
}

// A 3-channel, 4-label package of `module` (no explain methods) run with inference.graph `graph`.
std::string package_with_graph(const fs::path& dir, torch::jit::Module& module, const char* graph) {
  auto j = mvtest::base_manifest(3, 4);
  j.erase("explain");
  j["inference"] = {{"graph", graph}};
  return mvtest::write_package(dir, module, j);
}

mv_status load_status(const std::string& path, std::string* message) {
  mv_model* m = nullptr;
  const mv_status s = mv_model_load(path.c_str(), nullptr, &m);
  *message = mv_last_error();
  if (m != nullptr) mv_model_free(m);
  return s;
}

}  // namespace

TEST_CASE("model: a package loads and classifies like the TorchScript module does", "[model]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(3, 4);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(3, 4));
  mv_model* model = load_ok(pkg);
  REQUIRE(std::string(mv_model_name(model)) == "tiny-linear");
  REQUIRE(std::string(mv_model_version(model)) == "0.0.1");
  REQUIRE(mv_model_label_count(model) == 4);
  REQUIRE(std::string(mv_model_label(model, 2)) == "L2");
  REQUIRE(mv_model_label(model, 4) == nullptr);
  REQUIRE(std::string(mv_model_device(model)) == "cpu");
  REQUIRE(mv_model_task(model) == MV_TASK_CLASSIFICATION);

  mv_image* img = grey_image(40, 30, 102.0f);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(model, img, &r) == MV_OK);

  // Reference: the same module in LibTorch on the input the manifest describes.
  torch::NoGradGuard ng;
  auto x = torch::full({1, 3, 16, 16}, 102.0f / 255.0f);
  auto logits = module.forward({x}).toTensor();
  auto probs = torch::softmax(logits, 1);
  REQUIRE(mv_result_label_count(r) == 4);
  for (size_t k = 0; k < 4; ++k) {
    CHECK(mv_result_logit(r, k) ==
          Approx(logits[0][static_cast<int64_t>(k)].item<float>()).margin(1e-5));
    CHECK(mv_result_probability(r, k) ==
          Approx(probs[0][static_cast<int64_t>(k)].item<float>()).margin(1e-6));
    CHECK(std::isnan(mv_result_calibrated(r, k)));
    CHECK(mv_result_decision(r, k) == -1);
    CHECK(mv_result_refer(r, k) == 0);
  }
  // Ranked most probable first.
  for (size_t rank = 1; rank < 4; ++rank) {
    CHECK(mv_result_probability(r, mv_result_ranked(r, rank - 1)) >=
          mv_result_probability(r, mv_result_ranked(r, rank)));
  }
  REQUIRE(mv_result_ranked(r, 4) == SIZE_MAX);
  REQUIRE(std::string(mv_result_model_name(r)) == "tiny-linear");
  REQUIRE(std::string(mv_result_notice(r)).find("Not for diagnostic use") != std::string::npos);
  const std::string json = mv_result_json(r);
  REQUIRE(json.find("\"tiny-linear\"") != std::string::npos);
  REQUIRE(json.find("\"probability\"") != std::string::npos);
  mv_result_free(r);
  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("model: every inference.graph choice classifies like the TorchScript module", "[model]") {
  // Convolution + bias + ReLU + pooling + linear: what optimize_for_inference rewrites (oneDNN
  // prepacked convolution, folded ReLU), unlike the linear fixture.
  torch::jit::Module module("ConvNet");
  torch::manual_seed(17);
  module.register_parameter("k", torch::randn({8, 3, 3, 3}) * 0.3, false);
  module.register_parameter("kb", torch::randn({8}) * 0.1, false);
  module.register_parameter("w", torch::randn({4, 8}), false);
  module.define(R"(
    def forward(self, x):
        f = torch.relu(torch.conv2d(x, self.k, self.kb, [1, 1], [1, 1]))
        return f.mean(dim=[2, 3]).matmul(self.w.t())
  )");
  TempDir tmp;
  mv_image* img = grey_image(40, 30, 0.0f, /*ramp=*/true);
  // Reference: the module as built, on what the package's preprocessing makes of the image.
  const std::string plain_pkg = mvtest::write_package(tmp.path() / "none", module, [] {
    auto j = mvtest::base_manifest(3, 4);
    j.erase("explain");  // no features/head methods
    j["inference"] = {{"graph", "none"}};
    return j;
  }());
  std::vector<float> reference;
  {
    mv_model* m = load_ok(plain_pkg);
    mv_result* r = nullptr;
    REQUIRE(mv_model_run(m, img, &r) == MV_OK);
    for (size_t k = 0; k < 4; ++k) reference.push_back(mv_result_logit(r, k));
    mv_result_free(r);
    mv_model_free(m);
  }
  for (const char* graph : {"", "optimize_for_inference", "freeze", "off"}) {
    INFO(graph);
    auto j = mvtest::base_manifest(3, 4);
    j.erase("explain");
    if (*graph != '\0' && std::string(graph) != "off") j["inference"] = {{"graph", graph}};
    const auto pkg = mvtest::write_package(tmp.path() / (std::string("g") + graph), module, j);
    mv_model_options o;
    REQUIRE(mv_model_options_default(&o) == MV_OK);
    o.optimize = std::string(graph) == "off" ? 0 : 1;  // the load option that turns it all off
    mv_model* m = nullptr;
    REQUIRE(mv_model_load(pkg.c_str(), &o, &m) == MV_OK);
    mv_result* r = nullptr;
    REQUIRE(mv_model_run(m, img, &r) == MV_OK);
    for (size_t k = 0; k < 4; ++k)
      CHECK(mv_result_logit(r, k) == Approx(reference[k]).margin(1e-5));
    mv_result_free(r);
    mv_model_free(m);
  }
  mv_image_free(img);
  // The reference itself against LibTorch directly: the same preprocessing on a constant image.
  mv_image* flat = grey_image(16, 16, 51.0f);
  mv_model* m = load_ok(plain_pkg);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(m, flat, &r) == MV_OK);
  torch::NoGradGuard ng;
  auto logits = module.forward({torch::full({1, 3, 16, 16}, 51.0f / 255.0f)}).toTensor();
  for (size_t k = 0; k < 4; ++k) {
    CHECK(mv_result_logit(r, k) ==
          Approx(logits[0][static_cast<int64_t>(k)].item<float>()).margin(1e-5));
  }
  mv_result_free(r);
  mv_model_free(m);
  mv_image_free(flat);
}

TEST_CASE("model: the fused InstanceNorm + LeakyReLU of 3D blocks gives LibTorch's results",
          "[model]") {
  // Two U-Net-style 3D blocks (convolution, InstanceNorm, LeakyReLU): the optimised graph runs
  // both normalisations through medvision's fused operator (src/infer/onednn_ops.cpp), the first
  // in place on oneDNN's blocked layout (it feeds a convolution), the second into a dense tensor
  // (it feeds a mean). 12 channels leave padded lanes in the 8- and 16-channel blocks; the second
  // norm has no affine weights. Reference: the same module as loaded (graph "none"), i.e.
  // LibTorch's own instance_norm and leaky_relu; and 4 threads sharing the optimised model.
  torch::jit::Module module("UNetBlocks3d");
  torch::manual_seed(23);
  module.register_parameter("depth", torch::linspace(0.5, 2.0, 6).reshape({1, 1, 6, 1, 1}), false);
  module.register_parameter("k1", torch::randn({12, 3, 3, 3, 3}) * 0.3, false);
  module.register_parameter("g1", torch::rand({12}) + 0.5, false);
  module.register_parameter("b1", torch::randn({12}) * 0.2, false);
  module.register_parameter("k2", torch::randn({16, 12, 3, 3, 3}) * 0.2, false);
  module.register_parameter("w", torch::randn({4, 16}), false);
  module.define(R"(
    def forward(self, x):
        v = x.unsqueeze(2).repeat([1, 1, 6, 1, 1]) * self.depth
        a = torch.conv3d(v, self.k1, None, [1, 1, 1], [1, 1, 1])
        a = torch.leaky_relu(torch.instance_norm(a, self.g1, self.b1, None, None, True, 0.1,
                                                 1e-5, False), 0.01)
        b = torch.conv3d(a, self.k2, None, [1, 1, 1], [1, 1, 1])
        b = torch.leaky_relu(torch.instance_norm(b, None, None, None, None, True, 0.1, 1e-5,
                                                 False), 0.2)
        return b.mean(dim=[2, 3, 4]).matmul(self.w.t())
  )");
  TempDir tmp;
  const std::string plain = package_with_graph(tmp.path() / "none", module, "none");
  const std::string fused =
      package_with_graph(tmp.path() / "fused", module, "optimize_for_inference");
  mv_model* reference = load_ok(plain);
  mv_model* model = load_ok(fused);
  std::vector<mv_image*> images;
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < 3; ++i) {
    images.push_back(grey_image(40 + 7 * i, 30, 0.0f, /*ramp=*/true));
    mv_result* r = nullptr;
    REQUIRE(mv_model_run(reference, images.back(), &r) == MV_OK);
    expected.emplace_back();
    for (size_t k = 0; k < 4; ++k) expected.back().push_back(mv_result_logit(r, k));
    mv_result_free(r);
  }
  auto run_all = [&](std::vector<std::vector<float>>* out) {
    for (mv_image* img : images) {
      mv_result* r = nullptr;
      if (mv_model_run(model, img, &r) != MV_OK) return false;
      out->emplace_back();
      for (size_t k = 0; k < 4; ++k) out->back().push_back(mv_result_logit(r, k));
      mv_result_free(r);
    }
    return true;
  };
  std::vector<std::vector<float>> serial;
  REQUIRE(run_all(&serial));
  for (size_t i = 0; i < images.size(); ++i) {
    for (size_t k = 0; k < 4; ++k) {
      INFO("image " << i << " logit " << k);
      CHECK(serial[i][k] == Approx(expected[i][k]).margin(1e-4));
    }
  }
  // The operator is registered with LibTorch only when the pass runs: it ran.
  CHECK(c10::Dispatcher::singleton()
            .findSchema({"medvision::instance_norm_leaky_relu_mkldnn", ""})
            .has_value());
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) {
        std::vector<std::vector<float>> got;
        if (!run_all(&got) || got != serial) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) CHECK(m == 0);
  for (mv_image* img : images) mv_image_free(img);
  mv_model_free(model);
  mv_model_free(reference);
}

TEST_CASE("model: a batch gives the same results as one image at a time", "[model]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 1);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(1, 1, 8));
  mv_model* model = load_ok(pkg);
  std::vector<mv_image*> images;
  for (int i = 0; i < 5; ++i)
    images.push_back(grey_image(20 + i, 17, 40.0f * static_cast<float>(i), i % 2 == 1));
  std::vector<mv_result*> batch(images.size(), nullptr);
  REQUIRE(mv_model_run_batch(model, images.data(), images.size(), batch.data()) == MV_OK);
  for (size_t i = 0; i < images.size(); ++i) {
    mv_result* single = nullptr;
    REQUIRE(mv_model_run(model, images[i], &single) == MV_OK);
    CHECK(mv_result_probability(batch[i], 0) ==
          Approx(mv_result_probability(single, 0)).margin(1e-6));
    mv_result_free(single);
    mv_result_free(batch[i]);
  }
  // A NULL image in the batch: an error, and the output array untouched.
  images.push_back(nullptr);
  std::vector<mv_result*> out(images.size(), nullptr);
  REQUIRE(mv_model_run_batch(model, images.data(), images.size(), out.data()) ==
          MV_ERR_INVALID_ARGUMENT);
  for (auto* p : out) REQUIRE(p == nullptr);
  images.pop_back();
  for (auto* im : images) mv_image_free(im);
  mv_model_free(model);
}

TEST_CASE("model: 8 threads sharing one model get the serial results", "[model][threads]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(3, 2);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(3, 2));
  mv_model* model = load_ok(pkg);
  constexpr int kImages = 16;
  std::vector<mv_image*> images;
  std::vector<float> serial;
  for (int i = 0; i < kImages; ++i) {
    images.push_back(grey_image(32 + i, 24, 10.0f * static_cast<float>(i), i % 3 == 0));
    mv_result* r = nullptr;
    REQUIRE(mv_model_run(model, images.back(), &r) == MV_OK);
    serial.push_back(mv_result_probability(r, 1));
    mv_result_free(r);
  }
  std::vector<int> mismatches(8, 0), failures(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        for (int i = 0; i < kImages; ++i) {
          mv_result* r = nullptr;
          if (mv_model_run(model, images[static_cast<size_t>(i)], &r) != MV_OK) {
            ++failures[static_cast<size_t>(t)];
            continue;
          }
          if (mv_result_probability(r, 1) != serial[static_cast<size_t>(i)]) {
            ++mismatches[static_cast<size_t>(t)];
          }
          mv_result_free(r);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) {
    CHECK(failures[static_cast<size_t>(t)] == 0);
    CHECK(mismatches[static_cast<size_t>(t)] == 0);
  }
  for (auto* im : images) mv_image_free(im);
  mv_model_free(model);
}

TEST_CASE("model: loading errors name the file and the problem", "[model][errors]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(3, 2);
  std::string msg;

  SECTION("missing package") {
    REQUIRE(load_status((tmp.path() / "nope").string(), &msg) == MV_ERR_IO);
    REQUIRE(msg.find("nope") != std::string::npos);
  }
  SECTION("unknown name on the search path") {
    REQUIRE(load_status("no-such-model-anywhere", &msg) == MV_ERR_IO);
    REQUIRE(msg.find("no-such-model-anywhere") != std::string::npos);
  }
  SECTION("checksum mismatch") {
    auto j = mvtest::base_manifest(3, 2);
    j["sha256"] = std::string(64, 'a');
    const auto pkg = mvtest::write_package(tmp.path() / "p", module, j);
    REQUIRE(load_status(pkg, &msg) == MV_ERR_MODEL);
    REQUIRE(msg.find("checksum mismatch") != std::string::npos);
  }
  SECTION("model.pt missing") {
    const auto pkg = mvtest::write_package(tmp.path() / "p", module, mvtest::base_manifest(3, 2));
    std::filesystem::remove(tmp.path() / "p" / "model.pt");
    REQUIRE(load_status(pkg, &msg) == MV_ERR_IO);
    REQUIRE(msg.find("model.pt") != std::string::npos);
  }
  SECTION("corrupt and truncated model.pt (checksum updated to match)") {
    for (int variant = 0; variant < 2; ++variant) {
      const auto dir = tmp.path() / ("p" + std::to_string(variant));
      mvtest::write_package(dir, module, mvtest::base_manifest(3, 2));
      const auto pt = dir / "model.pt";
      if (variant == 0) {
        std::ofstream(pt, std::ios::binary) << "this is not a TorchScript archive";
      } else {
        std::filesystem::resize_file(pt, std::filesystem::file_size(pt) / 2);
      }
      auto j = mvtest::base_manifest(3, 2);
      j["sha256"] = medvision::sha256_file(pt.string());
      std::ofstream(dir / "manifest.json") << j.dump();
      REQUIRE(load_status(dir.string(), &msg) == MV_ERR_MODEL);
      REQUIRE(msg.find("model.pt") != std::string::npos);
    }
  }
  SECTION("manifest is not JSON") {
    const auto pkg = mvtest::write_package(tmp.path() / "p", module, mvtest::base_manifest(3, 2));
    std::ofstream(tmp.path() / "p" / "manifest.json") << "{ not json";
    REQUIRE(load_status(pkg, &msg) == MV_ERR_MODEL);
    REQUIRE(msg.find("manifest.json") != std::string::npos);
  }
  SECTION("manifest errors are precise") {
    struct Case {
      const char* what;
      std::function<void(nlohmann::json&)> edit;
      const char* expect;
    };
    const std::vector<Case> cases = {
        {"unknown step",
         [](auto& j) {
           j["preprocess"].push_back({{"op", "sharpen"}});
         },
         "sharpen"},
        {"bad value",
         [](auto& j) {
           j["preprocess"][1]["size"] = {0, 16};
         },
         "size"},
        {"unknown key", [](auto& j) { j["lables"] = {"x"}; }, "lables"},
        {"missing name", [](auto& j) { j.erase("name"); }, "name"},
        {"bad task", [](auto& j) { j["task"] = "detection"; }, "task"},
        {"bad activation", [](auto& j) { j["output"]["activation"] = "relu"; }, "activation"},
        {"duplicate label",
         [](auto& j) {
           j["labels"] = {"A", "A"};
         },
         "duplicate"},
        {"bad input size", [](auto& j) { j["input"]["size"] = {16}; }, "input.size"},
        {"future format", [](auto& j) { j["format_version"] = 2; }, "format_version"},
        {"unknown graph pass",
         [](auto& j) {
           j["inference"] = {{"graph", "fast"}};
         },
         "inference.graph"},
    };
    for (const auto& c : cases) {
      INFO(c.what);
      auto j = mvtest::base_manifest(3, 2);
      c.edit(j);
      const auto dir = tmp.path() / "m";
      std::filesystem::remove_all(dir);
      const auto pkg = mvtest::write_package(dir, module, j);
      REQUIRE(load_status(pkg, &msg) == MV_ERR_MODEL);
      INFO(msg);
      REQUIRE(msg.find(c.expect) != std::string::npos);
      REQUIRE(msg.find("manifest.json") != std::string::npos);
    }
  }
  SECTION("model output does not match the labels") {
    auto j = mvtest::base_manifest(3, 2);
    j["labels"] = {"A", "B", "C"};
    const auto pkg = mvtest::write_package(tmp.path() / "p", module, j);
    REQUIRE(load_status(pkg, &msg) == MV_ERR_MODEL);
    REQUIRE(msg.find("3 labels") != std::string::npos);
  }
  SECTION("wrong input channels") {
    auto j = mvtest::base_manifest(3, 2);
    j["preprocess"].erase(2);  // no channels step: a grey image stays 1 channel
    const auto pkg = mvtest::write_package(tmp.path() / "p", module, j);
    mv_model* m = nullptr;
    if (mv_model_load(pkg.c_str(), nullptr, &m) == MV_OK) {
      mv_image* img = grey_image(16, 16, 1.0f);
      mv_result* r = nullptr;
      REQUIRE(mv_model_run(m, img, &r) == MV_ERR_SHAPE_MISMATCH);
      REQUIRE(r == nullptr);
      mv_image_free(img);
      mv_model_free(m);
    } else {
      // Refusing the package at load is just as good.
      REQUIRE(std::string(mv_last_error()).find("channel") != std::string::npos);
    }
  }
  SECTION("CUDA requested where there is none") {
    if (!torch::cuda::is_available()) {
      const auto pkg = mvtest::write_package(tmp.path() / "p", module, mvtest::base_manifest(3, 2));
      mv_model_options o;
      REQUIRE(mv_model_options_default(&o) == MV_OK);
      o.device = "cuda:0";
      mv_model* m = nullptr;
      REQUIRE(mv_model_load(pkg.c_str(), &o, &m) == MV_ERR_DEVICE);
      REQUIRE(m == nullptr);
      o.device = "tpu";
      REQUIRE(mv_model_load(pkg.c_str(), &o, &m) == MV_ERR_INVALID_ARGUMENT);
    }
  }
  SECTION("options struct too small") {
    mv_model_options o;
    REQUIRE(mv_model_options_default(&o) == MV_OK);
    o.struct_size = 8;
    mv_model* m = nullptr;
    REQUIRE(mv_model_load("x", &o, &m) == MV_ERR_ABI_MISMATCH);
  }
}

TEST_CASE("model: a model that returns NaN is an error, not a result", "[model][errors]") {
  TempDir tmp;
  torch::jit::Module m("NaN");
  m.define(R"(
    def forward(self, x):
        return x.mean(dim=[2, 3]) * float('nan')
  )");
  auto j = mvtest::base_manifest(1, 1, 8);
  j.erase("explain");
  const auto pkg = mvtest::write_package(tmp.path() / "p", m, j);
  mv_model* model = load_ok(pkg);
  mv_image* img = grey_image(8, 8, 3.0f);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(model, img, &r) == MV_ERR_MODEL);
  REQUIRE(r == nullptr);
  REQUIRE(std::string(mv_last_error()).find("non-finite") != std::string::npos);
  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("model: calibrate writes a new package whose results are calibrated; drift check",
          "[model][calibrate]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 1);
  auto j = mvtest::base_manifest(1, 1, 8);
  const auto pkg = mvtest::write_package(tmp.path() / "p", module, j);
  mv_model* model = load_ok(pkg);

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
  mv_calibrate_options o;
  REQUIRE(mv_calibrate_options_default(&o) == MV_OK);
  o.version = "0.0.2";
  o.conformal = 1;
  CHECK(o.refer_mode == MV_REFER_PREDICTIVE_VALUE);
  CHECK(o.refer_logit_half_width == 0.4);
  o.refer_mode = MV_REFER_LOGIT;
  const std::string out = (tmp.path() / "calibrated").string();
  const mv_status s = mv_model_calibrate(model, z.data(), y.data(), n, &o, out.c_str());
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  // Refuses to overwrite a package.
  REQUIRE(mv_model_calibrate(model, z.data(), y.data(), n, &o, out.c_str()) ==
          MV_ERR_INVALID_ARGUMENT);
  // Wrong label values are refused.
  std::vector<int32_t> bad(n, 2);
  REQUIRE(mv_model_calibrate(model, z.data(), bad.data(), n, &o,
                             (tmp.path() / "bad").string().c_str()) == MV_ERR_INVALID_ARGUMENT);

  CHECK(mv_model_activation(model) == MV_ACTIVATION_SIGMOID);
  {
    // mv_model_calibrate_report: the same package, and the report the caller would otherwise
    // read back from disk.
    const std::string out2 = (tmp.path() / "reported").string();
    mv_calibration_report* rep = nullptr;
    REQUIRE(mv_model_calibrate_report(model, z.data(), y.data(), n, &o, out2.c_str(), &rep) ==
            MV_OK);
    REQUIRE(rep != nullptr);
    const auto rj = nlohmann::json::parse(mv_calibration_report_json(rep));
    const auto on_disk = nlohmann::json::parse(std::ifstream(out2 + "/manifest.json"));
    const auto report = nlohmann::json::parse(std::ifstream(out2 + "/calibration-report.json"));
    CHECK(rj["dir"] == out2);
    CHECK(rj["name"] == on_disk["name"]);
    CHECK(rj["version"] == "0.0.2");
    CHECK(rj["calibration"] == on_disk["calibration"]);
    CHECK(rj["thresholds"] == on_disk["thresholds"]);
    CHECK(rj["report"] == report);
    CHECK(rj["report"]["after"].is_object());
    mv_calibration_report_free(rep);
    // The same checks as mv_model_calibrate, and *out untouched on failure.
    mv_calibration_report* none = nullptr;
    CHECK(mv_model_calibrate_report(model, z.data(), y.data(), n, &o, out2.c_str(), &none) ==
          MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(mv_last_error()).find("already holds a manifest.json") != std::string::npos);
    CHECK(none == nullptr);
    CHECK(mv_model_calibrate_report(model, z.data(), y.data(), n, &o,
                                    (tmp.path() / "r2").string().c_str(),
                                    nullptr) == MV_ERR_INVALID_ARGUMENT);
    CHECK_FALSE(std::filesystem::exists(tmp.path() / "r2"));
  }

  {
    // The C++ wrapper: calibrate() returns the report; the refer-band rule chosen by a setter.
    const medvision::Model wm(load_ok(pkg));
    CHECK(wm.activation() == MV_ACTIVATION_SIGMOID);
    const std::string text = medvision::calibrate(
        wm, z.data(), y.data(), n, (tmp.path() / "wrapped").string(),
        medvision::CalibrateOptions().set_refer_mode(MV_REFER_FIXED).set_refer_half_width(0.05));
    const auto wj = nlohmann::json::parse(text);
    const auto& op = wj["thresholds"].begin().value();
    const double t = op["threshold"].get<double>();
    CHECK(op["refer_band"][0].get<double>() == Approx(std::max(0.0, t - 0.05)));
    CHECK(op["refer_band"][1].get<double>() == Approx(std::min(1.0, t + 0.05)));
    CHECK(wj["version"] == "0.0.1+cal");
  }

  mv_model* cal = load_ok(out);
  REQUIRE(std::string(mv_model_version(cal)) == "0.0.2");
  const std::string manifest = mv_model_manifest_json(cal);
  REQUIRE(manifest.find("\"temperature\"") != std::string::npos);
  mv_image* img = grey_image(8, 8, 200.0f);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(cal, img, &r) == MV_OK);
  const float p = mv_result_probability(r, 0), pc = mv_result_calibrated(r, 0);
  REQUIRE_FALSE(std::isnan(pc));
  // The fitted temperature is about 3: calibrated probabilities move towards 0.5.
  CHECK(std::fabs(pc - 0.5f) <= std::fabs(p - 0.5f));
  CHECK((mv_result_decision(r, 0) == 0 || mv_result_decision(r, 0) == 1));
  // Conformal sets: a subset of {negative, positive}, at the alpha it was fitted with.
  CHECK(mv_result_conformal_alpha(r) == 0.1);
  const int32_t set = mv_result_conformal(r, 0);
  CHECK((set >= MV_CONFORMAL_EMPTY && set <= MV_CONFORMAL_BOTH));
  CHECK(mv_result_conformal(r, 1) == -1);  // out of range
  CHECK(std::string(mv_result_json(r)).find("\"conformal\":{\"alpha\":0.1,\"labels\"") !=
        std::string::npos);
  {
    // The logit refer band around the threshold.
    const auto m = nlohmann::json::parse(manifest);
    const auto& op = m["thresholds"].begin().value();
    const double t = op["threshold"].get<double>();
    const double lo = op["refer_band"][0].get<double>(), hi = op["refer_band"][1].get<double>();
    CHECK(std::log(lo / (1 - lo)) == Approx(std::log(t / (1 - t)) - 0.4).margin(1e-9));
    CHECK(std::log(hi / (1 - hi)) == Approx(std::log(t / (1 - t)) + 0.4).margin(1e-9));
    CHECK(m["calibration"]["conformal"]["alpha"] == 0.1);
  }
  mv_result_free(r);
  // The uncalibrated package has no conformal sets.
  REQUIRE(mv_model_run(model, img, &r) == MV_OK);
  CHECK(mv_result_conformal(r, 0) == -1);
  CHECK(std::isnan(mv_result_conformal_alpha(r)));
  CHECK(std::string(mv_result_json(r)).find("\"conformal\":null") != std::string::npos);
  mv_result_free(r);
  CHECK(mv_result_conformal(nullptr, 0) == -1);
  CHECK(std::isnan(mv_result_conformal_alpha(nullptr)));
  // Bad refer options are refused.
  mv_calibrate_options bad_o = o;
  bad_o.refer_mode = 42;
  CHECK(mv_model_calibrate(model, z.data(), y.data(), n, &bad_o,
                           (tmp.path() / "bad2").string().c_str()) == MV_ERR_INVALID_ARGUMENT);
  // A caller built before refer_mode existed (struct ends after `version`) gets the defaults.
  mv_calibrate_options v1 = o;
  v1.struct_size = static_cast<uint32_t>(offsetof(mv_calibrate_options, refer_mode));
  v1.refer_mode = 42;  // beyond its struct_size: never read
  CHECK(mv_model_calibrate(model, z.data(), y.data(), n, &v1,
                           (tmp.path() / "v1").string().c_str()) == MV_OK);
  bad_o.refer_mode = MV_REFER_LOGIT;
  bad_o.refer_logit_half_width = -1;
  CHECK(mv_model_calibrate(model, z.data(), y.data(), n, &bad_o,
                           (tmp.path() / "bad3").string().c_str()) == MV_ERR_INVALID_ARGUMENT);
  mv_image_free(img);

  // Drift: the same distribution is not a shift; the same shifted by +6 is.
  size_t needed = 0;
  std::vector<float> same(z.begin(), z.begin() + 200);
  REQUIRE(mv_model_drift_check(cal, same.data(), same.size(), nullptr, 0, &needed) == MV_OK);
  std::string buf(needed, '\0');
  REQUIRE(mv_model_drift_check(cal, same.data(), same.size(), buf.data(), buf.size(), &needed) ==
          MV_OK);
  CHECK(buf.find("\"shifted\":false") != std::string::npos);
  std::vector<float> moved(same);
  for (float& v : moved) v += 6.0f;
  REQUIRE(mv_model_drift_check(cal, moved.data(), moved.size(), nullptr, 0, &needed) == MV_OK);
  buf.assign(needed, '\0');
  REQUIRE(mv_model_drift_check(cal, moved.data(), moved.size(), buf.data(), buf.size(), &needed) ==
          MV_OK);
  CHECK(buf.find("\"shifted\":true") != std::string::npos);
  // An uncalibrated package has no reference.
  REQUIRE(mv_model_drift_check(model, same.data(), same.size(), nullptr, 0, &needed) ==
          MV_ERR_INVALID_ARGUMENT);
  mv_model_free(cal);
  mv_model_free(model);
}

TEST_CASE("model: calibrate fits APS conformal sets on a softmax model; sigmoid models refuse APS",
          "[model][calibrate][conformal]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 3);
  const auto pkg = mvtest::write_package(tmp.path() / "p", module, mvtest::base_manifest(1, 3, 8));
  mv_model* model = load_ok(pkg);

  // Overconfident synthetic outputs: the class drawn from softmax(z / 2), logits z.
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const size_t n = 600;
  std::vector<float> z(n * 3);
  std::vector<int32_t> y(n);
  for (size_t i = 0; i < n; ++i) {
    double w[3], sum = 0;
    for (size_t k = 0; k < 3; ++k) {
      z[i * 3 + k] = nd(rng);
      w[k] = std::exp(z[i * 3 + k] / 2.0);
      sum += w[k];
    }
    const double r = u(rng) * sum;
    y[i] = r < w[0] ? 0 : (r < w[0] + w[1] ? 1 : 2);
  }
  // base_manifest(1, 3, ...) is a softmax model: one class index per image.
  CHECK(mv_model_activation(model) == MV_ACTIVATION_SOFTMAX);
  mv_calibrate_options o;
  REQUIRE(mv_calibrate_options_default(&o) == MV_OK);
  CHECK(o.conformal_score == MV_CONFORMAL_SCORE_LAC);
  o.conformal = 1;
  o.alpha = 0.2;
  o.conformal_score = MV_CONFORMAL_SCORE_APS;
  const std::string out = (tmp.path() / "aps").string();
  const mv_status s = mv_model_calibrate(model, z.data(), y.data(), n, &o, out.c_str());
  INFO(mv_last_error());
  REQUIRE(s == MV_OK);
  mv_model* cal = load_ok(out);
  const auto m = nlohmann::json::parse(mv_model_manifest_json(cal));
  CHECK(m["calibration"]["conformal"]["score"] == "aps");
  CHECK(m["calibration"]["conformal"]["alpha"] == 0.2);
  mv_image* img = grey_image(8, 8, 120.0f, true);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(cal, img, &r) == MV_OK);
  CHECK(mv_result_conformal_alpha(r) == 0.2);
  for (size_t k = 0; k < 3; ++k) {
    const int32_t bit = mv_result_conformal(r, k);
    CHECK((bit == 0 || bit == MV_CONFORMAL_IN_SET));
  }
  CHECK(std::string(mv_result_json(r)).find("\"conformal\":{\"alpha\":0.2,\"set\"") !=
        std::string::npos);
  mv_result_free(r);
  mv_image_free(img);
  mv_model_free(cal);

  // A caller built before conformal_score existed (struct ends after refer_ppv) gets LAC.
  mv_calibrate_options old = o;
  old.struct_size = static_cast<uint32_t>(offsetof(mv_calibrate_options, conformal_score));
  REQUIRE(mv_model_calibrate(model, z.data(), y.data(), n, &old,
                             (tmp.path() / "old").string().c_str()) == MV_OK);
  mv_model* lac = load_ok((tmp.path() / "old").string());
  CHECK(nlohmann::json::parse(mv_model_manifest_json(lac))["calibration"]["conformal"]["score"] ==
        "lac");
  mv_model_free(lac);
  // An unknown score is refused, and nothing is written.
  mv_calibrate_options bad = o;
  bad.conformal_score = 7;
  CHECK(mv_model_calibrate(model, z.data(), y.data(), n, &bad,
                           (tmp.path() / "bad").string().c_str()) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("conformal_score") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path() / "bad"));
  mv_model_free(model);

  // APS ranks exclusive classes: a sigmoid model is refused with a message that says so.
  auto sig_module = mvtest::make_linear_module(1, 2);
  auto sig_manifest = mvtest::base_manifest(1, 2, 8);
  sig_manifest["output"]["activation"] = "sigmoid";
  mv_model* sig =
      load_ok(mvtest::write_package(tmp.path() / "sig", sig_module, std::move(sig_manifest)));
  std::vector<int32_t> y2(n * 2);
  for (size_t i = 0; i < n; ++i) {
    y2[i * 2] = y[i] == 0;
    y2[i * 2 + 1] = y[i] == 1;
  }
  std::vector<float> z2(n * 2);
  for (size_t i = 0; i < n; ++i) {
    z2[i * 2] = z[i * 3];
    z2[i * 2 + 1] = z[i * 3 + 1];
  }
  CHECK(mv_model_calibrate(sig, z2.data(), y2.data(), n, &o,
                           (tmp.path() / "sig-aps").string().c_str()) == MV_ERR_INVALID_ARGUMENT);
  const std::string msg = mv_last_error();
  CHECK(msg.find("softmax") != std::string::npos);
  CHECK(msg.find("sigmoid") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path() / "sig-aps"));
  // Without conformal sets the score is not used.
  o.conformal = 0;
  CHECK(mv_model_calibrate(sig, z2.data(), y2.data(), n, &o,
                           (tmp.path() / "sig-none").string().c_str()) == MV_OK);
  mv_model_free(sig);
}

namespace {
struct Captured {
  std::vector<std::string> messages;
};
void capture(mv_log_level level, const char* message, void* user) {
  if (level >= MV_LOG_WARN) static_cast<Captured*>(user)->messages.emplace_back(message);
}
}  // namespace

TEST_CASE("model: warnings reach the log callback, and only while it is installed",
          "[model][log]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 1);
  const auto pkg = mvtest::write_package(tmp.path() / "p", module, mvtest::base_manifest(1, 1, 8));
  mv_model* model = load_ok(pkg);
  // A colour image given to a single-channel model: preprocessing records a warning.
  std::vector<float> rgb(static_cast<size_t>(8 * 8 * 3));
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<float>(i % 3) * 40.0f;
  mv_image* img = mvtest::image_from_floats(8, 8, rgb);
  REQUIRE(img != nullptr);

  Captured seen;
  mv_set_log_callback(&capture, &seen, MV_LOG_WARN);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(model, img, &r) == MV_OK);
  REQUIRE(mv_result_warning_count(r) >= 1);
  REQUIRE(seen.messages.size() == mv_result_warning_count(r));
  CHECK(seen.messages[0].find("tiny-linear") != std::string::npos);
  CHECK(seen.messages[0].find("colour") != std::string::npos);
  mv_result_free(r);

  mv_set_log_callback(nullptr, nullptr, MV_LOG_OFF);
  REQUIRE(mv_model_run(model, img, &r) == MV_OK);
  CHECK(seen.messages.size() == 1);  // nothing delivered after removal
  mv_result_free(r);
  mv_image_free(img);
  mv_model_free(model);
}

namespace {

// A one-entry ustar archive written by hand (for names that `tar` refuses to write).
void write_tar_entry(const std::string& path, const std::string& name, const std::string& body,
                     char type = '0') {
  char h[512] = {};
  std::snprintf(h, 100, "%s", name.c_str());
  std::snprintf(h + 100, 8, "%07o", 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011o", static_cast<unsigned>(body.size()));
  std::snprintf(h + 136, 12, "%011o", 0);
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  std::ofstream f(path, std::ios::binary);
  f.write(h, 512);
  std::string padded = body;
  padded.resize((body.size() + 511) / 512 * 512, '\0');
  f << padded << std::string(1024, '\0');
}

}  // namespace

TEST_CASE("model: a package archive (.tar.gz, .mvpkg) loads like its folder", "[model][archive]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 2);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "tiny", module, mvtest::base_manifest(1, 2));
  const std::string flat = (tmp.path() / "tiny.tar.gz").string();
  const std::string nested = (tmp.path() / "tiny.mvpkg").string();
  REQUIRE(std::system(("tar -C '" + pkg + "' -czf '" + flat + "' .").c_str()) == 0);
  REQUIRE(std::system(
              ("tar -C '" + tmp.path().string() + "' -czf '" + nested + "' tiny").c_str()) == 0);
  mv_image* img = grey_image(20, 20, 0.0f, true);
  mv_model* folder = load_ok(pkg);
  mv_result* want = nullptr;
  REQUIRE(mv_model_run(folder, img, &want) == MV_OK);
  for (const std::string& archive : {flat, nested}) {
    INFO(archive);
    mv_model* m = load_ok(archive);
    CHECK(std::string(mv_model_name(m)) == "tiny-linear");
    mv_result* got = nullptr;
    REQUIRE(mv_model_run(m, img, &got) == MV_OK);
    CHECK(mv_result_probability(got, 1) == mv_result_probability(want, 1));
    mv_result_free(got);
    mv_model_free(m);
  }
  // By name on the search path: <dir>/<name>.mvpkg.
  fs::create_directories(tmp.path() / "path");
  fs::copy_file(nested, tmp.path() / "path" / "boxed.mvpkg");
  setenv("MEDVISION_MODEL_PATH", (tmp.path() / "path").c_str(), 1);
  mv_model* by_name = load_ok("boxed");
  unsetenv("MEDVISION_MODEL_PATH");
  mv_model_free(by_name);
  mv_result_free(want);
  mv_model_free(folder);
  mv_image_free(img);

  std::string msg;
  SECTION("truncated") {
    const std::string cut = (tmp.path() / "cut.tar").string();
    REQUIRE(std::system(("tar -C '" + pkg + "' -cf '" + cut + "' .").c_str()) == 0);
    // Cut into the last entry's data (GNU tar pads the file with zero blocks).
    std::ifstream in(cut, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t end = bytes.find_last_not_of('\0');
    REQUIRE(end != std::string::npos);
    fs::resize_file(cut, end > 100 ? end - 100 : end / 2);
    CHECK(load_status(cut, &msg) == MV_ERR_CORRUPT_DATA);
    CHECK(msg.find("cut.tar") != std::string::npos);
  }
  SECTION("not a tar file") {
    const std::string junk = (tmp.path() / "junk.tar").string();
    std::ofstream(junk) << std::string(2000, 'x');
    CHECK(load_status(junk, &msg) == MV_ERR_CORRUPT_DATA);
    CHECK(msg.find("checksum") != std::string::npos);
  }
  SECTION("an entry leaving the package folder") {
    const std::string evil = (tmp.path() / "evil.tar").string();
    write_tar_entry(evil, "../escaped.txt", "x");
    CHECK(load_status(evil, &msg) == MV_ERR_UNSUPPORTED_FORMAT);
    CHECK(msg.find("leave the package") != std::string::npos);
    CHECK_FALSE(fs::exists(fs::temp_directory_path() / "escaped.txt"));
  }
  SECTION("a symbolic link") {
    const std::string link = (tmp.path() / "link.tar").string();
    write_tar_entry(link, "model.pt", "", '2');
    CHECK(load_status(link, &msg) == MV_ERR_UNSUPPORTED_FORMAT);
  }
  SECTION("no manifest inside") {
    const std::string empty = (tmp.path() / "empty.tar").string();
    write_tar_entry(empty, "README.md", "hello");
    CHECK(load_status(empty, &msg) == MV_ERR_MODEL);
    CHECK(msg.find("manifest.json") != std::string::npos);
  }
  SECTION("a checksum mismatch names the archive, not the temporary folder") {
    std::ofstream(fs::path(pkg) / "model.pt", std::ios::app) << "tampered";
    const std::string bad = (tmp.path() / "bad.tar.gz").string();
    REQUIRE(std::system(("tar -C '" + pkg + "' -czf '" + bad + "' .").c_str()) == 0);
    CHECK(load_status(bad, &msg) == MV_ERR_MODEL);
    CHECK(msg.find("bad.tar.gz!model.pt") != std::string::npos);
    CHECK(msg.find("medvision-package-") == std::string::npos);
  }
}

TEST_CASE("model: the optimised graph's activations are applied when channels pad the last block",
          "[model]") {
  // LibTorch 1.13's optimize_for_inference runs ReLU6/hardtanh, clamp, hardswish and hardsigmoid
  // after a convolution in place on the oneDNN tensor, and skips them when the channels do not
  // fill oneDNN's last channel block (24 in blocks of 16, AVX-512): a silent wrong answer that
  // medvision repairs (src/infer/onednn_ops.cpp). 24 and 40 channels pad 16-blocks; with 8-blocks
  // (AVX2) nothing is padded and the test checks the replacement operator. Reference: the module
  // as loaded (graph "none").
  torch::jit::Module module("Activations");
  torch::manual_seed(29);
  module.register_parameter("k1", torch::randn({24, 3, 3, 3}) * 0.5, false);
  module.register_parameter("c1", torch::randn({24}) * 0.5, false);
  module.register_parameter("k2", torch::randn({40, 24, 3, 3}) * 0.3, false);
  module.register_parameter("k3", torch::randn({24, 40, 3, 3}) * 0.3, false);
  module.register_parameter("k4", torch::randn({24, 24, 3, 3}) * 2.0, false);
  module.register_parameter("k5", torch::randn({40, 24, 1, 1}) * 0.5, false);
  module.register_parameter("w", torch::randn({4, 152}), false);
  module.define(R"(
    def forward(self, x):
        a = torch.hardswish(torch.conv2d(x, self.k1, self.c1, [1, 1], [1, 1]))
        b = torch.hardsigmoid(torch.conv2d(a, self.k2, None, [1, 1], [1, 1]))
        c = torch.clamp(torch.conv2d(b, self.k3, None, [1, 1], [1, 1]), -0.3, 0.4)
        d = torch.hardtanh(torch.conv2d(c, self.k4, None, [1, 1], [1, 1]), 0.0, 6.0)
        e = torch.hardtanh(torch.conv2d(d, self.k5, None, [1, 1], [0, 0]), 0.25, 0.75)
        f = torch.cat([a.mean(dim=[2, 3]), b.mean(dim=[2, 3]), c.mean(dim=[2, 3]),
                       d.mean(dim=[2, 3]), e.mean(dim=[2, 3])], 1)
        return f.matmul(self.w.t())
  )");
  TempDir tmp;
  const std::string plain = package_with_graph(tmp.path() / "none", module, "none");
  const std::string optimised =
      package_with_graph(tmp.path() / "opt", module, "optimize_for_inference");
  mv_model* reference = load_ok(plain);
  Captured seen;
  mv_set_log_callback(&capture, &seen, MV_LOG_WARN);
  mv_model* model = load_ok(optimised);
  mv_set_log_callback(nullptr, nullptr, MV_LOG_OFF);
  for (const auto& m : seen.messages) INFO(m);
  CHECK(seen.messages.empty());  // no fall-back to the frozen module: the optimised graph ran
  for (int i = 0; i < 3; ++i) {
    mv_image* img = grey_image(40 + 9 * i, 30, 0.0f, /*ramp=*/true);
    mv_result* want = nullptr;
    mv_result* got = nullptr;
    REQUIRE(mv_model_run(reference, img, &want) == MV_OK);
    REQUIRE(mv_model_run(model, img, &got) == MV_OK);
    for (size_t k = 0; k < 4; ++k) {
      INFO("image " << i << " logit " << k);
      CHECK(mv_result_logit(got, k) == Approx(mv_result_logit(want, k)).margin(1e-4));
    }
    mv_result_free(want);
    mv_result_free(got);
    mv_image_free(img);
  }
  CHECK(
      c10::Dispatcher::singleton().findSchema({"medvision::mkldnn_elementwise_", ""}).has_value());
  mv_model_free(model);
  mv_model_free(reference);
}
