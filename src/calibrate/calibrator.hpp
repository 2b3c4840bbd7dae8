#pragma once
// medvision::calibrate::Calibrator: maps a model's logits to calibrated probabilities.
//   temperature: p = act(z / T), one T per label for sigmoid models, one T for softmax models,
//                fitted by minimising the NLL over log T with Brent's method.
//   platt:       p = sigmoid(a * s + b) per label, s the logit (sigmoid) or logit(p_softmax)
//                (softmax, one-vs-rest, rows renormalised), fitted by Newton's method.
//   isotonic:    p = f(p_raw) per label, f the pool-adjacent-violators fit, interpolated
//                linearly and clipped outside the fitted range (sklearn's
//                IsotonicRegression(out_of_bounds="clip")); softmax rows renormalised.
// Serialises to the manifest's "calibration" object (docs/calibration.md).

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/types.hpp"

namespace medvision::calibrate {

enum class Method { kTemperature, kPlatt, kIsotonic };
Method method_from_string(const std::string& name);  // "temperature" | "platt" | "isotonic"
const char* to_string(Method method);

struct FitOptions {
  double min_temperature = 0.01;  // search interval of the temperature
  double max_temperature = 100.0;
  // Platt's targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2) instead of 1 and 0, as in Platt (1999)
  // and sklearn's _sigmoid_calibration; keeps (a, b) finite on separable data.
  bool platt_target_smoothing = true;
  // Recorded as fitted_on.date / fitted_on.data (free text: which data set, which split).
  std::string date;
  std::string data;
};

// A monotone non-decreasing piecewise-linear map fitted by isotonic regression.
struct IsotonicCurve {
  std::vector<double> x;  // strictly increasing breakpoints
  std::vector<double> y;  // non-decreasing fitted values
  // Fits y on x (equal x merged by their mean y, as sklearn), keeping only the breakpoints that
  // change the interpolant. Throws MV_ERR_INVALID_ARGUMENT on empty or mismatched input.
  static IsotonicCurve fit(const std::vector<double>& x, const std::vector<double>& y);
  double operator()(double v) const;  // linear interpolation, clipped to [x.front(), x.back()]
};

class Calibrator {
 public:
  // Fits `method` on validation logits [N, L] and labels (see types.hpp for the label layout).
  // Labels the data cannot calibrate (a single class present, or constant scores) keep the
  // identity map and get an entry in warnings(). Throws MV_ERR_INVALID_ARGUMENT on bad input.
  static Calibrator fit(Method method, Activation activation, const Matrix& logits,
                        const std::vector<int>& labels, const FitOptions& options = {});

  // Calibrated probabilities [N, L] for logits [N, L]. Thread-safe (const).
  Matrix probabilities(const Matrix& logits) const;
  std::vector<double> probabilities(const std::vector<double>& logits_row) const;

  nlohmann::json to_json() const;
  // Reads a manifest "calibration" object; keys it does not use (drift, conformal) are ignored.
  static Calibrator from_json(const nlohmann::json& j);

  Method method() const { return method_; }
  Activation activation() const { return activation_; }
  size_t num_labels() const { return num_labels_; }
  const std::vector<double>& temperature() const { return temperature_; }
  const std::vector<double>& platt_a() const { return a_; }
  const std::vector<double>& platt_b() const { return b_; }
  const std::vector<IsotonicCurve>& isotonic() const { return curves_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  Method method_ = Method::kTemperature;
  Activation activation_ = Activation::kSigmoid;
  size_t num_labels_ = 0;
  std::vector<double> temperature_;  // 1 (softmax) or L (sigmoid)
  std::vector<double> a_, b_;        // Platt, per label
  std::vector<IsotonicCurve> curves_;
  std::vector<std::string> warnings_;
  nlohmann::json fitted_on_;
};

// Brent's method (golden section + parabolic steps) for the minimum of f on [lo, hi].
double minimize_brent(const std::function<double(double)>& f, double lo, double hi,
                      double tol = 1e-10, int max_iter = 200);

}  // namespace medvision::calibrate
