// C API of calibration: fit on a labelled validation set, write a new package version
// (model/calibrate_package.cpp does the work), and the drift check.

#include <cstddef>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/calibrate.hpp"
#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "model/calibrate_package.hpp"

namespace {

namespace cal = medvision::calibrate;

constexpr size_t kCalibrateOptionsV1 = offsetof(mv_calibrate_options, version) + sizeof(char*);

mv_calibrate_options default_calibrate_options() {
  mv_calibrate_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.method = MV_CALIBRATION_TEMPERATURE;
  o.rule = MV_OPERATING_YOUDEN;
  o.target = 0.9;
  o.refer_half_width = 0.1;
  o.conformal = 0;
  o.alpha = 0.1;
  o.refer_mode = MV_REFER_PREDICTIVE_VALUE;
  o.refer_logit_half_width = 0.4;
  o.refer_npv = 0.95;
  o.refer_ppv = 0.9;
  o.conformal_score = MV_CONFORMAL_SCORE_LAC;
  return o;
}

// Copies mv_calibrate_options into the calibrate module's options (the C enums to its enums),
// checking every value; sets *version. MV_OK or the failed check's status.
mv_status to_options(const mv_calibrate_options* opts, const char* fn, cal::CalibrateOptions* co,
                     std::string* version) {
  const std::string f(fn);
  mv_calibrate_options o = default_calibrate_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kCalibrateOptionsV1,
          (f + ": mv_calibrate_options.struct_size is smaller than any known version").c_str());
      s != MV_OK)
    return s;
  switch (o.method) {
    case MV_CALIBRATION_TEMPERATURE:
      co->method = cal::Method::kTemperature;
      break;
    case MV_CALIBRATION_PLATT:
      co->method = cal::Method::kPlatt;
      break;
    case MV_CALIBRATION_ISOTONIC:
      co->method = cal::Method::kIsotonic;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT, (f + ": unknown method").c_str());
  }
  switch (o.rule) {
    case MV_OPERATING_YOUDEN:
      co->operating_point.rule = cal::Rule::kYouden;
      break;
    case MV_OPERATING_SENSITIVITY:
      co->operating_point.rule = cal::Rule::kTargetSensitivity;
      break;
    case MV_OPERATING_SPECIFICITY:
      co->operating_point.rule = cal::Rule::kTargetSpecificity;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT, (f + ": unknown rule").c_str());
  }
  MV_CHECK_ARG(o.target > 0.0 && o.target < 1.0, (f + ": target must be in (0, 1)").c_str());
  MV_CHECK_ARG(o.refer_half_width >= 0.0 && o.refer_half_width < 0.5,
               (f + ": refer_half_width must be in [0, 0.5)").c_str());
  MV_CHECK_ARG(o.alpha > 0.0 && o.alpha < 1.0, (f + ": alpha must be in (0, 1)").c_str());
  MV_CHECK_ARG(o.refer_logit_half_width >= 0.0 && o.refer_logit_half_width <= 10.0,
               (f + ": refer_logit_half_width must be in [0, 10]").c_str());
  MV_CHECK_ARG(o.refer_npv > 0.0 && o.refer_npv <= 1.0 && o.refer_ppv > 0.0 && o.refer_ppv <= 1.0,
               (f + ": refer_npv and refer_ppv must be in (0, 1]").c_str());
  co->operating_point.target = o.target;
  co->operating_point.half_width = o.refer_half_width;
  co->operating_point.logit_half_width = o.refer_logit_half_width;
  co->operating_point.target_npv = o.refer_npv;
  co->operating_point.target_ppv = o.refer_ppv;
  switch (o.refer_mode) {
    case MV_REFER_LOGIT:
      co->operating_point.refer = cal::ReferMode::kLogitWidth;
      break;
    case MV_REFER_FIXED:
      co->operating_point.refer = cal::ReferMode::kFixedWidth;
      break;
    case MV_REFER_PREDICTIVE_VALUE:
      co->operating_point.refer = cal::ReferMode::kPredictiveValue;
      break;
    case MV_REFER_NONE:
      co->operating_point.refer = cal::ReferMode::kNone;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT, (f + ": unknown refer_mode").c_str());
  }
  // The first layout disabled the band with refer_half_width = 0; that still holds.
  if (o.refer_half_width == 0.0) co->operating_point.refer = cal::ReferMode::kNone;
  co->conformal = o.conformal != 0;
  co->alpha = o.alpha;
  switch (o.conformal_score) {
    case MV_CONFORMAL_SCORE_LAC:
      co->conformal_score = cal::ConformalScore::kLac;
      break;
    case MV_CONFORMAL_SCORE_APS:
      co->conformal_score = cal::ConformalScore::kAps;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                   (f + ": unknown conformal_score").c_str());
  }
  co->fit.data = o.data_description ? o.data_description : "";
  *version = o.version ? o.version : "";
  return MV_OK;
}

// The checks and the one module call shared by mv_model_calibrate and
// mv_model_calibrate_report.
mv_status calibrate_package(const mv_model* model, const float* logits, const int32_t* labels,
                            size_t count, const mv_calibrate_options* opts, const char* out_dir,
                            const char* fn, cal::PackageWritten* out) {
  const std::string f(fn);
  MV_CHECK_ARG(model != nullptr, (f + ": model is NULL").c_str());
  MV_CHECK_ARG(logits != nullptr && labels != nullptr, (f + ": logits or labels is NULL").c_str());
  MV_CHECK_ARG(count > 0, (f + ": count is 0").c_str());
  MV_CHECK_ARG(out_dir != nullptr && *out_dir != '\0', (f + ": out_dir is NULL or empty").c_str());
  cal::CalibrateOptions co;
  std::string version;
  if (mv_status s = to_options(opts, fn, &co, &version); s != MV_OK) return s;
  *out = medvision::model::calibrate_package(*model->model, logits, labels, count, co, version,
                                             out_dir);
  return MV_OK;
}

}  // namespace

extern "C" {

mv_status mv_calibrate_options_init(mv_calibrate_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kCalibrateOptionsV1,
                                       default_calibrate_options(), "mv_calibrate_options_init");
  MV_CAPI_END
}

mv_status mv_model_calibrate(const mv_model* model, const float* logits, const int32_t* labels,
                             size_t count, const mv_calibrate_options* opts,
                             const char* out_dir) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  cal::PackageWritten written;
  return calibrate_package(model, logits, labels, count, opts, out_dir, "mv_model_calibrate",
                           &written);
  MV_CAPI_END
}

mv_status mv_model_calibrate_report(const mv_model* model, const float* logits,
                                    const int32_t* labels, size_t count,
                                    const mv_calibrate_options* opts, const char* out_dir,
                                    mv_calibration_report** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(out != nullptr, "mv_model_calibrate_report: out is NULL");
  cal::PackageWritten written;
  if (mv_status s = calibrate_package(model, logits, labels, count, opts, out_dir,
                                      "mv_model_calibrate_report", &written);
      s != MV_OK)
    return s;
  auto r = std::make_unique<mv_calibration_report>();
  r->json = medvision::model::calibration_report_json(written).dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  *out = r.release();
  return MV_OK;
  MV_CAPI_END
}

const char* mv_calibration_report_json(const mv_calibration_report* report) MV_NOEXCEPT {
  return report != nullptr ? report->json.c_str() : "";
}

void mv_calibration_report_free(mv_calibration_report* report) MV_NOEXCEPT { delete report; }

mv_status mv_model_drift_check(const mv_model* model, const float* logits, size_t count, char* buf,
                               size_t cap, size_t* out_needed) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(model != nullptr && logits != nullptr,
               "mv_model_drift_check: model or logits is NULL");
  MV_CHECK_ARG(count > 0, "mv_model_drift_check: count is 0");
  MV_CHECK_ARG(out_needed != nullptr, "mv_model_drift_check: out_needed is NULL");
  const auto& m = model->model->manifest();
  if (!m.calibration.is_object() || !m.calibration.contains("drift")) {
    return medvision::capi::fail(
        MV_ERR_INVALID_ARGUMENT,
        (m.path + ": the package records no calibration-time score distribution (run medvision "
                  "calibrate first)")
            .c_str());
  }
  const auto reference = cal::DriftReference::from_json(m.calibration["drift"]);
  const size_t labels = m.labels.size();
  const std::vector<float> z(logits, logits + count * labels);
  const cal::DriftReport report = reference.compare(cal::Matrix::from(z, count, labels));
  nlohmann::json j = report.to_json();
  if (j.contains("labels") && j["labels"].is_array()) {
    for (size_t k = 0; k < j["labels"].size() && k < labels; ++k)
      j["labels"][k]["label"] = m.labels[k];
  }
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  *out_needed = text.size() + 1;
  if (buf != nullptr && cap >= text.size() + 1) std::memcpy(buf, text.c_str(), text.size() + 1);
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
