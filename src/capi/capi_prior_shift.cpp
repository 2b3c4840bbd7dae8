// C API of the prior shift (calibrate/prior_shift.hpp): a site's label prevalence estimated from
// unlabelled images, and a package version whose probabilities are corrected for it.

#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/calibrate.hpp"
#include "calibrate/calibrator.hpp"
#include "calibrate/drift.hpp"
#include "calibrate/prior_shift.hpp"
#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"

namespace {

namespace cal = medvision::calibrate;
using medvision::Error;
using nlohmann::json;

constexpr size_t kPriorShiftOptionsV1 = offsetof(mv_prior_shift_options, version) + sizeof(char*);

mv_prior_shift_options default_prior_shift_options() {
  mv_prior_shift_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.max_iterations = 1000;
  o.tolerance = 1e-8;
  return o;
}

struct Estimated {
  json report;       // what mv_model_estimate_prior() returns
  json prior_shift;  // the manifest's calibration "prior_shift"
  json thresholds;   // the adapted package's thresholds
  std::string version;
};

// The whole estimate shared by the three entry points; throws medvision::Error.
Estimated estimate(const mv_model* model, const float* logits, size_t count,
                   const mv_prior_shift_options* opts, const std::string& fn) {
  if (model == nullptr) throw Error(MV_ERR_INVALID_ARGUMENT, fn + ": model is NULL");
  if (logits == nullptr) throw Error(MV_ERR_INVALID_ARGUMENT, fn + ": logits is NULL");
  if (count == 0) throw Error(MV_ERR_INVALID_ARGUMENT, fn + ": count is 0 (no images)");
  mv_prior_shift_options o = default_prior_shift_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kPriorShiftOptionsV1,
          (fn + ": mv_prior_shift_options.struct_size is smaller than any known version").c_str());
      s != MV_OK)
    throw Error(s, medvision::last_error());
  const auto& m = model->model->manifest();
  if (m.task != medvision::model::Task::kClassification) {
    throw Error(MV_ERR_INVALID_ARGUMENT, m.path + ": '" + m.name +
                                             "' is not a classification model (a prior shift "
                                             "needs class probabilities)");
  }
  if (!m.calibration.is_object() || !m.calibration.contains("method")) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                m.path +
                    ": the package is not calibrated (run medvision calibrate on labelled "
                    "images first; the prior shift corrects calibrated probabilities)");
  }
  const size_t labels = m.labels.size();
  const cal::Activation act = m.activation == medvision::model::Activation::kSoftmax
                                  ? cal::Activation::kSoftmax
                                  : cal::Activation::kSigmoid;
  std::vector<double> source;
  if (o.source_prior != nullptr) {
    if (o.source_prior_count != labels) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  fn + ": source_prior has " + std::to_string(o.source_prior_count) + " values; '" +
                      m.name + "' has " + std::to_string(labels) + " labels");
    }
    source.assign(o.source_prior, o.source_prior + labels);
  } else {
    source = cal::recorded_source_prior(m.calibration, labels, m.path);
  }
  for (size_t i = 0; i < count * labels; ++i) {
    if (!std::isfinite(logits[i])) {
      throw Error(MV_ERR_INVALID_ARGUMENT, fn + ": image " + std::to_string(i / labels) +
                                               ", label '" + m.labels[i % labels] +
                                               "': the model output is not finite");
    }
  }
  const cal::Matrix z =
      cal::Matrix::from(std::vector<float>(logits, logits + count * labels), count, labels);
  // Always from the calibration map alone: a package shifted before is re-estimated from the
  // calibration set's priors, and its earlier shift replaced.
  const cal::Calibrator calibrator = cal::Calibrator::from_json(m.calibration);
  const cal::Matrix p = calibrator.probabilities(z);
  cal::PriorShiftOptions po;
  po.max_iterations = o.max_iterations;
  po.tolerance = o.tolerance;
  const cal::PriorShiftEstimate e = cal::estimate_prior_shift(p, act, source, po);
  const cal::PriorShift shift(act, e.source_prior, e.target_prior);

  Estimated r;
  r.version = o.version != nullptr ? o.version : "";
  r.prior_shift = e.to_json();
  r.prior_shift["data"] = o.data_description != nullptr ? o.data_description : "";
  r.prior_shift["date"] = cal::today_utc_date();
  r.prior_shift["source_prior_from"] =
      o.source_prior != nullptr ? "given" : "calibration.fitted_on";
  if (m.calibration.contains("prior_shift") && m.calibration["prior_shift"].is_object()) {
    r.prior_shift["replaces"] = m.calibration["prior_shift"].value("target_prior", json());
  }
  r.thresholds = cal::shift_thresholds(m.thresholds, m.labels, shift);
  const cal::Matrix q = shift.apply(p);
  json before = json::array(), after = json::array();
  for (size_t k = 0; k < labels; ++k) {
    double a = 0, b = 0;
    for (size_t i = 0; i < count; ++i) {
      a += p(i, k);
      b += q(i, k);
    }
    before.push_back(a / static_cast<double>(count));
    after.push_back(b / static_cast<double>(count));
  }
  json drift = nullptr, fit = nullptr;
  if (m.calibration.contains("drift") && m.calibration["drift"].is_object()) {
    fit = cal::label_shift_fit(m.calibration["drift"], z, calibrator, shift);
    if (fit.is_object()) {
      for (size_t k = 0; k < fit["labels"].size() && k < labels; ++k)
        fit["labels"][k]["label"] = m.labels[k];
    }
    drift = cal::DriftReference::from_json(m.calibration["drift"]).compare(z).to_json();
    if (drift.contains("labels") && drift["labels"].is_array()) {
      for (size_t k = 0; k < drift["labels"].size() && k < labels; ++k)
        drift["labels"][k]["label"] = m.labels[k];
    }
  }
  r.report = {{"model", m.name},
              {"version", m.version},
              {"labels", m.labels},
              {"prior_shift", r.prior_shift},
              {"thresholds", r.thresholds},
              {"drift", drift},
              {"label_shift_fit", fit},
              {"mean_probability", {{"before", before}, {"after", after}}},
              {"notice", m.notice}};
  return r;
}

json adapt(const mv_model* model, const float* logits, size_t count,
           const mv_prior_shift_options* opts, const char* out_dir, const std::string& fn) {
  if (out_dir == nullptr || *out_dir == '\0') {
    throw Error(MV_ERR_INVALID_ARGUMENT, fn + ": out_dir is NULL or empty");
  }
  if (model != nullptr) cal::require_new_package_dir(out_dir);
  Estimated e = estimate(model, logits, count, opts, fn);
  const auto& m = model->model->manifest();
  cal::PackageSource source;
  source.dir = m.dir;
  source.model_file = m.model_file;
  source.sha256 = m.sha256;
  source.manifest = m.raw;
  source.version = m.version;
  cal::PriorShiftPackage pkg;
  pkg.prior_shift = e.prior_shift;
  pkg.thresholds = e.thresholds;
  pkg.report = e.report;
  pkg.report["from_version"] = m.version;
  pkg.report["version"] = e.version.empty() ? m.version + "+prior" : e.version;
  const cal::PackageWritten w = cal::write_prior_shift_package(source, pkg, e.version, out_dir);
  json out = w.report;
  out["dir"] = w.dir;
  out["name"] = w.manifest.value("name", std::string());
  return out;
}

}  // namespace

extern "C" {

mv_status mv_prior_shift_options_init(mv_prior_shift_options* opts,
                                      size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kPriorShiftOptionsV1,
                                       default_prior_shift_options(),
                                       "mv_prior_shift_options_init");
  MV_CAPI_END
}

mv_status mv_model_estimate_prior(const mv_model* model, const float* logits, size_t count,
                                  const mv_prior_shift_options* opts, char* buf, size_t cap,
                                  size_t* out_needed) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(out_needed != nullptr, "mv_model_estimate_prior: out_needed is NULL");
  const std::string text = estimate(model, logits, count, opts, "mv_model_estimate_prior")
                               .report.dump(-1, ' ', false, json::error_handler_t::replace);
  *out_needed = text.size() + 1;
  if (buf != nullptr && cap >= text.size() + 1) std::memcpy(buf, text.c_str(), text.size() + 1);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_model_adapt_prior(const mv_model* model, const float* logits, size_t count,
                               const mv_prior_shift_options* opts,
                               const char* out_dir) MV_NOEXCEPT {
  MV_CAPI_BEGIN(void) adapt(model, logits, count, opts, out_dir, "mv_model_adapt_prior");
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_model_adapt_prior_report(const mv_model* model, const float* logits, size_t count,
                                      const mv_prior_shift_options* opts, const char* out_dir,
                                      mv_calibration_report** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(out != nullptr, "mv_model_adapt_prior_report: out is NULL");
  auto r = std::make_unique<mv_calibration_report>();
  r->json = adapt(model, logits, count, opts, out_dir, "mv_model_adapt_prior_report")
                .dump(-1, ' ', false, json::error_handler_t::replace);
  *out = r.release();
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
