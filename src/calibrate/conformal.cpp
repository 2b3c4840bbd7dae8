#include "calibrate/conformal.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;

// Classes of row i ranked by probability, highest first (stable: lower index wins ties).
std::vector<size_t> ranked(const Matrix& p, size_t i) {
  std::vector<size_t> order(p.cols);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p(i, a) > p(i, b); });
  return order;
}

void check_probs(const Matrix& p, size_t cols) {
  if (p.rows == 0 || p.cols != cols || p.values.size() != p.rows * p.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "conformal: expected [N, " + std::to_string(cols) + "] probabilities");
  }
  for (double v : p.values) {
    if (!(v >= 0.0 && v <= 1.0)) {
      throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: probabilities must lie in [0, 1]");
    }
  }
}

}  // namespace

const char* to_string(ConformalScore score) {
  return score == ConformalScore::kLac ? "lac" : "aps";
}

double conformal_quantile(std::vector<double> scores, double alpha) {
  if (scores.empty() || !(alpha > 0 && alpha < 1)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: need scores and 0 < alpha < 1");
  }
  const double n = to_double(scores.size());
  const double k = std::ceil((n + 1) * (1 - alpha) - 1e-12);
  if (k > n) return std::numeric_limits<double>::infinity();
  std::sort(scores.begin(), scores.end());
  return scores[static_cast<size_t>(k) - 1];
}

Conformal Conformal::fit(Activation activation, const Matrix& probs, const std::vector<int>& labels,
                         double alpha, ConformalScore score) {
  check_labels(probs, labels, activation);
  check_probs(probs, probs.cols);
  if (score == ConformalScore::kAps && activation != Activation::kSoftmax) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: APS needs a softmax model");
  }
  Conformal c;
  c.activation_ = activation;
  c.score_ = score;
  c.alpha_ = alpha;
  c.n_ = probs.rows;
  if (activation == Activation::kSigmoid) {
    for (size_t j = 0; j < probs.cols; ++j) {
      std::vector<double> s(probs.rows);
      for (size_t i = 0; i < probs.rows; ++i) {
        const double p = probs(i, j);
        s[i] = labels[i * probs.cols + j] == 1 ? 1 - p : p;  // 1 - p(true class)
      }
      c.qhat_.push_back(conformal_quantile(std::move(s), alpha));
    }
    return c;
  }
  std::vector<double> s(probs.rows);
  for (size_t i = 0; i < probs.rows; ++i) {
    const size_t y = static_cast<size_t>(labels[i]);
    if (score == ConformalScore::kLac) {
      s[i] = 1 - probs(i, y);
    } else {
      double mass = 0;
      for (size_t k : ranked(probs, i)) {
        mass += probs(i, k);
        if (k == y) break;
      }
      s[i] = mass;
    }
  }
  c.qhat_.push_back(conformal_quantile(std::move(s), alpha));
  return c;
}

std::vector<std::vector<int>> Conformal::predict_sets(const Matrix& probs) const {
  if (activation_ != Activation::kSoftmax) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: predict_sets is for softmax models");
  }
  check_probs(probs, probs.cols);
  const double q = qhat_[0];
  std::vector<std::vector<int>> sets(probs.rows);
  for (size_t i = 0; i < probs.rows; ++i) {
    double mass = 0;
    for (size_t k : ranked(probs, i)) {
      mass += probs(i, k);
      const double s = score_ == ConformalScore::kLac ? 1 - probs(i, k) : mass;
      if (s <= q) sets[i].push_back(static_cast<int>(k));
    }
  }
  return sets;
}

std::vector<std::vector<uint8_t>> Conformal::predict_label_sets(const Matrix& probs) const {
  if (activation_ != Activation::kSigmoid) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: predict_label_sets is for sigmoid models");
  }
  check_probs(probs, qhat_.size());
  std::vector<std::vector<uint8_t>> sets(probs.rows, std::vector<uint8_t>(probs.cols, kSetEmpty));
  for (size_t i = 0; i < probs.rows; ++i) {
    for (size_t j = 0; j < probs.cols; ++j) {
      const double p = probs(i, j);
      uint8_t s = kSetEmpty;
      if (p <= qhat_[j]) s |= kSetNegative;      // score of "negative" is 1 - (1 - p) = p
      if (1 - p <= qhat_[j]) s |= kSetPositive;  // score of "positive" is 1 - p
      sets[i][j] = s;
    }
  }
  return sets;
}

json Conformal::to_json() const {
  json q = json::array();
  for (double v : qhat_) q.push_back(std::isfinite(v) ? json(v) : json());  // null = +inf
  return {{"score", to_string(score_)}, {"alpha", alpha_}, {"n", n_}, {"qhat", q}};
}

Conformal Conformal::from_json(const json& j, Activation activation) {
  if (!j.is_object() || !j.contains("qhat") || !j["qhat"].is_array() || j["qhat"].empty() ||
      !j.contains("alpha") || !j["alpha"].is_number()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: expected {score, alpha, qhat}");
  }
  Conformal c;
  c.activation_ = activation;
  const std::string score = j.value("score", std::string("lac"));
  if (score != "lac" && score != "aps") {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: unknown score '" + score + "'");
  }
  c.score_ = score == "lac" ? ConformalScore::kLac : ConformalScore::kAps;
  c.alpha_ = j["alpha"].get<double>();
  if (!(c.alpha_ > 0 && c.alpha_ < 1)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: alpha must lie in (0, 1)");
  }
  if (c.score_ == ConformalScore::kAps && activation != Activation::kSoftmax) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: APS needs a softmax model");
  }
  c.n_ = j.value("n", size_t{0});
  for (const auto& v : j["qhat"]) {
    if (v.is_null()) {
      c.qhat_.push_back(std::numeric_limits<double>::infinity());
    } else if (v.is_number() && !std::isnan(v.get<double>())) {
      c.qhat_.push_back(v.get<double>());
    } else {
      throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: qhat must hold numbers");
    }
  }
  if (activation == Activation::kSoftmax && c.qhat_.size() != 1) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "conformal: softmax needs one qhat");
  }
  return c;
}

}  // namespace medvision::calibrate
