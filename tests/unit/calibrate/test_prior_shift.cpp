// calibrate/prior_shift: the adjustment's closed form, decisions kept by the mapped thresholds
// (through ScoreCalibration, as every result gets them), the chi-square survival function and
// the error cases. The EM itself is checked against numpy in
// bindings/python/tests/test_prior_shift.py.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "calibrate/operating_point.hpp"
#include "calibrate/prior_shift.hpp"
#include "common/error.hpp"

using namespace medvision::calibrate;
using nlohmann::json;

TEST_CASE("prior shift: sigmoid adjustment is the odds times the prior odds ratio",
          "[calibrate][prior_shift]") {
  const PriorShift s(Activation::kSigmoid, {0.75, 0.2}, {0.3, 0.5});
  const double r0 = (0.3 / 0.75) / (0.7 / 0.25), r1 = (0.5 / 0.2) / (0.5 / 0.8);
  for (double p : {0.0, 1e-9, 0.1, 0.5, 0.9, 1.0}) {
    const auto q = s.apply(std::vector<double>{p, p});
    CHECK(q[0] == Approx(r0 * p / (r0 * p + 1 - p)).margin(1e-15));
    CHECK(q[1] == Approx(r1 * p / (r1 * p + 1 - p)).margin(1e-15));
  }
  CHECK(s.log_odds_ratio(0) == Approx(std::log(r0)));
}

TEST_CASE("prior shift: softmax reweights and renormalises", "[calibrate][prior_shift]") {
  const PriorShift s(Activation::kSoftmax, {0.5, 0.3, 0.2}, {0.2, 0.3, 0.5});
  const std::vector<double> p = {0.6, 0.3, 0.1};
  const double a = 0.6 * 0.4, b = 0.3 * 1.0, c = 0.1 * 2.5, z = a + b + c;
  const auto q = s.apply(p);
  CHECK(q[0] == Approx(a / z));
  CHECK(q[1] == Approx(b / z));
  CHECK(q[2] == Approx(c / z));
}

TEST_CASE("prior shift: mapped thresholds keep every decision and refer flag",
          "[calibrate][prior_shift]") {
  const std::vector<std::string> labels = {"Pneumonia"};
  const json calibration = {{"method", "temperature"},
                            {"activation", "sigmoid"},
                            {"labels", 1},
                            {"temperature", {1.8}},
                            {"fitted_on", {{"n", 383}, {"positives", {290}}}}};
  const json thresholds = {{"Pneumonia",
                            {{"method", "youden"},
                             {"threshold", 0.2146611},
                             {"refer_band", {0.1793, 0.2146611}},
                             {"sensitivity", 0.979},
                             {"specificity", 0.968}}}};
  const std::vector<double> source = recorded_source_prior(calibration, 1, "test");
  REQUIRE(source[0] == Approx(290.0 / 383.0));
  for (double target : {0.05, 0.3, 0.9}) {
    const PriorShift shift(Activation::kSigmoid, source, {target});
    json shifted_cal = calibration;
    shifted_cal["prior_shift"] = {{"source_prior", source}, {"target_prior", {target}}};
    const json shifted_thr = shift_thresholds(thresholds, labels, shift);
    CHECK(shifted_thr["Pneumonia"]["threshold"].get<double>() ==
          Approx(shift.map(0, 0.2146611)).epsilon(1e-14));
    const ScoreCalibration before(calibration, thresholds, labels, Activation::kSigmoid);
    const ScoreCalibration after(shifted_cal, shifted_thr, labels, Activation::kSigmoid);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-12.f, 12.f);
    int flips = 0;
    for (int i = 0; i < 20000; ++i) {
      // Logits around the threshold's (logit(0.2147) * 1.8 = -2.34) as well as everywhere.
      const float z = i % 2 ? u(rng) : -2.34f + u(rng) / 1000.f;
      const AppliedScores a = before.apply(std::vector<float>{z}),
                          b = after.apply(std::vector<float>{z});
      flips += a.decision[0] != b.decision[0] || a.refer[0] != b.refer[0];
      REQUIRE(b.calibrated[0] ==
              Approx(static_cast<float>(shift.map(0, a.calibrated[0]))).epsilon(1e-5));
    }
    CHECK(flips == 0);
    // Shifting the shifted thresholds again starts from the source ones.
    const PriorShift back(Activation::kSigmoid, source, {0.5});
    CHECK(
        shift_thresholds(shifted_thr, labels, back)["Pneumonia"]["prior_shift"]["source_threshold"]
            .get<double>() == 0.2146611);
  }
}

TEST_CASE("prior shift: chi-square survival", "[calibrate][prior_shift]") {
  // Reference values: scipy.stats.chi2.sf.
  CHECK(chi_square_survival(3.841458820694124, 1) == Approx(0.05).epsilon(1e-9));
  CHECK(chi_square_survival(10.0, 5) == Approx(0.07523524614651217).epsilon(1e-9));
  CHECK(chi_square_survival(2.0, 2) == Approx(std::exp(-1.0)).epsilon(1e-12));
  CHECK(chi_square_survival(100.0, 3) == Approx(1.5e-21).epsilon(0.05));
  CHECK(chi_square_survival(0.0, 1) == 1.0);
}

TEST_CASE("prior shift: bad input is refused with a reason", "[calibrate][prior_shift]") {
  Matrix p(3, 1, 0.5);
  CHECK_THROWS_WITH(estimate_prior_shift(Matrix(), Activation::kSigmoid, {0.5}),
                    Catch::Contains("N = 0"));
  CHECK_THROWS_WITH(estimate_prior_shift(p, Activation::kSigmoid, {1.0}),
                    Catch::Contains("not inside (0, 1)"));
  p(1, 0) = std::nan("");
  CHECK_THROWS_WITH(estimate_prior_shift(p, Activation::kSigmoid, {0.5}),
                    Catch::Contains("image 1, label 0"));
  Matrix s(2, 3, 0.2);  // rows sum to 0.6
  CHECK_THROWS_WITH(estimate_prior_shift(s, Activation::kSoftmax, {0.2, 0.3, 0.5}),
                    Catch::Contains("sum to"));
  CHECK_THROWS_WITH(recorded_source_prior(json{{"method", "temperature"}}, 1, "pkg"),
                    Catch::Contains("no source prior"));
  CHECK_THROWS_WITH(recorded_source_prior(json(), 1, "pkg"), Catch::Contains("not calibrated"));
  CHECK_THROWS_WITH(recorded_source_prior(json{{"method", "temperature"},
                                               {"fitted_on", {{"n", 10}, {"positives", {0}}}}},
                                          1, "pkg"),
                    Catch::Contains("no positives or no negatives"));
}
