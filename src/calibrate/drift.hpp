#pragma once
// Score drift: a compact reference of each label's logit distribution at calibration time (101
// quantiles and the proportions in its 10 decile bins), and a comparison of a new batch with it:
// a two-sample Kolmogorov-Smirnov statistic with its asymptotic p-value, and the population
// stability index (PSI) over the reference deciles. A label has shifted when p < p_threshold or
// PSI > psi_threshold. Definitions: docs/calibration.md.

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
