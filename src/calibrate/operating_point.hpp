#pragma once
// Operating points per label on calibrated probabilities, the refer band around them, the
// manifest "thresholds" object, and applying a manifest's calibration + thresholds to one image.
// Decision rule: positive when p >= threshold. Refer: lo <= p <= hi. See docs/calibration.md.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <optional>

#include "calibrate/calibrator.hpp"
#include "calibrate/conformal.hpp"
#include "calibrate/drift.hpp"
#include "calibrate/prior_shift.hpp"
#include "calibrate/types.hpp"

namespace medvision::calibrate {

enum class Rule {
  kYouden,             // maximise sensitivity + specificity - 1 (highest threshold on ties)
  kTargetSensitivity,  // highest threshold with sensitivity >= target
  kTargetSpecificity,  // lowest threshold with specificity >= target
};
Rule rule_from_string(const std::string& name);  // "youden" | "sensitivity" | "specificity"
const char* to_string(Rule rule);

enum class ReferMode {
  kNone,             // no refer band
  kFixedWidth,       // [t - half_width, t + half_width] clipped to [0, 1]
  kPredictiveValue,  // lo: largest cut c <= t whose "p < c" group has NPV >= target_npv;
                     // hi: smallest cut c >= t whose "p >= c" group has PPV >= target_ppv
                     // (the default)
  kLogitWidth,       // [sigmoid(logit(t) - w), sigmoid(logit(t) + w)], w = logit_half_width:
                     // the odds within a factor e^w of the threshold's odds
};
ReferMode refer_mode_from_string(
    const std::string& name);  // none | fixed | predictive_value | logit
const char* to_string(ReferMode mode);

struct OperatingPointOptions {
  Rule rule = Rule::kYouden;
  double target = 0.9;  // the sensitivity or specificity to reach
  // Predictive values, not a width: on cxr-findings' held-out half a fixed +-0.1 referred 96% of
  // (image, label) pairs (thresholds 0.01-0.15), the predictive-value band 47% while holding 93%
  // of the operating point's errors (docs/calibration.md, scripts/refer_band_study.py).
  ReferMode refer = ReferMode::kPredictiveValue;
  double logit_half_width = 0.4;
  double half_width = 0.1;
  double target_npv = 0.95;
  double target_ppv = 0.9;
};

struct OperatingPoint {
  double threshold = 0.5;
  Rule rule = Rule::kYouden;
  double target = 0;  // for the target rules
  double sensitivity = 0;
  double specificity = 0;
  bool has_refer_band = false;
  double refer_lo = 0;
  double refer_hi = 0;
  // The rule that made the refer band (manifest "refer_rule"): {"mode": "predictive_value",
  // "target_npv", "target_ppv"} | {"mode": "fixed", "half_width"} | {"mode": "logit",
  // "logit_half_width"}, plus an optional "description"; null when the manifest does not say.
  nlohmann::json refer_rule;

  nlohmann::json to_json() const;
  static OperatingPoint from_json(const nlohmann::json& j);
};

// Chooses the operating point of one label over the candidate thresholds {unique p} and
// nextafter(max p, +inf) (the "all negative" cut). Needs both classes; throws
// MV_ERR_INVALID_ARGUMENT otherwise and on a target outside (0, 1].
OperatingPoint choose_operating_point(const std::vector<int>& y, const std::vector<double>& p,
                                      const OperatingPointOptions& options = {});

// {"<label>": OperatingPoint::to_json(), ...}; labels and points pair up by index.
nlohmann::json thresholds_to_json(const std::vector<std::string>& labels,
                                  const std::vector<OperatingPoint>& points);

// What the model module copies into LabelScore (calibrated, decision, refer, conformal), per
// label.
struct AppliedScores {
  std::vector<float> calibrated;  // NaN where the manifest has no calibration
  std::vector<int> decision;      // 1 / 0 at the label's threshold; -1 where none is set
  std::vector<bool> refer;        // calibrated probability inside the label's refer band
  // Conformal prediction set, -1 everywhere when the calibration has no "conformal" object.
  // sigmoid: LabelSet bits per label (1 = negative in the set, 2 = positive in the set);
  // softmax: 1 when the class is in the image's set, else 0.
  std::vector<int> conformal;
  // How far the logits lie from the calibration-time distribution (calibration "drift"); score
  // NaN when the package has no drift reference.
  OodScore ood;
};

// A manifest's "calibration" and "thresholds" objects parsed once, applied per image.
class ScoreCalibration {
 public:
  // Either object may be null. Thresholds are keyed by label name; labels without an entry get
  // no decision. Without calibration, thresholds apply to the activation's probability.
  // Throws MV_ERR_INVALID_ARGUMENT on malformed objects, unknown labels or a label count that
  // does not match the calibration.
  ScoreCalibration(const nlohmann::json& calibration, const nlohmann::json& thresholds,
                   const std::vector<std::string>& labels, Activation activation);

  AppliedScores apply(const float* logits, size_t count) const;
  AppliedScores apply(const std::vector<float>& logits) const {
    return apply(logits.data(), logits.size());
  }
  bool calibrated() const { return has_calibrator_; }
  // The calibration's "conformal" object, parsed (absent when it has none).
  const std::optional<Conformal>& conformal() const { return conformal_; }

 private:
  Activation activation_;
  size_t num_labels_;
  bool has_calibrator_ = false;
  Calibrator calibrator_;
  std::optional<Conformal> conformal_;
  std::optional<DriftReference> drift_;
  // The calibration's "prior_shift" (applied after the calibration map). Labels whose threshold
  // entry records the source threshold are decided on the source-prior probability against it:
  // exactly the decisions of the package before the shift (docs/calibration.md).
  std::optional<PriorShift> prior_shift_;
  std::vector<bool> has_point_;
  std::vector<OperatingPoint> points_;
  std::vector<bool> decide_on_source_;
  std::vector<OperatingPoint> source_points_;
};

// One-shot form of ScoreCalibration for a single image's logits.
AppliedScores apply(const nlohmann::json& calibration, const nlohmann::json& thresholds,
                    const std::vector<std::string>& labels, Activation activation,
                    const std::vector<float>& logits);

}  // namespace medvision::calibrate
