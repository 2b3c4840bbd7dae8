// medvision::calibrate evaluation: DeLong's test against values from an independent numpy
// implementation of the O(m n) kernel form (the numbers below; the broad comparison with random
// scores is bindings/python/tests/test_evaluate.py), and the decision helpers on hand-checked data.

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "calibrate/evaluate.hpp"
#include "common/error.hpp"

namespace cal = medvision::calibrate;

TEST_CASE("evaluate: DeLong equals the numpy kernel reference (ties included)",
          "[calibrate][evaluate]") {
  const std::vector<int> y = {1, 1, 1, 1, 0, 0, 0, 0, 0, 1};
  const std::vector<double> a = {0.9, 0.8, 0.35, 0.6, 0.3, 0.2, 0.6, 0.1, 0.4, 0.7};
  const std::vector<double> b = {0.7, 0.4, 0.5, 0.6, 0.55, 0.2, 0.3, 0.45, 0.4, 0.8};
  // numpy: psi = (x > y) + 0.5 (x == y); S = cov(V10)/m + cov(V01)/n; scipy.stats.norm.sf.
  const cal::DeLongResult d = cal::delong_test(y, a, b);
  CHECK(d.auc_a == Approx(0.9).margin(1e-12));
  CHECK(d.auc_b == Approx(0.86).margin(1e-12));
  CHECK(d.var_a == Approx(0.010000000000000002).epsilon(1e-9));
  CHECK(d.var_b == Approx(0.015200000000000002).epsilon(1e-9));
  CHECK(d.covariance == Approx(-0.0020000000000000005).epsilon(1e-9));
  CHECK(d.se == Approx(0.17088007490635063).epsilon(1e-9));
  CHECK(d.z == Approx(0.23408229439226133).epsilon(1e-9));
  CHECK(d.p_value == Approx(0.8149210911464685).epsilon(1e-9));
  CHECK(cal::delong_variance(y, a) == Approx(d.var_a).epsilon(1e-12));
  // A score against itself: no difference, p = 1.
  const cal::DeLongResult same = cal::delong_test(y, a, a);
  CHECK(same.difference == 0.0);
  CHECK(same.p_value == 1.0);
  CHECK(std::isnan(same.z));
  CHECK_THROWS_AS(cal::delong_test({1, 1}, {0.1, 0.2}, {0.3, 0.4}), medvision::Error);
  CHECK_THROWS_AS(cal::delong_test(y, a, {0.1}), medvision::Error);
}

TEST_CASE("evaluate: confusion counts, target sensitivity, curves", "[calibrate][evaluate]") {
  const std::vector<int> y = {0, 0, 1, 1, 0, 1};
  const std::vector<double> p = {0.1, 0.4, 0.35, 0.8, 0.8, 0.9};
  const cal::Confusion c = cal::confusion_at(y, p, 0.4);
  CHECK(c.tp == 2);
  CHECK(c.fn == 1);
  CHECK(c.fp == 2);
  CHECK(c.tn == 1);
  CHECK(c.ppv == Approx(0.5));
  CHECK(c.npv == Approx(0.5));
  CHECK(c.accuracy == Approx(0.5));
  // Sensitivity >= 2/3 first holds at 0.8 (positives 0.9, 0.8); >= 0.9 needs 0.35.
  CHECK(cal::threshold_for_sensitivity(y, p, 2.0 / 3.0) == 0.8);
  CHECK(cal::threshold_for_sensitivity(y, p, 0.9) == 0.35);
  CHECK(cal::threshold_for_sensitivity(y, p, 1.0) == 0.35);
  CHECK_THROWS_AS(cal::threshold_for_sensitivity(y, p, 0.0), medvision::Error);
  // sklearn.metrics.roc_curve(y, p, drop_intermediate=False) and average_precision_score.
  const cal::Curve roc = cal::roc_curve(y, p);
  const std::vector<double> fpr = {0, 0, 1.0 / 3, 2.0 / 3, 2.0 / 3, 1};
  const std::vector<double> tpr = {0, 1.0 / 3, 2.0 / 3, 2.0 / 3, 1, 1};
  REQUIRE(roc.x.size() == fpr.size());
  for (size_t i = 0; i < fpr.size(); ++i) {
    CHECK(roc.x[i] == Approx(fpr[i]));
    CHECK(roc.y[i] == Approx(tpr[i]));
  }
  CHECK(cal::average_precision(y, p) == Approx(0.7555555555555555).epsilon(1e-12));
}
