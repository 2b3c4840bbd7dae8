#pragma once
// Label-prior shift: re-estimating the prevalence of each label at a new site from the calibrated
// probabilities of unlabelled images by the EM algorithm of Saerens, Latinne & Decaestecker (2002,
// "Adjusting the outputs of a classifier to new a priori probabilities: a simple procedure",
// Neural Computation 14:21-41), their likelihood-ratio test for "the priors changed" (section
// 2.3), and the adjustment of probabilities and operating points for the new priors. The
// assumption throughout: p(x | y) is the same at both sites; only p(y) differs
// (docs/calibration.md, "Prior shift").
//
// Sigmoid models: each label is its own binary problem with prior pi (prevalence). Softmax
// models: one prior vector over the classes (the paper's multi-class form).

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/calibrator.hpp"
#include "calibrate/types.hpp"

namespace medvision::calibrate {

struct PackageSource;   // calibrate.hpp
struct PackageWritten;  // calibrate.hpp

struct PriorShiftOptions {
  double tolerance = 1e-8;  // stop when every |pi_new - pi_old| < tolerance
  int max_iterations = 1000;
  double clamp = 1e-6;  // priors are kept inside [clamp, 1 - clamp]
};

struct PriorShiftEstimate {
  Activation activation = Activation::kSigmoid;
  size_t n = 0;
  std::vector<double> source_prior;  // per label (sigmoid) or per class (softmax, sums to 1)
  std::vector<double> target_prior;  // the estimate, same layout
  int iterations = 0;                // the most over labels (sigmoid)
  bool converged = false;            // every label
  // Log-likelihood of the images under each prior, less the term sum_i log p(x_i) shared by all
  // priors: sum_i log sum_k (pi_k / pis_k) p_ik. 0 at the source prior by construction.
  double log_likelihood_before = 0;
  double log_likelihood_after = 0;
  // Likelihood-ratio test of "the priors changed": 2 (after - before) against chi-square with
  // `dof` degrees of freedom (sigmoid: one per label; softmax: classes - 1).
  double lr_statistic = 0;
  size_t dof = 0;
  double lr_p_value = 1;
  // Sigmoid: the same per label (one degree of freedom each); empty for softmax.
  std::vector<double> label_lr_statistic;
  std::vector<double> label_lr_p_value;
  std::vector<int> label_iterations;
  std::vector<std::string> warnings;

  // {"method": "em_saerens2002", "source_prior", "target_prior", "images", "iterations",
  //  "converged", "log_likelihood": {"before", "after"}, "lr_test": {"statistic", "dof",
  //  "p_value"}, "warnings"} (+ "labels": per-label tests for sigmoid models).
  nlohmann::json to_json() const;
};

// Estimates the target priors from calibrated probabilities [N, L] (sigmoid: each in [0, 1];
// softmax: rows summing to 1) starting at `source_prior`. Throws MV_ERR_INVALID_ARGUMENT for
// N = 0, a non-finite or out-of-range probability (naming its row and label), or a source prior
// outside (0, 1) (softmax: one that does not sum to 1).
PriorShiftEstimate estimate_prior_shift(const Matrix& probs, Activation activation,
                                        const std::vector<double>& source_prior,
                                        const PriorShiftOptions& options = {});

// Chi-square survival function P(X > x), X ~ chi-square(dof): the regularised upper incomplete
// gamma function Q(dof / 2, x / 2) (series or continued fraction, Numerical Recipes 6.2).
double chi_square_survival(double x, size_t dof);

// A source -> target prior change applied to probabilities: sigmoid, per label, the odds times
// (pt / ps) / ((1 - pt) / (1 - ps)); softmax, each class times pt_k / ps_k and the row
// renormalised (Saerens et al. eq. 2.4).
class PriorShift {
 public:
  PriorShift() = default;
  PriorShift(Activation activation, std::vector<double> source, std::vector<double> target);
  // From a manifest's calibration "prior_shift" object; throws MV_ERR_INVALID_ARGUMENT when it is
  // malformed or its prior count is not `labels`.
  static PriorShift from_json(const nlohmann::json& j, Activation activation, size_t labels);

  std::vector<double> apply(const std::vector<double>& row) const;
  Matrix apply(const Matrix& probs) const;
  // Sigmoid: the monotone map of label j's probability (the same as apply() on that label).
  double map(size_t label, double p) const;
  // Sigmoid: label j's log odds ratio log((pt/ps) / ((1-pt)/(1-ps))).
  double log_odds_ratio(size_t label) const;

  Activation activation() const { return activation_; }
  const std::vector<double>& source() const { return source_; }
  const std::vector<double>& target() const { return target_; }

 private:
  Activation activation_ = Activation::kSigmoid;
  std::vector<double> source_, target_;
};

// The manifest "thresholds" after a prior shift, from the thresholds the calibration chose (for a
// package already shifted, the ones recorded as each entry's prior_shift.source_threshold /
// source_refer_band). Sigmoid models: each threshold and refer-band edge through the label's
// monotone odds map, so every image gets the decision and refer flag it got before; each entry
// gains "prior_shift": {"source_threshold", "source_refer_band", "prevalence", "ppv", "npv"}
// (PPV and NPV at the operating point at the estimated prevalence, from the recorded sensitivity
// and specificity). Softmax models: the reweighting is not a per-class monotone map, so thresholds
// stay where they were and decisions are taken on the source-prior probabilities (recorded as
// "decided_on": "source_prior_probabilities").
nlohmann::json shift_thresholds(const nlohmann::json& thresholds,
                                const std::vector<std::string>& labels, const PriorShift& shift);

// The thresholds a shifted package's operating points were chosen at (each entry's
// prior_shift.source_threshold / source_refer_band put back); `thresholds` unchanged when it
// records none.
nlohmann::json source_thresholds(const nlohmann::json& thresholds);

// The source prior a calibrated package records: fitted_on.positives / fitted_on.n per label
// (sigmoid) or class (softmax). Throws MV_ERR_INVALID_ARGUMENT, naming `where`, when the
// calibration has no fitted_on.n / positives (a package calibrated before they were recorded:
// pass the source prior explicitly) or when a label has no positives or no negatives.
std::vector<double> recorded_source_prior(const nlohmann::json& calibration, size_t labels,
                                          const std::string& where);

// What a new package version with corrected priors is written from.
struct PriorShiftPackage {
  nlohmann::json prior_shift;  // the manifest's calibration "prior_shift" object
  nlohmann::json thresholds;   // shift_thresholds()
  nlohmann::json report;       // prior-shift-report.json
};

// Writes the new version to `out_dir` (created; must not hold a manifest.json): the source's
// model file (checked against its checksum), its manifest with `version` ("" for
// "<old>+prior"), calibration.prior_shift and the shifted thresholds, prior-shift-report.json and
// the source's README.md. Throws MV_ERR_INVALID_ARGUMENT or MV_ERR_IO naming the file.
PackageWritten write_prior_shift_package(const PackageSource& source, const PriorShiftPackage& p,
                                         const std::string& version, const std::string& out_dir);

// Does the site's score distribution look like the calibration set's with only the priors changed?
// Sigmoid models, per label: the calibration-time logit distribution (the drift reference's 101
// quantiles, `drift`) reweighted by p_t(x) / p_s(x) = (pt/ps) p + ((1-pt)/(1-ps)) (1-p) (p the
// calibrated probability at each quantile interval's midpoint) is what a pure prior change
// predicts; the batch's logits are compared with it by the two-sample Kolmogorov-Smirnov
// statistic (p-value with Stephens' correction, the reference's size taken as Kish's effective
// size of the weights). {"labels": [{"ks", "p_value", "consistent": p >= 0.01}]}; null for softmax
// models or without a drift reference.
nlohmann::json label_shift_fit(const nlohmann::json& drift, const Matrix& logits,
                               const Calibrator& calibrator, const PriorShift& shift);

}  // namespace medvision::calibrate
