#pragma once
// medvision::calibrate evaluation of one or more models on a labelled test set (`medvision
// evaluate`, mv_evaluate()): per label AUROC with a bootstrap CI, decisions at the package's
// operating point (and at a given threshold or sensitivity), calibration metrics raw and
// calibrated, refer-band and conformal coverage, curves for plotting, and for two or more models a
// paired comparison (DeLong's test for AUROC, a paired bootstrap for the rest). Definitions and the
// JSON layout: docs/evaluate.md.

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/types.hpp"

namespace medvision::calibrate {

// DeLong, DeLong & Clarke-Pearson (1988) for two correlated AUROCs on the same images, computed
// with the structural components of Sun & Xu (2014) (mid-ranks, so ties count one half).
// Two-sided p-value from the normal distribution of z = (auc_a - auc_b) / se.
struct DeLongResult {
  double auc_a = 0, auc_b = 0;
  double var_a = 0, var_b = 0, covariance = 0;
  double difference = 0;  // auc_a - auc_b
  double se = 0;          // sqrt(var_a + var_b - 2 cov)
  double z = 0;           // NaN when se == 0 and the AUROCs are equal
  double p_value = 1;
};
// Needs both classes; throws MV_ERR_INVALID_ARGUMENT on empty or mismatched inputs.
DeLongResult delong_test(const std::vector<int>& y, const std::vector<double>& a,
                         const std::vector<double>& b);
// DeLong variance of a single AUROC.
double delong_variance(const std::vector<int>& y, const std::vector<double>& score);

// Counts and rates at a threshold (positive when p >= threshold). Rates with a zero denominator
// are NaN (JSON null).
struct Confusion {
  double threshold = 0.5;
  size_t tp = 0, fp = 0, tn = 0, fn = 0;
  double sensitivity = 0, specificity = 0, ppv = 0, npv = 0, accuracy = 0;
};
Confusion confusion_at(const std::vector<int>& y, const std::vector<double>& p, double threshold);

// The highest threshold t among {unique p} whose sensitivity (p >= t) is >= target, target in
// (0, 1]. Needs a positive; throws MV_ERR_INVALID_ARGUMENT otherwise.
double threshold_for_sensitivity(const std::vector<int>& y, const std::vector<double>& p,
                                 double target);

// sklearn.metrics.roc_curve(drop_intermediate=False): fpr, tpr per distinct threshold, descending,
// starting at (0, 0).
struct Curve {
  std::vector<double> x, y, thresholds;
};
Curve roc_curve(const std::vector<int>& y, const std::vector<double>& p);
// sklearn.metrics.precision_recall_curve (1.1 and later): x = recall, y = precision, thresholds
// ascending; the last point is (recall 0, precision 1) without a threshold.
Curve precision_recall_curve(const std::vector<int>& y, const std::vector<double>& p);
// sklearn.metrics.average_precision_score: sum (R_n - R_{n-1}) P_n.
double average_precision(const std::vector<int>& y, const std::vector<double>& p);

// One model's raw outputs on the test set and what its package says about them.
struct ModelScores {
  std::string name;
  std::string version;
  Matrix logits;               // [N, L]
  nlohmann::json calibration;  // manifest "calibration" (null when none)
  nlohmann::json thresholds;   // manifest "thresholds" (null when none)
};

struct EvaluateOptions {
  double threshold = std::numeric_limits<double>::quiet_NaN();    // also decide at this threshold
  double sensitivity = std::numeric_limits<double>::quiet_NaN();  // ... and at this sensitivity
  size_t bins = 15;                                               // ECE bins
  size_t bootstrap = 1000;        // resamples of the CIs and of the paired bootstrap
  double level = 0.95;            // CI level
  uint64_t seed = 20240601;       // std::mt19937_64 seed of every bootstrap
  size_t max_curve_points = 400;  // ROC / PR curves thinned to about this many points
};

// Evaluates every model on the same labels (types.hpp layout; all models must share the label
// names and activation) and returns the evaluation JSON (docs/evaluate.md). Throws
// MV_ERR_INVALID_ARGUMENT on bad input.
nlohmann::json evaluate_models(const std::vector<ModelScores>& models,
                               const std::vector<int>& labels, Activation activation,
                               const std::vector<std::string>& names,
                               const EvaluateOptions& options = {});

}  // namespace medvision::calibrate
