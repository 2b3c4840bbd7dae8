// C API of models and results.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "capi/segment_result.hpp"
#include "common/log.hpp"
#include "model/model.hpp"

namespace {

using medvision::model::Model;

constexpr size_t kModelOptionsV1 = offsetof(mv_model_options, optimize) + sizeof(int32_t);
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

mv_model_options default_model_options() {
  mv_model_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.device = nullptr;
  o.num_threads = 0;
  o.precision = MV_PRECISION_FLOAT32;
  o.warmup = 1;
  o.optimize = 1;
  return o;
}

const medvision::model::LabelScore* score(const mv_result* r, size_t i) {
  if (r == nullptr || i >= r->result.classification.scores.size()) return nullptr;
  return &r->result.classification.scores[i];
}

// A non-owning image handle over an image the result owns.
std::unique_ptr<mv_image> alias(const std::unique_ptr<medvision::Image>& image) {
  if (!image) return nullptr;
  auto h = std::make_unique<mv_image>();
  h->image = std::shared_ptr<medvision::Image>(std::shared_ptr<void>(), image.get());
  return h;
}

}  // namespace

namespace medvision::capi {

mv_result* wrap_result(model::Result&& result) {
  auto r = std::make_unique<mv_result>();
  r->result = std::move(result);
  // Switches without default map every task (-Wswitch names them when a task is added).
  switch (r->result.task) {
    case model::Task::kSegmentation:
      r->task = MV_TASK_SEGMENTATION;
      r->mask = alias(r->result.segmentation.mask);
      r->probabilities = alias(r->result.segmentation.probabilities);
      break;
    case model::Task::kClassification:
      r->task = MV_TASK_CLASSIFICATION;
      break;
  }
  return r.release();
}

}  // namespace medvision::capi

extern "C" {

mv_status mv_model_options_init(mv_model_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kModelOptionsV1, default_model_options(),
                                       "mv_model_options_init");
  MV_CAPI_END
}

mv_status mv_model_load(const char* name_or_path, const mv_model_options* opts,
                        mv_model** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(name_or_path != nullptr, "mv_model_load: name_or_path is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_model_load: out is NULL");
  mv_model_options o = default_model_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kModelOptionsV1,
          "mv_model_load: mv_model_options.struct_size is smaller than any known version");
      s != MV_OK)
    return s;
  MV_CHECK_ARG(o.num_threads >= -1, "mv_model_load: num_threads must be >= -1");
  MV_CHECK_ARG(o.precision == MV_PRECISION_FLOAT32 || o.precision == MV_PRECISION_REDUCED,
               "mv_model_load: precision must be MV_PRECISION_FLOAT32 or MV_PRECISION_REDUCED");
  medvision::model::LoadOptions lo;
  lo.runtime.device = o.device ? o.device : "auto";
  lo.runtime.num_threads = o.num_threads;
  lo.runtime.precision = o.precision == MV_PRECISION_REDUCED
                             ? medvision::infer::Precision::kReduced
                             : medvision::infer::Precision::kFloat32;
  lo.runtime.optimize = o.optimize != 0;
  lo.warmup = o.warmup != 0;
  auto model = Model::load(name_or_path, lo);
  medvision::log_warnings(model->manifest().name, model->load_warnings());
  auto* h = new mv_model;
  h->model = std::move(model);
  h->manifest_json =
      h->model->manifest().raw.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  h->device = h->model->runtime().device();
  *out = h;
  return MV_OK;
  MV_CAPI_END
}

void mv_model_free(mv_model* model) MV_NOEXCEPT { delete model; }

mv_status mv_model_list(char* buf, size_t cap, size_t* out_needed) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(out_needed != nullptr, "mv_model_list: out_needed is NULL");
  std::string text;
  for (const auto& p : medvision::model::list_packages()) text += p + "\n";
  *out_needed = text.size() + 1;
  if (buf != nullptr && cap >= text.size() + 1) std::memcpy(buf, text.c_str(), text.size() + 1);
  return MV_OK;
  MV_CAPI_END
}

const char* mv_model_name(const mv_model* m) MV_NOEXCEPT {
  return m ? m->model->manifest().name.c_str() : nullptr;
}
const char* mv_model_version(const mv_model* m) MV_NOEXCEPT {
  return m ? m->model->manifest().version.c_str() : nullptr;
}
const char* mv_model_notice(const mv_model* m) MV_NOEXCEPT {
  return m ? m->model->manifest().notice.c_str() : nullptr;
}
mv_task mv_model_task(const mv_model* m) MV_NOEXCEPT {
  if (m == nullptr) return MV_TASK_CLASSIFICATION;
  switch (m->model->manifest().task) {
    case medvision::model::Task::kSegmentation:
      return MV_TASK_SEGMENTATION;
    case medvision::model::Task::kClassification:
      break;
  }
  return MV_TASK_CLASSIFICATION;
}
mv_activation mv_model_activation(const mv_model* m) MV_NOEXCEPT {
  if (m == nullptr) return MV_ACTIVATION_SIGMOID;
  switch (m->model->manifest().activation) {
    case medvision::model::Activation::kSoftmax:
      return MV_ACTIVATION_SOFTMAX;
    case medvision::model::Activation::kSigmoid:
      break;
  }
  return MV_ACTIVATION_SIGMOID;
}
size_t mv_model_label_count(const mv_model* m) MV_NOEXCEPT {
  return m ? m->model->manifest().labels.size() : 0;
}
const char* mv_model_label(const mv_model* m, size_t i) MV_NOEXCEPT {
  if (m == nullptr || i >= m->model->manifest().labels.size()) return nullptr;
  return m->model->manifest().labels[i].c_str();
}
const char* mv_model_device(const mv_model* m) MV_NOEXCEPT {
  return m ? m->device.c_str() : nullptr;
}
const char* mv_model_manifest_json(const mv_model* m) MV_NOEXCEPT {
  return m ? m->manifest_json.c_str() : nullptr;
}

mv_status mv_model_run(const mv_model* model, const mv_image* image, mv_result** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(model != nullptr, "mv_model_run: model is NULL");
  MV_CHECK_ARG(image != nullptr, "mv_model_run: image is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_model_run: out is NULL");
  *out = medvision::capi::wrap_result(model->model->run(*image->image));
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_model_run_batch(const mv_model* model, const mv_image* const* images, size_t count,
                             mv_result** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(model != nullptr, "mv_model_run_batch: model is NULL");
  MV_CHECK_ARG(images != nullptr, "mv_model_run_batch: images is NULL");
  MV_CHECK_ARG(count > 0, "mv_model_run_batch: count is 0");
  MV_CHECK_ARG(out != nullptr, "mv_model_run_batch: out is NULL");
  std::vector<const medvision::Image*> list;
  list.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (images[i] == nullptr) {
      return medvision::capi::fail(
          MV_ERR_INVALID_ARGUMENT,
          ("mv_model_run_batch: images[" + std::to_string(i) + "] is NULL").c_str());
    }
    list.push_back(images[i]->image.get());
  }
  auto results = model->model->run_batch(list);
  // Wrap every result before handing any out, so that a failure leaves `out` untouched.
  std::vector<std::unique_ptr<mv_result>> made;
  made.reserve(count);
  for (auto& r : results) made.emplace_back(medvision::capi::wrap_result(std::move(r)));
  for (size_t i = 0; i < count; ++i) out[i] = made[i].release();
  return MV_OK;
  MV_CAPI_END
}

void mv_result_free(mv_result* r) MV_NOEXCEPT { delete r; }

size_t mv_result_label_count(const mv_result* r) MV_NOEXCEPT {
  if (r == nullptr) return 0;
  return r->task == MV_TASK_SEGMENTATION ? r->result.segmentation.classes.size()
                                         : r->result.classification.scores.size();
}
const char* mv_result_label(const mv_result* r, size_t i) MV_NOEXCEPT {
  if (r != nullptr && r->task == MV_TASK_SEGMENTATION) {
    return i < r->result.segmentation.classes.size() ? r->result.segmentation.classes[i].c_str()
                                                     : nullptr;
  }
  const auto* s = score(r, i);
  return s ? s->label.c_str() : nullptr;
}
float mv_result_logit(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* s = score(r, i);
  return s ? s->logit : kNaN;
}
float mv_result_probability(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* s = score(r, i);
  return s ? s->probability : kNaN;
}
float mv_result_calibrated(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* s = score(r, i);
  return s ? s->calibrated : kNaN;
}
int32_t mv_result_decision(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* s = score(r, i);
  return s ? s->decision : -1;
}
double mv_result_ood_score(const mv_result* r) MV_NOEXCEPT {
  return r != nullptr && r->task == MV_TASK_CLASSIFICATION
             ? r->result.classification.ood.score
             : std::numeric_limits<double>::quiet_NaN();
}

int32_t mv_result_refer(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* s = score(r, i);
  return s && s->refer ? 1 : 0;
}
int32_t mv_result_conformal(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* s = score(r, i);
  return s && r->task == MV_TASK_CLASSIFICATION ? s->conformal : -1;
}
double mv_result_conformal_alpha(const mv_result* r) MV_NOEXCEPT {
  if (r == nullptr || r->task != MV_TASK_CLASSIFICATION) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return r->result.classification.conformal_alpha;
}
size_t mv_result_ranked(const mv_result* r, size_t rank) MV_NOEXCEPT {
  if (r == nullptr || rank >= r->result.classification.ranking.size()) return SIZE_MAX;
  return r->result.classification.ranking[rank];
}
const char* mv_result_model_name(const mv_result* r) MV_NOEXCEPT {
  return r ? r->result.model_name.c_str() : nullptr;
}
const char* mv_result_model_version(const mv_result* r) MV_NOEXCEPT {
  return r ? r->result.model_version.c_str() : nullptr;
}
const char* mv_result_notice(const mv_result* r) MV_NOEXCEPT {
  return r ? r->result.notice.c_str() : nullptr;
}
size_t mv_result_warning_count(const mv_result* r) MV_NOEXCEPT {
  return r ? r->result.warnings().size() : 0;
}
const char* mv_result_warning(const mv_result* r, size_t i) MV_NOEXCEPT {
  if (r == nullptr || i >= r->result.warnings().size()) return nullptr;
  return r->result.warnings()[i].c_str();
}
const char* mv_result_json(const mv_result* r) MV_NOEXCEPT {
  return r ? r->result.json.c_str() : nullptr;
}

}  // extern "C"
