// C API of calibration: fit on a labelled validation set, write a new package version.

#include <chrono>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/calibrate.hpp"
#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "common/sha256.hpp"

namespace {

namespace fs = std::filesystem;
namespace cal = medvision::calibrate;
using medvision::Error;

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

std::string today_utc() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
  if (!f) throw Error(MV_ERR_IO, p.string() + ": cannot write");
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
  MV_CHECK_ARG(model != nullptr, "mv_model_calibrate: model is NULL");
  MV_CHECK_ARG(logits != nullptr && labels != nullptr,
               "mv_model_calibrate: logits or labels is NULL");
  MV_CHECK_ARG(count > 0, "mv_model_calibrate: count is 0");
  MV_CHECK_ARG(out_dir != nullptr && *out_dir != '\0',
               "mv_model_calibrate: out_dir is NULL or empty");
  mv_calibrate_options o = default_calibrate_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kCalibrateOptionsV1,
          "mv_model_calibrate: mv_calibrate_options.struct_size is smaller than any known version");
      s != MV_OK)
    return s;
  const auto& m = model->model->manifest();
  if (m.task != medvision::model::Task::kClassification) {
    return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                 "mv_model_calibrate: only classification models are calibrated");
  }
  const size_t num_labels = m.labels.size();
  const bool softmax = m.activation == medvision::model::Activation::kSoftmax;
  cal::CalibrateOptions co;
  switch (o.method) {
    case MV_CALIBRATION_TEMPERATURE:
      co.method = cal::Method::kTemperature;
      break;
    case MV_CALIBRATION_PLATT:
      co.method = cal::Method::kPlatt;
      break;
    case MV_CALIBRATION_ISOTONIC:
      co.method = cal::Method::kIsotonic;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT, "mv_model_calibrate: unknown method");
  }
  switch (o.rule) {
    case MV_OPERATING_YOUDEN:
      co.operating_point.rule = cal::Rule::kYouden;
      break;
    case MV_OPERATING_SENSITIVITY:
      co.operating_point.rule = cal::Rule::kTargetSensitivity;
      break;
    case MV_OPERATING_SPECIFICITY:
      co.operating_point.rule = cal::Rule::kTargetSpecificity;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT, "mv_model_calibrate: unknown rule");
  }
  MV_CHECK_ARG(o.target > 0.0 && o.target < 1.0, "mv_model_calibrate: target must be in (0, 1)");
  MV_CHECK_ARG(o.refer_half_width >= 0.0 && o.refer_half_width < 0.5,
               "mv_model_calibrate: refer_half_width must be in [0, 0.5)");
  MV_CHECK_ARG(o.alpha > 0.0 && o.alpha < 1.0, "mv_model_calibrate: alpha must be in (0, 1)");
  MV_CHECK_ARG(o.refer_logit_half_width >= 0.0 && o.refer_logit_half_width <= 10.0,
               "mv_model_calibrate: refer_logit_half_width must be in [0, 10]");
  MV_CHECK_ARG(o.refer_npv > 0.0 && o.refer_npv <= 1.0 && o.refer_ppv > 0.0 && o.refer_ppv <= 1.0,
               "mv_model_calibrate: refer_npv and refer_ppv must be in (0, 1]");
  co.operating_point.target = o.target;
  co.operating_point.half_width = o.refer_half_width;
  co.operating_point.logit_half_width = o.refer_logit_half_width;
  co.operating_point.target_npv = o.refer_npv;
  co.operating_point.target_ppv = o.refer_ppv;
  switch (o.refer_mode) {
    case MV_REFER_LOGIT:
      co.operating_point.refer = cal::ReferMode::kLogitWidth;
      break;
    case MV_REFER_FIXED:
      co.operating_point.refer = cal::ReferMode::kFixedWidth;
      break;
    case MV_REFER_PREDICTIVE_VALUE:
      co.operating_point.refer = cal::ReferMode::kPredictiveValue;
      break;
    case MV_REFER_NONE:
      co.operating_point.refer = cal::ReferMode::kNone;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                   "mv_model_calibrate: unknown refer_mode");
  }
  // The first layout disabled the band with refer_half_width = 0; that still holds.
  if (o.refer_half_width == 0.0) co.operating_point.refer = cal::ReferMode::kNone;
  co.conformal = o.conformal != 0;
  co.alpha = o.alpha;
  switch (o.conformal_score) {
    case MV_CONFORMAL_SCORE_LAC:
      co.conformal_score = cal::ConformalScore::kLac;
      break;
    case MV_CONFORMAL_SCORE_APS:
      co.conformal_score = cal::ConformalScore::kAps;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                   "mv_model_calibrate: unknown conformal_score");
  }
  // APS ranks mutually exclusive classes; a sigmoid model's labels are independent, so its sets
  // are per label (LAC on the negative/positive pair).
  if (co.conformal && co.conformal_score == cal::ConformalScore::kAps && !softmax) {
    return medvision::capi::fail(
        MV_ERR_INVALID_ARGUMENT,
        ("mv_model_calibrate: conformal_score APS needs a softmax (single-label) model; '" +
         m.name + "' is sigmoid (multi-label), whose conformal sets are per label: use LAC")
            .c_str());
  }
  co.fit.date = today_utc();
  co.fit.data = o.data_description ? o.data_description : "";

  const fs::path out(out_dir);
  std::error_code ec;
  if (fs::exists(out / "manifest.json", ec)) {
    return medvision::capi::fail(
        MV_ERR_INVALID_ARGUMENT,
        (std::string(out_dir) + ": already holds a manifest.json").c_str());
  }
  const std::vector<float> z(logits, logits + count * num_labels);
  const std::vector<int> y(labels, labels + (softmax ? count : count * num_labels));
  const auto matrix = cal::Matrix::from(z, count, num_labels);
  cal::CalibrationResult r = cal::calibrate(
      matrix, y, softmax ? cal::Activation::kSoftmax : cal::Activation::kSigmoid, m.labels, co);

  fs::create_directories(out, ec);
  if (ec) throw Error(MV_ERR_IO, std::string(out_dir) + ": cannot create (" + ec.message() + ")");
  const fs::path src_model = fs::path(m.dir) / m.model_file;
  fs::copy_file(src_model, out / m.model_file, fs::copy_options::overwrite_existing, ec);
  if (ec)
    throw Error(MV_ERR_IO, (out / m.model_file).string() + ": cannot copy (" + ec.message() + ")");
  // The copy must be the file the manifest vouches for.
  if (medvision::sha256_file((out / m.model_file).string()) != m.sha256) {
    throw Error(MV_ERR_IO, (out / m.model_file).string() + ": copy does not match its checksum");
  }
  nlohmann::json manifest = m.raw;
  manifest["version"] = o.version ? std::string(o.version) : m.version + "+cal";
  manifest["calibration"] = r.calibration;
  manifest["thresholds"] = r.thresholds;
  manifest["metrics"]["calibration"] = {{"before", r.report["before"]},
                                        {"after", r.report["after"]},
                                        {"data", co.fit.data},
                                        {"date", co.fit.date},
                                        {"count", count},
                                        {"from_version", m.version}};
  write_text(out / "manifest.json",
             manifest.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  write_text(out / "calibration-report.json",
             r.report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  cal::write_reliability_png((out / "reliability.png").string(), r.reliability);
  const fs::path card = fs::path(m.dir) / "README.md";
  if (fs::exists(card, ec))
    fs::copy_file(card, out / "README.md", fs::copy_options::overwrite_existing, ec);
  return MV_OK;
  MV_CAPI_END
}

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
