#pragma once
// medvision::calibrate metrics on binary outcomes y[i] in {0, 1} and probabilities p[i] in [0, 1]
// (one label of a sigmoid model, one class of a softmax model one-vs-rest, or the top-label
// confidence of a softmax model, see top_label). Exact definitions: docs/calibration.md. Every
// function throws medvision::Error(MV_ERR_INVALID_ARGUMENT) on empty or mismatched inputs,
// labels outside {0, 1}, or probabilities outside [0, 1].

#include <cstdint>
#include <vector>

#include "calibrate/types.hpp"
#include "common/percentile.hpp"

namespace medvision::calibrate {

// numpy.percentile(v, q) of sorted, non-empty v: common/percentile.hpp.
using medvision::percentile_sorted;

// Mean squared difference (p - y)^2; equals sklearn.metrics.brier_score_loss.
double brier_score(const std::vector<int>& y, const std::vector<double>& p);

// Mean negative log-likelihood; equals sklearn.metrics.log_loss (1.2, eps="auto" on float64):
// p clipped to [eps, 1 - eps] with eps = DBL_EPSILON, rows renormalised.
double log_loss(const std::vector<int>& y, const std::vector<double>& p);
// Multi-class log loss of class probabilities [N, K] against class indices y[N].
double log_loss(const std::vector<int>& y, const Matrix& probs);

// Area under the ROC curve (Mann-Whitney U with mid-ranks for ties, which equals
// sklearn.metrics.roc_auc_score's trapezoidal rule). Needs both classes present.
double roc_auc(const std::vector<int>& y, const std::vector<double>& score);

struct Interval {
  double estimate = 0;  // the statistic on the full sample
  double lo = 0;        // percentile bootstrap bounds
  double hi = 0;
  size_t resamples = 0;  // resamples used (those holding a single class are skipped)
};

// Percentile bootstrap CI of the AUROC: `resamples` draws of N with replacement (std::mt19937_64
// seeded with `seed`), bounds at (1 -+ level) / 2 with numpy's linear percentile interpolation.
Interval roc_auc_ci(const std::vector<int>& y, const std::vector<double>& score,
                    size_t resamples = 1000, double level = 0.95, uint64_t seed = 20240601);

enum class Binning {
  kEqualWidth,  // bin b holds b/B <= p < (b+1)/B, the last bin also p == 1
  kEqualMass,   // sorted by p, split into B runs of sizes as numpy.array_split
};

struct Bin {
  double lo = 0, hi = 0;  // bin edges (equal-mass: smallest and largest p inside)
  size_t count = 0;
  double confidence = 0;  // mean p in the bin
  double accuracy = 0;    // mean y in the bin
};

struct CalibrationError {
  double ece = 0;  // sum_b n_b / N * |accuracy_b - confidence_b|
  double mce = 0;  // max over non-empty bins of |accuracy_b - confidence_b|
  std::vector<Bin> bins;
};

CalibrationError calibration_error(const std::vector<int>& y, const std::vector<double>& p,
                                   size_t bins = 15, Binning binning = Binning::kEqualWidth);
inline double ece(const std::vector<int>& y, const std::vector<double>& p, size_t bins = 15) {
  return calibration_error(y, p, bins, Binning::kEqualWidth).ece;
}
inline double adaptive_ece(const std::vector<int>& y, const std::vector<double>& p,
                           size_t bins = 15) {
  return calibration_error(y, p, bins, Binning::kEqualMass).ece;
}
inline double mce(const std::vector<int>& y, const std::vector<double>& p, size_t bins = 15) {
  return calibration_error(y, p, bins, Binning::kEqualWidth).mce;
}

// Top-label view of a softmax model: confidence = max_j p_ij, correct = (argmax == y_i), the
// first maximum winning ties (numpy.argmax).
struct TopLabel {
  std::vector<int> correct;
  std::vector<double> confidence;
};
TopLabel top_label(const Matrix& probs, const std::vector<int>& labels);

// Decision rule everywhere: positive when p >= threshold.
struct Rates {
  double sensitivity = 0;  // TP / (TP + FN); NaN without positives
  double specificity = 0;  // TN / (TN + FP); NaN without negatives
  size_t tp = 0, fn = 0, tn = 0, fp = 0;
};
Rates rates_at(const std::vector<int>& y, const std::vector<double>& p, double threshold);

}  // namespace medvision::calibrate
