// Operating points, refer bands, applying a manifest's calibration, split conformal coverage,
// drift detection, the reliability PNG and the whole calibrate() step.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <string>
#include <vector>

#include "calibrate/calibrate.hpp"
#include "common/error.hpp"

using namespace medvision::calibrate;
using medvision::Error;
using nlohmann::json;

namespace {

void random_scores(size_t n, uint32_t seed, double separation, std::vector<int>& y,
                   std::vector<double>& p, bool round = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  y.resize(n);
  p.resize(n);
  for (size_t i = 0; i < n; ++i) {
    y[i] = i % 4 == 0 ? 1 : 0;
    p[i] = sigmoid(g(rng) + (y[i] ? separation : 0.0) - 1.0);
    if (round) p[i] = std::round(p[i] * 20) / 20;
  }
}

}  // namespace

TEST_CASE("operating points equal brute force", "[calibrate][thresholds]") {
  for (bool round : {false, true}) {
    std::vector<int> y;
    std::vector<double> p;
    random_scores(400, round ? 11 : 12, 1.5, y, p, round);
    std::vector<double> cands = p;
    std::sort(cands.begin(), cands.end());
    cands.erase(std::unique(cands.begin(), cands.end()), cands.end());
    cands.push_back(std::nextafter(cands.back(), 2.0));

    for (double target : {0.8, 0.9, 0.95, 1.0}) {
      // Highest threshold with sensitivity >= target.
      double want = -1;
      for (double t : cands) {
        if (rates_at(y, p, t).sensitivity >= target) want = std::max(want, t);
      }
      OperatingPointOptions o;
      o.rule = Rule::kTargetSensitivity;
      o.target = target;
      const OperatingPoint op = choose_operating_point(y, p, o);
      CHECK(op.threshold == want);
      CHECK(op.sensitivity == rates_at(y, p, op.threshold).sensitivity);
      CHECK(op.specificity == rates_at(y, p, op.threshold).specificity);
      // Lowest threshold with specificity >= target.
      want = 2;
      for (double t : cands) {
        if (rates_at(y, p, t).specificity >= target) want = std::min(want, t);
      }
      o.rule = Rule::kTargetSpecificity;
      CHECK(choose_operating_point(y, p, o).threshold == want);
    }
    double best_j = -1;
    for (double t : cands) {
      const Rates r = rates_at(y, p, t);
      best_j = std::max(best_j, r.sensitivity + r.specificity - 1);
    }
    const OperatingPoint op = choose_operating_point(y, p);
    CHECK(op.sensitivity + op.specificity - 1 == Approx(best_j).margin(1e-12));
    REQUIRE(op.has_refer_band);  // the default, predictive values: tested below
    CHECK(op.refer_lo <= op.threshold);
    CHECK(op.refer_hi >= op.threshold);
    OperatingPointOptions logit_band;
    logit_band.refer = ReferMode::kLogitWidth;
    const OperatingPoint opl = choose_operating_point(y, p, logit_band);
    CHECK(opl.refer_lo == Approx(sigmoid(logit(opl.threshold) - 0.4)));
    CHECK(opl.refer_hi == Approx(sigmoid(logit(opl.threshold) + 0.4)));
    OperatingPointOptions fixed;
    fixed.refer = ReferMode::kFixedWidth;
    const OperatingPoint opf = choose_operating_point(y, p, fixed);
    CHECK(opf.refer_lo == Approx(std::max(0.0, opf.threshold - 0.1)));
    CHECK(opf.refer_hi == Approx(std::min(1.0, opf.threshold + 0.1)));
    // Each band records the rule that made it, and the manifest form keeps it (issue 16).
    CHECK(op.refer_rule["mode"] == "predictive_value");
    CHECK(op.refer_rule["target_npv"].get<double>() == 0.95);
    CHECK(opl.refer_rule["mode"] == "logit");
    CHECK(opl.refer_rule["logit_half_width"].get<double>() == 0.4);
    CHECK(opf.refer_rule["mode"] == "fixed");
    CHECK(OperatingPoint::from_json(opf.to_json()).refer_rule == opf.refer_rule);
    nlohmann::json bad = opf.to_json();
    bad["refer_rule"] = "fixed";
    CHECK_THROWS_AS(OperatingPoint::from_json(bad), medvision::Error);
  }
}

TEST_CASE("refer band from predictive values brackets the threshold", "[calibrate][thresholds]") {
  std::vector<int> y;
  std::vector<double> p;
  random_scores(2000, 21, 2.0, y, p);
  OperatingPointOptions o;
  o.refer = ReferMode::kPredictiveValue;
  o.target_npv = 0.97;
  o.target_ppv = 0.85;
  const OperatingPoint op = choose_operating_point(y, p, o);
  REQUIRE(op.has_refer_band);
  CHECK(op.refer_lo <= op.threshold);
  CHECK(op.refer_hi >= op.threshold);
  // Outside the band the promised predictive values hold.
  size_t tn = 0, fn = 0, tp = 0, fp = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (p[i] < op.refer_lo) (y[i] ? fn : tn)++;
    if (p[i] >= op.refer_hi) (y[i] ? tp : fp)++;
  }
  CHECK(static_cast<double>(tn) / static_cast<double>(tn + fn) >= 0.97);
  CHECK(static_cast<double>(tp) / static_cast<double>(tp + fp) >= 0.85);
  // It is the default band, at NPV 0.95 / PPV 0.9.
  const OperatingPointOptions defaults;
  CHECK(defaults.refer == ReferMode::kPredictiveValue);
  CHECK(defaults.target_npv == 0.95);
  CHECK(defaults.target_ppv == 0.9);
}

TEST_CASE("logit refer band scales with the threshold", "[calibrate][thresholds]") {
  // At 0.5 it is the old +-0.1 (to 1e-3); at a low-prevalence threshold it shrinks with t.
  OperatingPointOptions o;
  o.refer = ReferMode::kLogitWidth;
  std::vector<int> y = {0, 0, 0, 1};
  std::vector<double> p = {0.1, 0.2, 0.3, 0.5};
  const OperatingPoint mid = choose_operating_point(y, p, o);
  REQUIRE(mid.threshold == 0.5);
  CHECK(mid.refer_lo == Approx(0.4013).margin(1e-4));
  CHECK(mid.refer_hi == Approx(0.5987).margin(1e-4));
  p = {0.01, 0.015, 0.02, 0.03};
  const OperatingPoint low = choose_operating_point(y, p, o);
  REQUIRE(low.threshold == 0.03);
  CHECK(low.refer_lo == Approx(0.0203).margin(1e-4));
  CHECK(low.refer_hi == Approx(0.0441).margin(1e-4));
  // The odds ratio across each half of the band is e^w.
  auto odds = [](double v) { return v / (1 - v); };
  CHECK(odds(low.refer_hi) / odds(low.threshold) == Approx(std::exp(0.4)));
  o.logit_half_width = -1;
  CHECK_THROWS_AS(choose_operating_point(y, p, o), Error);
  CHECK(refer_mode_from_string(to_string(ReferMode::kPredictiveValue)) ==
        ReferMode::kPredictiveValue);
  CHECK_THROWS_AS(refer_mode_from_string("wide"), Error);
}

TEST_CASE("apply carries the manifest's conformal sets", "[calibrate][apply][conformal]") {
  // Sigmoid: per label LAC on (1 - p, p), qhat 0.3 and 0.8 (the second label: both when
  // 0.2 <= p <= 0.8).
  json calibration = {
      {"method", "temperature"},
      {"activation", "sigmoid"},
      {"labels", 2},
      {"temperature", {1.0, 1.0}},
      {"conformal", {{"score", "lac"}, {"alpha", 0.1}, {"n", 100}, {"qhat", {0.3, 0.8}}}}};
  const std::vector<std::string> labels = {"Effusion", "Nodule"};
  const ScoreCalibration sc(calibration, nullptr, labels, Activation::kSigmoid);
  REQUIRE(sc.conformal());
  CHECK(sc.conformal()->alpha() == 0.1);
  auto sets = [&](float z0, float z1) { return sc.apply(std::vector<float>{z0, z1}).conformal; };
  CHECK(sets(3.0f, 0.0f) == std::vector<int>{kSetPositive, kSetBoth});        // p 0.95, 0.5
  CHECK(sets(-3.0f, -3.0f) == std::vector<int>{kSetNegative, kSetNegative});  // p 0.05
  CHECK(sets(0.0f, 3.0f) == std::vector<int>{kSetEmpty, kSetPositive});       // p 0.5: neither
  // The sets are Conformal::predict_label_sets of the calibrated probabilities.
  const Conformal c = Conformal::from_json(calibration["conformal"], Activation::kSigmoid);
  Matrix pm(1, 2);
  pm.values = {sigmoid(1.2), sigmoid(-0.7)};
  const auto want = c.predict_label_sets(pm)[0];
  const auto got = sets(1.2f, -0.7f);
  CHECK(got[0] == want[0]);
  CHECK(got[1] == want[1]);
  // A null qhat is +inf: the full set.
  calibration["conformal"]["qhat"] = {nullptr, 0.8};
  CHECK(ScoreCalibration(calibration, nullptr, labels, Activation::kSigmoid)
            .apply(std::vector<float>{9.0f, 0.0f})
            .conformal[0] == kSetBoth);
  // Without "conformal": -1.
  calibration.erase("conformal");
  const ScoreCalibration none(calibration, nullptr, labels, Activation::kSigmoid);
  CHECK_FALSE(none.conformal());
  CHECK(none.apply(std::vector<float>{0, 0}).conformal == std::vector<int>{-1, -1});
  // Malformed: wrong qhat count, alpha outside (0, 1), APS on a sigmoid model.
  auto bad = [&](json conformal) {
    json cal = calibration;
    cal["conformal"] = std::move(conformal);
    CHECK_THROWS_AS(ScoreCalibration(cal, nullptr, labels, Activation::kSigmoid), Error);
  };
  bad({{"alpha", 0.1}, {"qhat", {0.3}}});
  bad({{"alpha", 1.5}, {"qhat", {0.3, 0.3}}});
  bad({{"alpha", 0.1}, {"score", "aps"}, {"qhat", {0.3, 0.3}}});

  // Softmax, APS: classes in decreasing probability while the running mass <= qhat.
  const json soft = {{"method", "temperature"},
                     {"activation", "softmax"},
                     {"labels", 3},
                     {"temperature", {1.0}},
                     {"conformal", {{"score", "aps"}, {"alpha", 0.2}, {"qhat", {0.9}}}}};
  const ScoreCalibration ss(soft, nullptr, {"a", "b", "c"}, Activation::kSoftmax);
  // p = softmax(2, 1, -2) = (0.721, 0.265, 0.013): mass 0.721, 0.986 -> {a}.
  CHECK(ss.apply(std::vector<float>{2, 1, -2}).conformal == std::vector<int>{1, 0, 0});
  // p = softmax(0, 0.1, 0.2): masses 0.367, 0.699, 1.0 -> {c, b}.
  CHECK(ss.apply(std::vector<float>{0, 0.1f, 0.2f}).conformal == std::vector<int>{0, 1, 1});
}

TEST_CASE("apply fills calibrated, decision and refer from the manifest objects",
          "[calibrate][apply]") {
  const json calibration = {{"method", "temperature"},
                            {"activation", "sigmoid"},
                            {"labels", 2},
                            {"temperature", {2.0, 1.0}}};
  const json thresholds = {
      {"Effusion", {{"threshold", 0.6}, {"method", "youden"}, {"refer_band", {0.5, 0.7}}}}};
  const std::vector<std::string> labels = {"Effusion", "Nodule"};
  const AppliedScores a =
      apply(calibration, thresholds, labels, Activation::kSigmoid, std::vector<float>{1.0f, -3.0f});
  CHECK(a.calibrated[0] == Approx(sigmoid(0.5)).margin(1e-6));  // 0.622
  CHECK(a.calibrated[1] == Approx(sigmoid(-3.0)).margin(1e-6));
  CHECK(a.decision[0] == 1);
  CHECK(a.refer[0]);
  CHECK(a.decision[1] == -1);
  CHECK_FALSE(a.refer[1]);
  const AppliedScores b =
      apply(calibration, thresholds, labels, Activation::kSigmoid, std::vector<float>{4.0f, 0.0f});
  CHECK(b.decision[0] == 1);
  CHECK_FALSE(b.refer[0]);
  // No calibration: NaN calibrated, thresholds on the raw probability.
  const AppliedScores c =
      apply(nullptr, thresholds, labels, Activation::kSigmoid, std::vector<float>{0.0f, 0.0f});
  CHECK(std::isnan(c.calibrated[0]));
  CHECK(c.decision[0] == 0);
  // Errors: unknown label, wrong count, mismatched calibration.
  auto status = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return e.status();
    }
    return MV_OK;
  };
  CHECK(status([&] {
          apply(calibration, json{{"Nope", {{"threshold", 0.5}}}}, labels, Activation::kSigmoid,
                std::vector<float>{0, 0});
        }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status([&] {
          apply(calibration, thresholds, labels, Activation::kSigmoid, std::vector<float>{0});
        }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status([&] {
          apply(calibration, thresholds, {"Effusion"}, Activation::kSigmoid, std::vector<float>{0});
        }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status([&] {
          apply(calibration, json{{"Effusion", {{"threshold", 0.5}, {"refer_band", {0.7, 0.2}}}}},
                labels, Activation::kSigmoid, std::vector<float>{0, 0});
        }) == MV_ERR_INVALID_ARGUMENT);
  // Operating points round-trip.
  OperatingPoint op;
  op.threshold = 0.3;
  op.rule = Rule::kTargetSensitivity;
  op.target = 0.9;
  op.sensitivity = 0.91;
  op.specificity = 0.7;
  op.has_refer_band = true;
  op.refer_lo = 0.2;
  op.refer_hi = 0.4;
  const json j = json::parse(thresholds_to_json({"A"}, {op}).dump());
  CHECK(OperatingPoint::from_json(j["A"]).to_json() == j["A"]);
}

namespace {

// Softmax data from a calibrated model: probabilities and labels drawn from them.
void softmax_sample(std::mt19937& rng, size_t n, size_t k, Matrix& p, std::vector<int>& y) {
  std::normal_distribution<double> g(0.0, 1.5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Matrix z(n, k);
  for (double& v : z.values) v = g(rng);
  p = activate(z, Activation::kSoftmax);
  y.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double r = u(rng), acc = 0;
    y[i] = static_cast<int>(k) - 1;
    for (size_t j = 0; j < k; ++j) {
      if (r < (acc += p(i, j))) {
        y[i] = static_cast<int>(j);
        break;
      }
    }
  }
}

}  // namespace

TEST_CASE("split conformal: empirical coverage within 2 points of 1 - alpha",
          "[calibrate][conformal]") {
  std::mt19937 rng(17);
  for (ConformalScore score : {ConformalScore::kLac, ConformalScore::kAps}) {
    for (double alpha : {0.1, 0.2}) {
      double covered = 0, total = 0, size = 0;
      for (int trial = 0; trial < 100; ++trial) {
        Matrix pc, pt;
        std::vector<int> yc, yt;
        softmax_sample(rng, 500, 5, pc, yc);
        softmax_sample(rng, 1000, 5, pt, yt);
        const Conformal c = Conformal::fit(Activation::kSoftmax, pc, yc, alpha, score);
        const auto sets = c.predict_sets(pt);
        for (size_t i = 0; i < sets.size(); ++i) {
          covered += std::count(sets[i].begin(), sets[i].end(), yt[i]) > 0 ? 1 : 0;
          size += static_cast<double>(sets[i].size());
          total += 1;
        }
      }
      INFO("score " << (score == ConformalScore::kLac ? "lac" : "aps") << " alpha " << alpha);
      CHECK(std::fabs(covered / total - (1 - alpha)) < 0.02);
      CHECK(size / total < 5);  // sets are informative
    }
  }
  // Multi-label: per-label binary sets.
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double covered = 0, total = 0;
  for (int trial = 0; trial < 50; ++trial) {
    auto draw = [&](size_t n, Matrix& p, std::vector<int>& y) {
      p = Matrix(n, 3);
      y.assign(n * 3, 0);
      for (size_t k = 0; k < p.values.size(); ++k) {
        p.values[k] = u(rng);
        y[k] = u(rng) < p.values[k] ? 1 : 0;
      }
    };
    Matrix pc, pt;
    std::vector<int> yc, yt;
    draw(400, pc, yc);
    draw(1000, pt, yt);
    const Conformal c = Conformal::fit(Activation::kSigmoid, pc, yc, 0.1);
    const auto sets = c.predict_label_sets(pt);
    for (size_t i = 0; i < pt.rows; ++i) {
      for (size_t j = 0; j < 3; ++j) {
        covered += (sets[i][j] & (yt[i * 3 + j] ? kSetPositive : kSetNegative)) ? 1 : 0;
        total += 1;
      }
    }
  }
  CHECK(std::fabs(covered / total - 0.9) < 0.02);
  // Quantile definition and round trip.
  CHECK(conformal_quantile({0.1, 0.2, 0.3, 0.4}, 0.25) == 0.4);  // ceil(5 * 0.75) = 4
  CHECK(std::isinf(conformal_quantile({0.1, 0.2}, 0.1)));        // ceil(3 * 0.9) = 3 > 2
  Matrix pc;
  std::vector<int> yc;
  softmax_sample(rng, 50, 3, pc, yc);
  const Conformal c = Conformal::fit(Activation::kSoftmax, pc, yc, 0.1, ConformalScore::kAps);
  const Conformal back =
      Conformal::from_json(json::parse(c.to_json().dump()), Activation::kSoftmax);
  CHECK(back.qhat() == c.qhat());
  CHECK(back.predict_sets(pc) == c.predict_sets(pc));
}

TEST_CASE("drift: flags a shifted batch, not one from the same distribution",
          "[calibrate][drift]") {
  std::mt19937 rng(23);
  std::normal_distribution<double> g;
  auto batch = [&](size_t n, double shift, double scale) {
    Matrix m(n, 2);
    for (size_t i = 0; i < n; ++i) {
      m(i, 0) = g(rng) * scale + shift;
      m(i, 1) = g(rng) - 1.0;
    }
    return m;
  };
  const DriftReference ref = DriftReference::build(batch(5000, 0.0, 1.0));
  const DriftReference back = DriftReference::from_json(json::parse(ref.to_json().dump()));
  int false_alarms = 0;
  for (int t = 0; t < 20; ++t) {
    const DriftReport same = back.compare(batch(500, 0.0, 1.0));
    false_alarms += same.shifted ? 1 : 0;
    CHECK(same.labels[0].psi < 0.1);
  }
  CHECK(false_alarms <= 2);  // 2 labels x 20 batches at p < 0.01: expect ~0.4
  const DriftReport moved = back.compare(batch(500, 0.5, 1.0));
  CHECK(moved.shifted);
  CHECK(moved.labels[0].shifted);
  CHECK(moved.labels[0].p_value < 1e-6);
  CHECK_FALSE(moved.labels[1].shifted);
  const DriftReport wider = back.compare(batch(500, 0.0, 2.0));
  CHECK(wider.labels[0].psi > 0.2);
  CHECK(wider.to_json()["shifted"] == true);
  // The KS p-value against a known value: Q(1) = 0.26999967...
  CHECK(kolmogorov_survival(1.0) == Approx(0.2699996716773546).margin(1e-12));
}

TEST_CASE("calibrate(): manifest objects, report, reliability PNG", "[calibrate][pipeline]") {
  std::mt19937 rng(31);
  std::normal_distribution<double> g(0.0, 1.5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const size_t n = 3000;
  Matrix z(n, 2);
  std::vector<int> y(n * 2);
  for (size_t k = 0; k < z.values.size(); ++k) {
    const double t = g(rng) - 1.0;
    y[k] = u(rng) < sigmoid(t) ? 1 : 0;
    z.values[k] = 3.0 * t;
  }
  CalibrateOptions o;
  o.conformal = true;
  o.bootstrap = 200;
  o.fit.date = "2024-06-01";
  const CalibrationResult r = calibrate(z, y, Activation::kSigmoid, {"A", "B"}, o);
  CHECK(r.calibration["method"] == "temperature");
  CHECK(r.calibration["fitted_on"]["n"] == 2100);
  CHECK(r.calibration["conformal"]["qhat"].size() == 2);
  CHECK(r.calibration["drift"]["quantiles"].size() == 2);
  CHECK(r.thresholds["A"]["method"] == "youden");
  CHECK(r.report["after"]["labels"]["A"]["ece"].get<double>() <
        r.report["before"]["labels"]["A"]["ece"].get<double>());
  CHECK(r.report["after"]["labels"]["A"]["auroc_ci95"].size() == 2);
  // The manifest objects drive ScoreCalibration.
  const ScoreCalibration sc(r.calibration, r.thresholds, {"A", "B"}, Activation::kSigmoid);
  const AppliedScores a = sc.apply(std::vector<float>{3.0f, -6.0f});
  CHECK(a.calibrated[0] == Approx(sigmoid(3.0 / r.calibrator.temperature()[0])).margin(1e-6));
  CHECK(a.decision[1] == 0);

  const std::vector<uint8_t> png = reliability_png(r.reliability);
  const cv::Mat img = cv::imdecode(png, cv::IMREAD_COLOR);
  CHECK(img.cols == 960);
  CHECK(img.rows == 480);
}
