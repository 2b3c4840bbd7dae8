#include "calibrate/operating_point.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "calibrate/metrics.hpp"
#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;

// Counts at every candidate cut, scanning from the highest cut down.
struct Cut {
  double threshold;
  size_t tp, fp;  // at p >= threshold
};

std::vector<Cut> cuts_descending(const std::vector<int>& y, const std::vector<double>& p) {
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  std::vector<Cut> cuts;
  cuts.push_back({std::nextafter(p[order[0]], std::numeric_limits<double>::infinity()), 0, 0});
  size_t tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    const double t = p[order[i]];
    while (i < order.size() && p[order[i]] == t) (y[order[i++]] ? tp : fp)++;
    cuts.push_back({t, tp, fp});
  }
  return cuts;
}

}  // namespace

Rule rule_from_string(const std::string& name) {
  if (name == "youden") return Rule::kYouden;
  if (name == "sensitivity") return Rule::kTargetSensitivity;
  if (name == "specificity") return Rule::kTargetSpecificity;
  throw Error(MV_ERR_INVALID_ARGUMENT, "thresholds: unknown method '" + name +
                                           "' (want youden, sensitivity or specificity)");
}

const char* to_string(Rule rule) {
  switch (rule) {
    case Rule::kYouden:
      return "youden";
    case Rule::kTargetSensitivity:
      return "sensitivity";
    case Rule::kTargetSpecificity:
      return "specificity";
  }
  return "?";
}

ReferMode refer_mode_from_string(const std::string& name) {
  if (name == "none") return ReferMode::kNone;
  if (name == "fixed") return ReferMode::kFixedWidth;
  if (name == "predictive_value") return ReferMode::kPredictiveValue;
  if (name == "logit") return ReferMode::kLogitWidth;
  throw Error(MV_ERR_INVALID_ARGUMENT, "refer band: unknown mode '" + name +
                                           "' (want logit, fixed, predictive_value or none)");
}

const char* to_string(ReferMode mode) {
  switch (mode) {
    case ReferMode::kNone:
      return "none";
    case ReferMode::kFixedWidth:
      return "fixed";
    case ReferMode::kPredictiveValue:
      return "predictive_value";
    case ReferMode::kLogitWidth:
      return "logit";
  }
  return "?";
}

OperatingPoint choose_operating_point(const std::vector<int>& y, const std::vector<double>& p,
                                      const OperatingPointOptions& options) {
  const Rates all = rates_at(y, p, -std::numeric_limits<double>::infinity());  // validates
  const size_t n_pos = all.tp, n_neg = all.fp;
  if (n_pos == 0 || n_neg == 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "operating point: labels hold a single class; need positives and negatives");
  }
  if (options.rule != Rule::kYouden && !(options.target > 0 && options.target <= 1)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "operating point: target must lie in (0, 1]");
  }
  const std::vector<Cut> cuts = cuts_descending(y, p);
  auto sens = [&](const Cut& c) { return to_double(c.tp) / to_double(n_pos); };
  auto spec = [&](const Cut& c) { return to_double(n_neg - c.fp) / to_double(n_neg); };

  size_t best = 0;
  if (options.rule == Rule::kYouden) {
    double best_j = -2;
    for (size_t k = 0; k < cuts.size(); ++k) {
      const double j = sens(cuts[k]) + spec(cuts[k]) - 1;
      if (j > best_j + 1e-12) {
        best_j = j;
        best = k;
      }
    }
  } else if (options.rule == Rule::kTargetSensitivity) {
    // Sensitivity grows as the cut falls: the first cut (from the top) that reaches the target.
    best = cuts.size() - 1;
    for (size_t k = 0; k < cuts.size(); ++k) {
      if (sens(cuts[k]) >= options.target - 1e-12) {
        best = k;
        break;
      }
    }
  } else {
    // Specificity falls as the cut falls: the last cut (lowest) that still reaches the target.
    best = 0;
    for (size_t k = 0; k < cuts.size(); ++k) {
      if (spec(cuts[k]) >= options.target - 1e-12) best = k;
    }
  }

  OperatingPoint op;
  op.threshold = cuts[best].threshold;
  op.rule = options.rule;
  op.target = options.rule == Rule::kYouden ? 0 : options.target;
  op.sensitivity = sens(cuts[best]);
  op.specificity = spec(cuts[best]);
  const double t = op.threshold;
  switch (options.refer) {
    case ReferMode::kNone:
      break;
    case ReferMode::kFixedWidth:
      if (!(options.half_width >= 0)) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "refer band: half_width must be >= 0");
      }
      op.has_refer_band = true;
      op.refer_lo = std::max(0.0, t - options.half_width);
      op.refer_hi = std::min(1.0, t + options.half_width);
      op.refer_rule = {{"mode", "fixed"}, {"half_width", options.half_width}};
      break;
    case ReferMode::kLogitWidth: {
      if (!(options.logit_half_width >= 0 && std::isfinite(options.logit_half_width))) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "refer band: logit_half_width must be >= 0");
      }
      op.has_refer_band = true;
      // A threshold at the "everything negative" cut may sit at 1; logit() clamps it.
      const double z = logit(std::min(1.0, std::max(0.0, t)));
      op.refer_lo = sigmoid(z - options.logit_half_width);
      op.refer_hi = sigmoid(z + options.logit_half_width);
      op.refer_rule = {{"mode", "logit"}, {"logit_half_width", options.logit_half_width}};
      break;
    }
    case ReferMode::kPredictiveValue: {
      op.has_refer_band = true;
      // lo: the largest cut c <= t such that the images below c (called negative without
      // referral) have NPV >= target; no such cut means everything below t is referred.
      op.refer_lo = cuts.back().threshold;
      for (size_t k = 0; k < cuts.size(); ++k) {  // descending
        if (cuts[k].threshold > t) continue;
        const size_t tn = n_neg - cuts[k].fp, fn = n_pos - cuts[k].tp;
        if (tn + fn > 0 && to_double(tn) / to_double(tn + fn) >= options.target_npv) {
          op.refer_lo = cuts[k].threshold;
          break;
        }
      }
      // hi: the smallest cut c >= t such that the images at or above c have PPV >= target.
      op.refer_hi = cuts.front().threshold;
      for (size_t k = cuts.size(); k-- > 0;) {  // ascending
        if (cuts[k].threshold < t) continue;
        const size_t tp = cuts[k].tp, fp = cuts[k].fp;
        if (tp + fp > 0 && to_double(tp) / to_double(tp + fp) >= options.target_ppv) {
          op.refer_hi = cuts[k].threshold;
          break;
        }
      }
      op.refer_lo = std::min(1.0, std::max(0.0, op.refer_lo));
      op.refer_hi = std::min(1.0, op.refer_hi);
      op.refer_rule = {{"mode", "predictive_value"},
                       {"target_npv", options.target_npv},
                       {"target_ppv", options.target_ppv}};
      break;
    }
  }
  return op;
}

json OperatingPoint::to_json() const {
  json j = {{"threshold", threshold},
            {"method", to_string(rule)},
            {"sensitivity", sensitivity},
            {"specificity", specificity}};
  if (rule != Rule::kYouden) j["target"] = target;
  j["refer_band"] = has_refer_band ? json::array({refer_lo, refer_hi}) : json();
  if (has_refer_band && !refer_rule.is_null()) j["refer_rule"] = refer_rule;
  return j;
}

OperatingPoint OperatingPoint::from_json(const json& j) {
  if (!j.is_object() || !j.contains("threshold") || !j["threshold"].is_number()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "thresholds: each label needs a numeric \"threshold\"");
  }
  OperatingPoint op;
  op.threshold = j["threshold"].get<double>();
  if (!std::isfinite(op.threshold)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "thresholds: threshold must be finite");
  }
  op.rule = rule_from_string(j.value("method", std::string("youden")));
  op.target = j.value("target", 0.0);
  op.sensitivity = j.value("sensitivity", std::numeric_limits<double>::quiet_NaN());
  op.specificity = j.value("specificity", std::numeric_limits<double>::quiet_NaN());
  if (j.contains("refer_band") && !j["refer_band"].is_null()) {
    const json& b = j["refer_band"];
    if (!b.is_array() || b.size() != 2 || !b[0].is_number() || !b[1].is_number() ||
        b[0].get<double>() > b[1].get<double>()) {
      throw Error(MV_ERR_INVALID_ARGUMENT, "thresholds: refer_band must be [lo, hi] with lo <= hi");
    }
    op.has_refer_band = true;
    op.refer_lo = b[0].get<double>();
    op.refer_hi = b[1].get<double>();
  }
  if (j.contains("refer_rule") && !j["refer_rule"].is_null()) {
    const json& r = j["refer_rule"];
    if (!r.is_object() || !r.contains("mode") || !r["mode"].is_string()) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "thresholds: refer_rule must be an object with a \"mode\" string");
    }
    op.refer_rule = r;
  }
  return op;
}

json thresholds_to_json(const std::vector<std::string>& labels,
                        const std::vector<OperatingPoint>& points) {
  if (labels.size() != points.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "thresholds: one operating point per label");
  }
  json j = json::object();
  for (size_t k = 0; k < labels.size(); ++k) j[labels[k]] = points[k].to_json();
  return j;
}

ScoreCalibration::ScoreCalibration(const json& calibration, const json& thresholds,
                                   const std::vector<std::string>& labels, Activation activation)
    : activation_(activation), num_labels_(labels.size()) {
  if (labels.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "calibration: no labels");
  if (!calibration.is_null()) {
    calibrator_ = Calibrator::from_json(calibration);
    has_calibrator_ = true;
    if (calibrator_.num_labels() != num_labels_ || calibrator_.activation() != activation) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "calibration: fitted for " + std::to_string(calibrator_.num_labels()) + " " +
                      to_string(calibrator_.activation()) + " labels, the model has " +
                      std::to_string(num_labels_) + " " + to_string(activation));
    }
    if (calibration.contains("conformal") && !calibration["conformal"].is_null()) {
      conformal_ = Conformal::from_json(calibration["conformal"], activation);
      if (activation == Activation::kSigmoid && conformal_->qhat().size() != num_labels_) {
        throw Error(MV_ERR_INVALID_ARGUMENT,
                    "calibration.conformal: " + std::to_string(conformal_->qhat().size()) +
                        " qhat values for " + std::to_string(num_labels_) + " labels");
      }
    }
  }
  if (calibration.is_object() && calibration.contains("drift") && !calibration["drift"].is_null()) {
    drift_ = DriftReference::from_json(calibration["drift"]);
    if (drift_->num_labels() != num_labels_) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "calibration.drift: " + std::to_string(drift_->num_labels()) +
                      " labels, the model has " + std::to_string(num_labels_));
    }
  }
  if (has_calibrator_ && calibration.contains("prior_shift") &&
      !calibration["prior_shift"].is_null()) {
    prior_shift_ = PriorShift::from_json(calibration["prior_shift"], activation, num_labels_);
  }
  has_point_.assign(num_labels_, false);
  points_.resize(num_labels_);
  decide_on_source_.assign(num_labels_, false);
  source_points_.resize(num_labels_);
  if (thresholds.is_null()) return;
  if (!thresholds.is_object()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "thresholds: must be an object keyed by label");
  }
  for (auto it = thresholds.begin(); it != thresholds.end(); ++it) {
    const auto pos = std::find(labels.begin(), labels.end(), it.key());
    if (pos == labels.end()) {
      throw Error(MV_ERR_INVALID_ARGUMENT, "thresholds: unknown label '" + it.key() + "'");
    }
    const size_t k = static_cast<size_t>(pos - labels.begin());
    points_[k] = OperatingPoint::from_json(it.value());
    has_point_[k] = true;
    const json& rec = it.value().value("prior_shift", json());
    if (prior_shift_ && rec.is_object() && rec.contains("source_threshold")) {
      json src = it.value();
      src["threshold"] = rec["source_threshold"];
      src["refer_band"] = rec.value("source_refer_band", json());
      source_points_[k] = OperatingPoint::from_json(src);
      decide_on_source_[k] = true;
    }
  }
}

AppliedScores ScoreCalibration::apply(const float* logits, size_t count) const {
  if (logits == nullptr || count != num_labels_) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibration: expected " + std::to_string(num_labels_) +
                                             " logits, got " + std::to_string(count));
  }
  const std::vector<double> z(logits, logits + count);
  const Matrix row = Matrix::from(z, 1, count);
  // p_source: calibrated at the calibration set's priors; p: after the prior shift, if any.
  const std::vector<double> p_source =
      has_calibrator_ ? calibrator_.probabilities(row).values : activate(row, activation_).values;
  const std::vector<double> p = prior_shift_ ? prior_shift_->apply(p_source) : p_source;
  AppliedScores out;
  out.calibrated.assign(count, std::numeric_limits<float>::quiet_NaN());
  out.decision.assign(count, -1);
  out.refer.assign(count, false);
  out.conformal.assign(count, -1);
  if (drift_) out.ood = drift_->ood(logits, count);
  if (conformal_) {
    // The conformal quantile was fitted on source-prior probabilities; its sets are kept on them.
    Matrix pm = Matrix::from(p_source, 1, count);
    // Calibrated probabilities are in [0, 1] up to rounding; the set rule needs them inside.
    for (double& v : pm.values) v = std::min(1.0, std::max(0.0, v));
    if (activation_ == Activation::kSigmoid) {
      const std::vector<uint8_t> sets = conformal_->predict_label_sets(pm)[0];
      for (size_t k = 0; k < count; ++k) out.conformal[k] = sets[k];
    } else {
      std::fill(out.conformal.begin(), out.conformal.end(), 0);
      const std::vector<int> set = conformal_->predict_sets(pm)[0];  // a copy: [0] of a temporary
      for (int k : set) out.conformal[static_cast<size_t>(k)] = 1;
    }
  }
  for (size_t k = 0; k < count; ++k) {
    if (has_calibrator_) out.calibrated[k] = static_cast<float>(p[k]);
    if (!has_point_[k]) continue;
    const OperatingPoint& op = decide_on_source_[k] ? source_points_[k] : points_[k];
    const double v = decide_on_source_[k] ? p_source[k] : p[k];
    out.decision[k] = v >= op.threshold ? 1 : 0;
    out.refer[k] = op.has_refer_band && v >= op.refer_lo && v <= op.refer_hi;
  }
  return out;
}

AppliedScores apply(const json& calibration, const json& thresholds,
                    const std::vector<std::string>& labels, Activation activation,
                    const std::vector<float>& logits) {
  return ScoreCalibration(calibration, thresholds, labels, activation).apply(logits);
}

}  // namespace medvision::calibrate
