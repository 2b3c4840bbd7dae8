// C API of evaluation: one or more classification models on a labelled test set, or segmentation
// models against reference label maps (mv_segmentation_evaluator_*).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/evaluate.hpp"
#include "calibrate/segmentation_metrics.hpp"
#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"

struct mv_evaluation {
  std::string json;
};

struct mv_segmentation_evaluator {
  std::unique_ptr<medvision::calibrate::SegmentationEvaluator> evaluator;
  size_t model_count = 0;
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

// The regions mv_model_segment() measures, as label-map values: every foreground class (value v
// of a softmax package is label v; of a sigmoid package label v - 1), then the manifest's unions.
std::vector<cal::RegionDef> segmentation_regions(const medvision::model::Manifest& m, int* max) {
  const bool softmax = m.activation == medvision::model::Activation::kSoftmax;
  std::vector<std::string> classes = softmax ? m.labels : std::vector<std::string>{"background"};
  if (!softmax) classes.insert(classes.end(), m.labels.begin(), m.labels.end());
  std::vector<cal::RegionDef> regions;
  for (size_t v = 1; v < classes.size(); ++v)
    regions.push_back({classes[v], {static_cast<int>(v)}});
  for (const auto& [name, members] : m.segment.regions) {
    const bool known = std::any_of(regions.begin(), regions.end(),
                                   [&n = name](const cal::RegionDef& r) { return r.name == n; });
    if (known) continue;
    cal::RegionDef r{name, {}};
    for (size_t idx : members) r.values.push_back(static_cast<int>(softmax ? idx : idx + 1));
    regions.push_back(std::move(r));
  }
  *max = static_cast<int>(classes.size()) - 1;
  return regions;
}

bool spacing_known(const medvision::Image& im) { return !im.geometry.spacing_source.empty(); }

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

mv_status mv_segmentation_evaluator_create(const mv_model* const* models, size_t model_count,
                                           const mv_evaluate_options* opts,
                                           mv_segmentation_evaluator** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(models != nullptr && out != nullptr,
               "mv_segmentation_evaluator_create: models or out is NULL");
  MV_CHECK_ARG(model_count > 0, "mv_segmentation_evaluator_create: model_count is 0");
  mv_evaluate_options o = default_evaluate_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kEvaluateOptionsV1,
          "mv_segmentation_evaluator_create: mv_evaluate_options.struct_size is smaller than any "
          "known version");
      s != MV_OK)
    return s;
  std::vector<cal::SegmentationModelInfo> infos;
  std::vector<cal::RegionDef> regions;
  int max_value = 0;
  for (size_t k = 0; k < model_count; ++k) {
    MV_CHECK_ARG(models[k] != nullptr, "mv_segmentation_evaluator_create: a model is NULL");
    const auto& m = models[k]->model->manifest();
    if (m.task != medvision::model::Task::kSegmentation) {
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                   ("mv_segmentation_evaluator_create: " + m.name +
                                    " is a classification model; mv_evaluate() evaluates those")
                                       .c_str());
    }
    int mx = 0;
    auto r = segmentation_regions(m, &mx);
    if (k == 0) {
      regions = std::move(r);
      max_value = mx;
    } else if (mx != max_value || !std::equal(r.begin(), r.end(), regions.begin(), regions.end(),
                                              [](const cal::RegionDef& x, const cal::RegionDef& y) {
                                                return x.name == y.name && x.values == y.values;
                                              })) {
      return medvision::capi::fail(
          MV_ERR_INVALID_ARGUMENT,
          ("mv_segmentation_evaluator_create: " + m.name + " and " +
           models[0]->model->manifest().name + " differ in their labels or regions")
              .c_str());
    }
    infos.push_back({m.name, m.version});
  }
  cal::EvaluateOptions eo;
  eo.bootstrap = o.bootstrap;
  eo.seed = o.seed;
  eo.level = o.level;
  auto ev = std::make_unique<mv_segmentation_evaluator>();
  ev->evaluator =
      std::make_unique<cal::SegmentationEvaluator>(std::move(infos), regions, max_value, eo);
  ev->model_count = model_count;
  *out = ev.release();
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_segmentation_evaluator_add(mv_segmentation_evaluator* evaluator, const char* case_name,
                                        const mv_image* reference,
                                        const mv_image* const* masks) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(
      evaluator != nullptr && case_name != nullptr && reference != nullptr && masks != nullptr,
      "mv_segmentation_evaluator_add: evaluator, case_name, reference or masks is NULL");
  const std::string where = std::string("mv_segmentation_evaluator_add: case '") + case_name + "'";
  const medvision::Image& ref = *reference->image;
  if (ref.channels() != 1) {
    return medvision::capi::fail(
        MV_ERR_INVALID_ARGUMENT,
        (where + ": the reference has " + std::to_string(ref.channels()) +
         " channels; a label map has one (a colour PNG is not a label map)")
            .c_str());
  }
  std::vector<const float*> predictions;
  const medvision::Image* first = nullptr;
  for (size_t k = 0; k < evaluator->model_count; ++k) {
    MV_CHECK_ARG(masks[k] != nullptr, "mv_segmentation_evaluator_add: a mask is NULL");
    const medvision::Image& p = *masks[k]->image;
    if (p.channels() != 1 || p.depth() != ref.depth() || p.height() != ref.height() ||
        p.width() != ref.width()) {
      return medvision::capi::fail(
          MV_ERR_SHAPE_MISMATCH,
          (where + ": the reference is " + std::to_string(ref.width()) + " x " +
           std::to_string(ref.height()) + " x " + std::to_string(ref.depth()) +
           " but a predicted mask is " + std::to_string(p.width()) + " x " +
           std::to_string(p.height()) + " x " + std::to_string(p.depth()) + " (" +
           std::to_string(p.channels()) + " channels): the reference must lie on the image's grid")
              .c_str());
    }
    if (first == nullptr) first = &p;
    predictions.push_back(p.data());
  }
  // The spacing is the image's (the predicted masks carry the input's geometry); a reference that
  // knows its own spacing (NIfTI, DICOM) must agree with it.
  cal::MaskGrid g;
  g.depth = ref.depth();
  g.height = ref.height();
  g.width = ref.width();
  const medvision::Image& geo = spacing_known(*first) ? *first : ref;
  g.spacing_known = spacing_known(geo);
  g.spacing = geo.geometry.spacing;
  if (spacing_known(*first) && spacing_known(ref)) {
    for (size_t a = 0; a < (g.depth > 1 ? 3u : 2u); ++a) {
      const double x = first->geometry.spacing[a], y = ref.geometry.spacing[a];
      if (std::fabs(x - y) > 1e-3 * std::max(1.0, std::fabs(x))) {
        return medvision::capi::fail(
            MV_ERR_SHAPE_MISMATCH,
            (where + ": the reference's pixel spacing differs from the image's").c_str());
      }
    }
  }
  evaluator->evaluator->add(case_name, g, ref.data(), predictions);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_segmentation_evaluator_finish(const mv_segmentation_evaluator* evaluator,
                                           mv_evaluation** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(evaluator != nullptr && out != nullptr,
               "mv_segmentation_evaluator_finish: evaluator or out is NULL");
  auto ev = std::make_unique<mv_evaluation>();
  ev->json = evaluator->evaluator->summary().dump();
  *out = ev.release();
  return MV_OK;
  MV_CAPI_END
}

void mv_segmentation_evaluator_free(mv_segmentation_evaluator* evaluator) MV_NOEXCEPT {
  delete evaluator;
}

const char* mv_evaluation_json(const mv_evaluation* evaluation) MV_NOEXCEPT {
  return evaluation != nullptr ? evaluation->json.c_str() : "";
}

void mv_evaluation_free(mv_evaluation* evaluation) MV_NOEXCEPT { delete evaluation; }

}  // extern "C"
