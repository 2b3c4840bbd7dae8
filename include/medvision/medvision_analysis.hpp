/**
 * @file medvision_analysis.hpp
 * @ingroup medvision_cpp
 * @brief The C++ wrapper's calibration, drift check and evaluation, and the names of option
 * values (to_string / parse over mv_<enum>_name / mv_<enum>_parse). Included by medvision.hpp;
 * header-only, over the C ABI alone.
 */
#ifndef MEDVISION_ANALYSIS_HPP
#define MEDVISION_ANALYSIS_HPP

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "medvision/medvision.h"
#include "medvision/medvision.hpp"

namespace medvision {

/**
 * Options for calibrate(): the C struct filled by mv_calibrate_options_init() (the library's
 * defaults, never restated here) with a setter per field, as ONNX Runtime's C++ wrapper does.
 * Setters return *this, so they chain: `CalibrateOptions().set_method(MV_CALIBRATION_PLATT)`.
 * The strings are copied and owned here.
 */
class CalibrateOptions {
 public:
  CalibrateOptions() { check(mv_calibrate_options_default(&c_)); }
  CalibrateOptions& set_method(mv_calibration_method v) {
    c_.method = v;
    return *this;
  }
  CalibrateOptions& set_rule(mv_operating_rule v) {
    c_.rule = v;
    return *this;
  }
  /** Sensitivity or specificity target of the operating rule, in (0, 1). */
  CalibrateOptions& set_target(double v) {
    c_.target = v;
    return *this;
  }
  CalibrateOptions& set_refer_mode(mv_refer_mode v) {
    c_.refer_mode = v;
    return *this;
  }
  /** MV_REFER_FIXED half-width; 0 disables the band in every mode. */
  CalibrateOptions& set_refer_half_width(double v) {
    c_.refer_half_width = v;
    return *this;
  }
  CalibrateOptions& set_refer_logit_half_width(double v) {
    c_.refer_logit_half_width = v;
    return *this;
  }
  CalibrateOptions& set_refer_npv(double v) {
    c_.refer_npv = v;
    return *this;
  }
  CalibrateOptions& set_refer_ppv(double v) {
    c_.refer_ppv = v;
    return *this;
  }
  CalibrateOptions& set_conformal(bool v) {
    c_.conformal = v ? 1 : 0;
    return *this;
  }
  /** Conformal miscoverage in (0, 1). */
  CalibrateOptions& set_alpha(double v) {
    c_.alpha = v;
    return *this;
  }
  /** APS needs a softmax model. */
  CalibrateOptions& set_conformal_score(mv_conformal_score v) {
    c_.conformal_score = v;
    return *this;
  }
  /** Provenance recorded in the new manifest ("" for none). */
  CalibrateOptions& set_data_description(std::string v) {
    description_ = std::move(v);
    return *this;
  }
  /** Version of the new package ("" for "<old>+cal"). */
  CalibrateOptions& set_version(std::string v) {
    version_ = std::move(v);
    return *this;
  }

  mv_calibration_method method() const noexcept {
    return static_cast<mv_calibration_method>(c_.method);
  }
  mv_operating_rule rule() const noexcept { return static_cast<mv_operating_rule>(c_.rule); }
  double target() const noexcept { return c_.target; }
  mv_refer_mode refer_mode() const noexcept { return static_cast<mv_refer_mode>(c_.refer_mode); }
  double refer_half_width() const noexcept { return c_.refer_half_width; }
  double refer_logit_half_width() const noexcept { return c_.refer_logit_half_width; }
  double refer_npv() const noexcept { return c_.refer_npv; }
  double refer_ppv() const noexcept { return c_.refer_ppv; }
  bool conformal() const noexcept { return c_.conformal != 0; }
  double alpha() const noexcept { return c_.alpha; }
  mv_conformal_score conformal_score() const noexcept {
    return static_cast<mv_conformal_score>(c_.conformal_score);
  }
  const std::string& data_description() const noexcept { return description_; }
  const std::string& version() const noexcept { return version_; }

  /** The C struct, its strings pointing into this object (valid while it lives unchanged). */
  const mv_calibrate_options* c() const noexcept {
    c_.data_description = description_.empty() ? nullptr : description_.c_str();
    c_.version = version_.empty() ? nullptr : version_.c_str();
    return &c_;
  }

 private:
  mutable mv_calibrate_options c_;
  std::string description_;
  std::string version_;
};

/**
 * Fits calibration and operating points and writes a new package version to `out_dir` (see
 * mv_model_calibrate_report()). `logits` holds count x label_count raw outputs; `labels` count x
 * label_count values in {0, 1} (sigmoid models) or count class indices (softmax models). Returns
 * the calibration report as JSON text (mv_calibration_report_json()).
 */
inline std::string calibrate(const Model& model, const float* logits, const int32_t* labels,
                             size_t count, const std::string& out_dir,
                             const CalibrateOptions& options = {}) {
  mv_calibration_report* r = nullptr;
  check(mv_model_calibrate_report(model.get(), logits, labels, count, options.c(), out_dir.c_str(),
                                  &r));
  std::string text = mv_calibration_report_json(r);
  mv_calibration_report_free(r);
  return text;
}

/**
 * Compares count x label_count raw outputs with the score distribution recorded at calibration
 * time (see mv_model_drift_check()); returns the report as JSON text.
 */
inline std::string drift_check(const Model& model, const float* logits, size_t count) {
  size_t needed = 0;
  check(mv_model_drift_check(model.get(), logits, count, nullptr, 0, &needed));
  std::string buf(needed, '\0');
  check(mv_model_drift_check(model.get(), logits, count, buf.data(), buf.size(), &needed));
  buf.resize(needed > 0 ? needed - 1 : 0);
  return buf;
}

/**
 * Options of evaluate() and SegmentationEvaluator: the C struct filled by
 * mv_evaluate_options_init() with a chainable setter and a getter per field, as CalibrateOptions.
 */
class EvaluateOptions {
 public:
  EvaluateOptions() { check(mv_evaluate_options_default(&c_)); }
  /** Resamples of the AUROC CI and of the paired bootstrap. */
  EvaluateOptions& set_bootstrap(uint32_t v) {
    c_.bootstrap = v;
    return *this;
  }
  /** ECE bins. */
  EvaluateOptions& set_bins(uint32_t v) {
    c_.bins = v;
    return *this;
  }
  /** std::mt19937_64 seed of every bootstrap. */
  EvaluateOptions& set_seed(uint64_t v) {
    c_.seed = v;
    return *this;
  }
  /** CI level in (0, 1). */
  EvaluateOptions& set_level(double v) {
    c_.level = v;
    return *this;
  }
  /** Also decide at this threshold in [0, 1]; negative: only the package's operating point. */
  EvaluateOptions& set_threshold(double v) {
    c_.threshold = v;
    return *this;
  }
  /** Also decide at the highest threshold reaching this sensitivity; 0: not. */
  EvaluateOptions& set_sensitivity(double v) {
    c_.sensitivity = v;
    return *this;
  }

  uint32_t bootstrap() const noexcept { return c_.bootstrap; }
  uint32_t bins() const noexcept { return c_.bins; }
  uint64_t seed() const noexcept { return c_.seed; }
  double level() const noexcept { return c_.level; }
  double threshold() const noexcept { return c_.threshold; }
  double sensitivity() const noexcept { return c_.sensitivity; }

  /** The C struct. */
  const mv_evaluate_options* c() const noexcept { return &c_; }

 private:
  mv_evaluate_options c_;
};

/**
 * Evaluates models (same labels) on one labelled test set, given each model's count x label_count
 * raw outputs (see mv_evaluate()); returns the evaluation as JSON text.
 */
inline std::string evaluate(const std::vector<const Model*>& models,
                            const std::vector<const float*>& logits, const int32_t* labels,
                            size_t count, const EvaluateOptions& options = {}) {
  if (models.size() != logits.size()) {
    throw Exception(MV_ERR_INVALID_ARGUMENT, "evaluate: one logits array per model");
  }
  std::vector<const mv_model*> handles;
  for (const Model* m : models) handles.push_back(m != nullptr ? m->get() : nullptr);
  mv_evaluation* ev = nullptr;
  check(
      mv_evaluate(handles.data(), logits.data(), handles.size(), labels, count, options.c(), &ev));
  std::string text = mv_evaluation_json(ev);
  mv_evaluation_free(ev);
  return text;
}

/**
 * Segmentation evaluation, one case at a time (see mv_segmentation_evaluator_create()): add the
 * reference label map and each model's Result::mask() per image, then finish() for the JSON.
 */
class SegmentationEvaluator {
 public:
  SegmentationEvaluator(const std::vector<const Model*>& models,
                        const EvaluateOptions& options = {}) {
    std::vector<const mv_model*> handles;
    for (const Model* m : models) handles.push_back(m != nullptr ? m->get() : nullptr);
    mv_segmentation_evaluator* ev = nullptr;
    check(mv_segmentation_evaluator_create(handles.data(), handles.size(), options.c(), &ev));
    handle_.reset(ev);
    count_ = models.size();
  }
  mv_segmentation_evaluator* get() const noexcept { return handle_.get(); }

  void add(const std::string& case_name, const Image& reference,
           const std::vector<const Image*>& masks) {
    if (masks.size() != count_) {
      throw Exception(MV_ERR_INVALID_ARGUMENT, "SegmentationEvaluator::add: one mask per model");
    }
    std::vector<const mv_image*> handles;
    for (const Image* m : masks) handles.push_back(m != nullptr ? m->get() : nullptr);
    check(mv_segmentation_evaluator_add(get(), case_name.c_str(), reference.get(), handles.data()));
  }

  /** The evaluation as JSON text. */
  std::string finish() const {
    mv_evaluation* ev = nullptr;
    check(mv_segmentation_evaluator_finish(get(), &ev));
    std::string text = mv_evaluation_json(ev);
    mv_evaluation_free(ev);
    return text;
  }

 private:
  struct Free {
    void operator()(mv_segmentation_evaluator* p) const noexcept {
      mv_segmentation_evaluator_free(p);
    }
  };
  std::unique_ptr<mv_segmentation_evaluator, Free> handle_;
  size_t count_ = 0;
};

/** The library's name of an option value (mv_<enum>_name()); "unknown" out of range. */
inline const char* to_string(mv_calibration_method v) {
  const char* n = mv_calibration_method_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_operating_rule v) {
  const char* n = mv_operating_rule_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_refer_mode v) {
  const char* n = mv_refer_mode_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_conformal_score v) {
  const char* n = mv_conformal_score_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_cam_method v) {
  const char* n = mv_cam_method_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_precision v) {
  const char* n = mv_precision_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_task v) {
  const char* n = mv_task_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_activation v) {
  const char* n = mv_activation_name(v);
  return n ? n : "unknown";
}
inline const char* to_string(mv_label_overlap v) {
  const char* n = mv_label_overlap_name(v);
  return n ? n : "unknown";
}

/** Reads an option value by the library's name (mv_<enum>_parse()), e.g.
 *  `parse<mv_refer_mode>("fixed")`; throws Exception (MV_ERR_INVALID_ARGUMENT, the message lists
 *  the names) for any other. */
template <typename E>
E parse(const std::string& name);
#define MV_HPP_PARSE_(type)                          \
  template <>                                        \
  inline type parse<type>(const std::string& name) { \
    type v{};                                        \
    check(type##_parse(name.c_str(), &v));           \
    return v;                                        \
  }
MV_HPP_PARSE_(mv_calibration_method)
MV_HPP_PARSE_(mv_operating_rule)
MV_HPP_PARSE_(mv_refer_mode)
MV_HPP_PARSE_(mv_conformal_score)
MV_HPP_PARSE_(mv_cam_method)
MV_HPP_PARSE_(mv_precision)
MV_HPP_PARSE_(mv_task)
MV_HPP_PARSE_(mv_activation)
MV_HPP_PARSE_(mv_label_overlap)
#undef MV_HPP_PARSE_

/** Names for enum values, for printing. */
inline const char* to_string(mv_image_format f) {
  switch (f) {
    case MV_FORMAT_DICOM:
      return "DICOM";
    case MV_FORMAT_NIFTI:
      return "NIfTI";
    case MV_FORMAT_PNG:
      return "PNG";
    case MV_FORMAT_JPEG:
      return "JPEG";
    case MV_FORMAT_TIFF:
      return "TIFF";
    case MV_FORMAT_BMP:
      return "BMP";
    case MV_FORMAT_PIXELS:
      return "pixels";
    case MV_FORMAT_UNKNOWN:
      break;
  }
  return "unknown";
}

inline const char* to_string(mv_photometric p) {
  switch (p) {
    case MV_PHOTOMETRIC_MONOCHROME1:
      return "MONOCHROME1";
    case MV_PHOTOMETRIC_MONOCHROME2:
      return "MONOCHROME2";
    case MV_PHOTOMETRIC_RGB:
      return "RGB";
    case MV_PHOTOMETRIC_UNKNOWN:
      break;
  }
  return "unknown";
}

inline const char* to_string(mv_dtype d) {
  switch (d) {
    case MV_DTYPE_FLOAT32:
      return "float32";
    case MV_DTYPE_UINT8:
      return "uint8";
    case MV_DTYPE_INT8:
      return "int8";
    case MV_DTYPE_UINT16:
      return "uint16";
    case MV_DTYPE_INT16:
      return "int16";
    case MV_DTYPE_UINT32:
      return "uint32";
    case MV_DTYPE_INT32:
      return "int32";
    case MV_DTYPE_FLOAT64:
      return "float64";
  }
  return "unknown";
}

/**
 * Options for estimate_prior() and adapt_prior(): the C struct filled by
 * mv_prior_shift_options_init() with a chainable setter and a getter per field, as
 * CalibrateOptions. The source prior and the strings are copied and owned here.
 */
class PriorShiftOptions {
 public:
  PriorShiftOptions() { check(mv_prior_shift_options_default(&c_)); }
  PriorShiftOptions& set_max_iterations(int32_t v) {
    c_.max_iterations = v;
    return *this;
  }
  PriorShiftOptions& set_tolerance(double v) {
    c_.tolerance = v;
    return *this;
  }
  /** The calibration set's priors, one per label (empty: the manifest's fitted_on). */
  PriorShiftOptions& set_source_prior(std::vector<double> v) {
    source_prior_ = std::move(v);
    return *this;
  }
  PriorShiftOptions& set_data_description(std::string v) {
    description_ = std::move(v);
    return *this;
  }
  /** Version of the new package ("" for "<old>+prior"). */
  PriorShiftOptions& set_version(std::string v) {
    version_ = std::move(v);
    return *this;
  }
  int32_t max_iterations() const noexcept { return c_.max_iterations; }
  double tolerance() const noexcept { return c_.tolerance; }
  const std::vector<double>& source_prior() const noexcept { return source_prior_; }
  const std::string& data_description() const noexcept { return description_; }
  const std::string& version() const noexcept { return version_; }

  /** The C struct, its pointers into this object (valid while it lives unchanged). */
  const mv_prior_shift_options* c() const noexcept {
    c_.source_prior = source_prior_.empty() ? nullptr : source_prior_.data();
    c_.source_prior_count = source_prior_.size();
    c_.data_description = description_.empty() ? nullptr : description_.c_str();
    c_.version = version_.empty() ? nullptr : version_.c_str();
    return &c_;
  }

 private:
  mutable mv_prior_shift_options c_;
  std::vector<double> source_prior_;
  std::string description_;
  std::string version_;
};

/**
 * Estimates the label priors at a new site from count x label_count raw outputs of unlabelled
 * images there (see mv_model_estimate_prior()); returns the report as JSON text. Writes nothing.
 */
inline std::string estimate_prior(const Model& model, const float* logits, size_t count,
                                  const PriorShiftOptions& options = {}) {
  size_t needed = 0;
  check(mv_model_estimate_prior(model.get(), logits, count, options.c(), nullptr, 0, &needed));
  std::string buf(needed, '\0');
  check(mv_model_estimate_prior(model.get(), logits, count, options.c(), buf.data(), buf.size(),
                                &needed));
  buf.resize(needed > 0 ? needed - 1 : 0);
  return buf;
}

/**
 * estimate_prior(), then writes a package version with the corrected probabilities to `out_dir`
 * (see mv_model_adapt_prior_report()); returns the report as JSON text.
 */
inline std::string adapt_prior(const Model& model, const float* logits, size_t count,
                               const std::string& out_dir, const PriorShiftOptions& options = {}) {
  mv_calibration_report* r = nullptr;
  check(mv_model_adapt_prior_report(model.get(), logits, count, options.c(), out_dir.c_str(), &r));
  std::string text = mv_calibration_report_json(r);
  mv_calibration_report_free(r);
  return text;
}

}  // namespace medvision

#endif /* MEDVISION_ANALYSIS_HPP */
