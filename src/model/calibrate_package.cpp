#include "model/calibrate_package.hpp"

#include <vector>

#include "common/error.hpp"

namespace medvision::model {

namespace cal = medvision::calibrate;

cal::PackageWritten calibrate_package(const Model& model, const float* logits,
                                      const int32_t* labels, size_t count,
                                      cal::CalibrateOptions options, const std::string& version,
                                      const std::string& out_dir) {
  const Manifest& m = model.manifest();
  if (m.task != Task::kClassification) {
    throw Error(MV_ERR_INVALID_ARGUMENT, m.path + ": '" + m.name +
                                             "' is not a classification model (only classification "
                                             "models are calibrated)");
  }
  const bool softmax = m.activation == Activation::kSoftmax;
  // APS ranks mutually exclusive classes; a sigmoid model's labels are independent, so its sets
  // are per label (LAC on the negative/positive pair).
  if (options.conformal && options.conformal_score == cal::ConformalScore::kAps && !softmax) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "conformal_score APS needs a softmax (single-label) model; '" + m.name +
                    "' is sigmoid (multi-label), whose conformal sets are per label: use LAC");
  }
  cal::require_new_package_dir(out_dir);
  if (options.fit.date.empty()) options.fit.date = cal::today_utc_date();
  const size_t num_labels = m.labels.size();
  const std::vector<float> z(logits, logits + count * num_labels);
  const std::vector<int> y(labels, labels + (softmax ? count : count * num_labels));
  const cal::CalibrationResult r = cal::calibrate(
      cal::Matrix::from(z, count, num_labels), y,
      softmax ? cal::Activation::kSoftmax : cal::Activation::kSigmoid, m.labels, options);
  cal::PackageSource source;
  source.dir = m.dir;
  source.model_file = m.model_file;
  source.sha256 = m.sha256;
  source.manifest = m.raw;
  source.version = m.version;
  return cal::write_package(source, r, options, count, version, out_dir);
}

nlohmann::json calibration_report_json(const cal::PackageWritten& w) {
  const auto& m = w.manifest;
  return {{"dir", w.dir},
          {"name", m.value("name", std::string())},
          {"version", m.value("version", std::string())},
          {"calibration", m.contains("calibration") ? m["calibration"] : nlohmann::json()},
          {"thresholds", m.contains("thresholds") ? m["thresholds"] : nlohmann::json()},
          {"report", w.report}};
}

}  // namespace medvision::model
