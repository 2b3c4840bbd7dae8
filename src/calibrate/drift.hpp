#pragma once
// Score drift: a compact reference of each label's logit distribution at calibration time (101
// quantiles and the proportions in its 10 decile bins), and a comparison of a new batch with it:
// a two-sample Kolmogorov-Smirnov statistic with its asymptotic p-value, and the population
// stability index (PSI) over the reference deciles. A label has shifted when p < p_threshold or
// PSI > psi_threshold. Definitions: docs/calibration.md.

#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/types.hpp"

namespace medvision::calibrate {

struct DriftOptions {
  double p_threshold = 0.01;
  double psi_threshold = 0.2;
};

struct LabelDrift {
  double ks = 0;       // sup |F_batch - F_reference|
  double p_value = 1;  // asymptotic, effective n = n_ref * m / (n_ref + m)
  double psi = 0;
  bool shifted = false;
};

// How far one image's logits lie from the calibration-time distribution (docs/calibration.md,
// "Out-of-distribution score"): per label the robust z-score |z - median| / (IQR / 1.349) of the
// logit against the reference's quantiles, and the largest over labels. A distance in robust
// standard deviations of the calibration-time logits, not a probability.
struct OodScore {
  static constexpr double kFar = 3.0;                       // "far": beyond 3 robust SD (docs)
  double score = std::numeric_limits<double>::quiet_NaN();  // NaN without a drift reference
  size_t label = 0;                                         // the label that reached the score
  // That label's logit as a percentile of the calibration-time logits (0..100; 0 or 100 when
  // it lies beyond every calibration image).
  double percentile = std::numeric_limits<double>::quiet_NaN();
  bool far() const { return score > kFar; }
};

struct DriftReport {
  size_t batch_size = 0;
  std::vector<LabelDrift> labels;
  bool shifted = false;  // any label
  nlohmann::json to_json() const;
};

class DriftReference {
 public:
  static constexpr size_t kQuantiles = 101;  // 0%, 1%, ..., 100%
  static constexpr size_t kPsiBins = 10;

  // From calibration-time logits [N, L] (N >= 2).
  static DriftReference build(const Matrix& scores);
  // The out-of-distribution score of one image's logits (`count` == num_labels()).
  OodScore ood(const float* logits, size_t count) const;
  // Compares a batch of logits [M, L] (M >= 1) with the reference.
  DriftReport compare(const Matrix& scores, const DriftOptions& options = {}) const;

  size_t num_labels() const { return quantiles_.size(); }
  size_t n() const { return n_; }

  nlohmann::json to_json()
      const;  // {"score": "logit", "n", "quantiles": [[101]], "psi_bins": [[10]]}
  static DriftReference from_json(const nlohmann::json& j);

 private:
  size_t n_ = 0;
  std::vector<std::vector<double>> quantiles_;  // per label
  std::vector<std::vector<double>> psi_bins_;   // per label, reference proportions
};

// Kolmogorov's limiting survival function Q(lambda) = 2 sum_k (-1)^(k-1) exp(-2 k^2 lambda^2).
double kolmogorov_survival(double lambda);

}  // namespace medvision::calibrate
