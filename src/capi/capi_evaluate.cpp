// C API of evaluation: one or more classification models on a labelled test set.

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/evaluate.hpp"
#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"

struct mv_evaluation {
  std::string json;
};

namespace {

namespace cal = medvision::calibrate;

constexpr size_t kEvaluateOptionsV1 = offsetof(mv_evaluate_options, sensitivity) + sizeof(double);

mv_evaluate_options default_evaluate_options() {
  mv_evaluate_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.bootstrap = 1000;
  o.bins = 15;
  o.seed = 20240601;
  o.level = 0.95;
  o.threshold = -1.0;
  o.sensitivity = 0.0;
  return o;
}

}  // namespace

extern "C" {

mv_status mv_evaluate_options_init(mv_evaluate_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kEvaluateOptionsV1,
                                       default_evaluate_options(), "mv_evaluate_options_init");
  MV_CAPI_END
}

mv_status mv_evaluate(const mv_model* const* models, const float* const* logits, size_t model_count,
                      const int32_t* labels, size_t count, const mv_evaluate_options* opts,
                      mv_evaluation** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(models != nullptr && logits != nullptr && labels != nullptr && out != nullptr,
               "mv_evaluate: models, logits, labels or out is NULL");
  MV_CHECK_ARG(model_count > 0, "mv_evaluate: model_count is 0");
  MV_CHECK_ARG(count > 0, "mv_evaluate: count is 0");
  mv_evaluate_options o = default_evaluate_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kEvaluateOptionsV1,
          "mv_evaluate: mv_evaluate_options.struct_size is smaller than any known version");
      s != MV_OK)
    return s;
  std::vector<cal::ModelScores> scores;
  const medvision::model::Manifest* first = nullptr;
  for (size_t k = 0; k < model_count; ++k) {
    MV_CHECK_ARG(models[k] != nullptr && logits[k] != nullptr,
                 "mv_evaluate: a model or its logits is NULL");
    const auto& m = models[k]->model->manifest();
    if (m.task != medvision::model::Task::kClassification) {
      return medvision::capi::fail(
          MV_ERR_INVALID_ARGUMENT,
          ("mv_evaluate: " + m.name + " is a segmentation model; evaluate classifies").c_str());
    }
    if (first == nullptr) first = &m;
    if (m.labels != first->labels || m.activation != first->activation) {
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                   ("mv_evaluate: " + m.name + " and " + first->name +
                                    " differ in their labels or activation")
                                       .c_str());
    }
    cal::ModelScores s;
    s.name = m.name;
    s.version = m.version;
    const size_t n_labels = m.labels.size();
    const std::vector<float> z(logits[k], logits[k] + count * n_labels);
    s.logits = cal::Matrix::from(z, count, n_labels);
    s.calibration = m.calibration;
    s.thresholds = m.thresholds;
    scores.push_back(std::move(s));
  }
  const auto activation = first->activation == medvision::model::Activation::kSoftmax
                              ? cal::Activation::kSoftmax
                              : cal::Activation::kSigmoid;
  const size_t per_image = activation == cal::Activation::kSoftmax ? 1 : first->labels.size();
  const std::vector<int> y(labels, labels + count * per_image);
  cal::EvaluateOptions eo;
  eo.bootstrap = o.bootstrap;
  eo.bins = o.bins;
  eo.seed = o.seed;
  eo.level = o.level;
  if (o.threshold >= 0) eo.threshold = o.threshold;
  if (o.sensitivity != 0) eo.sensitivity = o.sensitivity;
  const nlohmann::json j = cal::evaluate_models(scores, y, activation, first->labels, eo);
  auto ev = std::make_unique<mv_evaluation>();
  ev->json = j.dump();
  *out = ev.release();
  return MV_OK;
  MV_CAPI_END
}

const char* mv_evaluation_json(const mv_evaluation* evaluation) MV_NOEXCEPT {
  return evaluation != nullptr ? evaluation->json.c_str() : "";
}

void mv_evaluation_free(mv_evaluation* evaluation) MV_NOEXCEPT { delete evaluation; }

}  // extern "C"
