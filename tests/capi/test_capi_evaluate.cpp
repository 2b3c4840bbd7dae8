// mv_evaluate() through the C ABI: options, argument checks, outputs untouched on error, and one
// evaluation of the bundled cxr-pneumonia package on synthetic raw outputs.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "medvision/medvision.h"

TEST_CASE("mv_evaluate: options and argument checks", "[capi][evaluate]") {
  mv_evaluate_options o;
  REQUIRE(mv_evaluate_options_default(&o) == MV_OK);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.bootstrap == 1000);
  CHECK(o.bins == 15);
  CHECK(o.level == 0.95);
  CHECK(o.threshold < 0);
  CHECK(o.sensitivity == 0);
  CHECK(mv_evaluate_options_init(nullptr, sizeof o) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_evaluate_options_init(&o, 4) == MV_ERR_ABI_MISMATCH);

  mv_evaluation* ev = reinterpret_cast<mv_evaluation*>(&o);  // must stay untouched
  const int32_t y[2] = {0, 1};
  CHECK(mv_evaluate(nullptr, nullptr, 1, y, 2, nullptr, &ev) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(mv_last_error()) > 0);
  CHECK(ev == reinterpret_cast<mv_evaluation*>(&o));
  CHECK(std::string(mv_evaluation_json(nullptr)).empty());
  mv_evaluation_free(nullptr);

  const char* src = std::getenv("MV_SOURCE_DIR");
  if (src == nullptr) return;
  mv_model* model = nullptr;
  const std::string pkg = std::string(src) + "/models/cxr-pneumonia/package";
  REQUIRE(mv_model_load(pkg.c_str(), nullptr, &model) == MV_OK);
  const size_t n = 40;
  std::vector<float> za(n), zb(n);
  std::vector<int32_t> labels(n);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int32_t>(i % 2);
    za[i] = static_cast<float>((labels[i] ? 1.0 : -1.0) + 0.1 * static_cast<double>(i % 7));
    zb[i] = static_cast<float>(0.05 * static_cast<double>(i % 11) - 0.2);
  }
  const mv_model* models[2] = {model, model};
  const float* logits[2] = {za.data(), zb.data()};
  o.bootstrap = 100;
  o.threshold = 0.5;
  REQUIRE(mv_evaluate(models, logits, 2, labels.data(), n, &o, &ev) == MV_OK);
  const std::string json = mv_evaluation_json(ev);
  CHECK(json.find("\"comparisons\"") != std::string::npos);
  CHECK(json.find("\"delong\"") != std::string::npos);
  CHECK(json.find("\"at_threshold\"") != std::string::npos);
  CHECK(json.find("Not for diagnostic use") != std::string::npos);
  mv_evaluation_free(ev);
  // Labels outside {0, 1} and a bad option are refused, with the output untouched.
  ev = nullptr;
  labels[3] = 2;
  CHECK(mv_evaluate(models, logits, 2, labels.data(), n, &o, &ev) == MV_ERR_INVALID_ARGUMENT);
  CHECK(ev == nullptr);
  labels[3] = 1;
  o.sensitivity = 1.5;
  CHECK(mv_evaluate(models, logits, 1, labels.data(), n, &o, &ev) == MV_ERR_INVALID_ARGUMENT);
  CHECK(ev == nullptr);
  mv_model_free(model);
}

TEST_CASE("mv_segmentation_evaluator: argument checks, outputs untouched, one case",
          "[capi][evaluate]") {
  int dummy = 0;
  auto* const sentinel = reinterpret_cast<mv_segmentation_evaluator*>(&dummy);
  mv_segmentation_evaluator* ev = sentinel;
  CHECK(mv_segmentation_evaluator_create(nullptr, 1, nullptr, &ev) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(mv_last_error()) > 0);
  CHECK(ev == sentinel);
  mv_evaluation* out = nullptr;
  CHECK(mv_segmentation_evaluator_finish(nullptr, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(out == nullptr);
  mv_segmentation_evaluator_free(nullptr);

  const char* src = std::getenv("MV_SOURCE_DIR");
  if (src == nullptr) return;
  mv_model* cls = nullptr;
  REQUIRE(mv_model_load((std::string(src) + "/models/cxr-pneumonia/package").c_str(), nullptr,
                        &cls) == MV_OK);
  const mv_model* one[1] = {cls};
  CHECK(mv_segmentation_evaluator_create(one, 1, nullptr, &ev) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("classification model") != std::string::npos);
  CHECK(ev == sentinel);
  mv_model_free(cls);

  mv_model* lungs = nullptr;
  REQUIRE(mv_model_load((std::string(src) + "/models/cxr-lungs/package").c_str(), nullptr,
                        &lungs) == MV_OK);
  one[0] = lungs;
  REQUIRE(mv_segmentation_evaluator_create(one, 1, nullptr, &ev) == MV_OK);
  CHECK(mv_segmentation_evaluator_finish(ev, &out) == MV_ERR_INVALID_ARGUMENT);  // no case yet
  // A 4 x 4 reference with two left-lung pixels, a prediction with one of them.
  float ref_px[16] = {0}, pred_px[16] = {0};
  ref_px[5] = ref_px[6] = 1;
  pred_px[5] = 1;
  mv_tensor_view v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_FLOAT32;
  v.ndim = 2;
  v.shape[0] = v.shape[1] = 4;
  v.strides[0] = 16;
  v.strides[1] = 4;
  mv_image *ref = nullptr, *pred = nullptr;
  v.data = ref_px;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &ref) == MV_OK);
  v.data = pred_px;
  REQUIRE(mv_image_from_pixels(&v, nullptr, &pred) == MV_OK);
  const mv_image* masks[1] = {pred};
  CHECK(mv_segmentation_evaluator_add(ev, "case", ref, nullptr) == MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_segmentation_evaluator_add(ev, "case", ref, masks) == MV_OK);
  REQUIRE(mv_segmentation_evaluator_finish(ev, &out) == MV_OK);
  const std::string json = mv_evaluation_json(out);
  CHECK(json.find("\"task\":\"segmentation\"") != std::string::npos);
  CHECK(json.find("\"dice\":0.6666666666666666") != std::string::npos);  // 2 * 1 / (2 + 1)
  mv_evaluation_free(out);
  mv_segmentation_evaluator_free(ev);
  mv_image_free(ref);
  mv_image_free(pred);
  mv_model_free(lungs);
}
