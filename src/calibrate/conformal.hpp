#pragma once
// Split conformal prediction on calibrated probabilities (docs/calibration.md).
//   softmax: a set of classes per image; scores LAC (1 - p_y) or APS (probability mass of the
//            classes ranked at or above y, non-randomised).
//   sigmoid: per label a set within {negative, positive}: LAC on the binary pair (1 - p, p),
//            one quantile per label, so each label's set covers with probability >= 1 - alpha.
// The quantile is the ceil((n + 1)(1 - alpha))-th smallest calibration score (+inf when that
// exceeds n: every set is then the full set).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "calibrate/types.hpp"

namespace medvision::calibrate {

enum class ConformalScore { kLac, kAps };

// Per-label set of a sigmoid model: bit 0 = negative in the set, bit 1 = positive in the set.
enum LabelSet : uint8_t { kSetEmpty = 0, kSetNegative = 1, kSetPositive = 2, kSetBoth = 3 };

class Conformal {
 public:
  // Fits on calibration-split probabilities [n, L] (calibrated) and labels (types.hpp layout).
  // APS is for softmax only. Throws MV_ERR_INVALID_ARGUMENT on bad input or alpha outside (0, 1).
  static Conformal fit(Activation activation, const Matrix& probs, const std::vector<int>& labels,
                       double alpha, ConformalScore score = ConformalScore::kLac);

  // softmax: the class indices in each image's set, most probable first.
  std::vector<std::vector<int>> predict_sets(const Matrix& probs) const;
  // sigmoid: [N][L] LabelSet bits.
  std::vector<std::vector<uint8_t>> predict_label_sets(const Matrix& probs) const;

  double alpha() const { return alpha_; }
  ConformalScore score() const { return score_; }
  size_t n() const { return n_; }
  const std::vector<double>& qhat() const { return qhat_; }  // 1 (softmax) or L (sigmoid)

  nlohmann::json to_json() const;  // {"score": "lac", "alpha": a, "qhat": [...], "n": n}
  static Conformal from_json(const nlohmann::json& j, Activation activation);

 private:
  Activation activation_ = Activation::kSoftmax;
  ConformalScore score_ = ConformalScore::kLac;
  double alpha_ = 0.1;
  size_t n_ = 0;
  std::vector<double> qhat_;
};

const char* to_string(ConformalScore score);  // "lac" | "aps"

// The conformal quantile of `scores` at level alpha (see above); sorts a copy.
double conformal_quantile(std::vector<double> scores, double alpha);

}  // namespace medvision::calibrate
