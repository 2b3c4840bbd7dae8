// medvision::calibrate metrics and calibrators against scikit-learn / numpy / scipy: references
// written by scripts/make_calibration_reference.py (a CTest fixture, MV_CALIBRATE_REF), and
// values from sklearn's documentation for tiny inputs.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "calibrate/calibrate.hpp"
#include "common/error.hpp"
#include "test_data.hpp"

using namespace medvision::calibrate;
using medvision::Error;
using nlohmann::json;

namespace {

json reference() {
  const char* path = std::getenv("MV_CALIBRATE_REF");
  if (path == nullptr || !std::ifstream(path).good()) {
    if (mvtest::in_ci()) FAIL("MV_CALIBRATE_REF missing in CI");
    WARN("SKIPPED: no sklearn reference (MV_CALIBRATE_REF; run through ctest)");
    return nullptr;
  }
  std::ifstream f(path);
  return json::parse(f);
}

template <typename F>
mv_status status_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.status();
  }
  return MV_OK;
}

}  // namespace

TEST_CASE("calibrate: metrics equal sklearn's documented examples", "[calibrate][metrics]") {
  // sklearn.metrics.brier_score_loss / roc_auc_score / log_loss docstrings.
  CHECK(brier_score({0, 1, 1, 0}, {0.1, 0.9, 0.8, 0.3}) == Approx(0.0375).margin(1e-12));
  CHECK(roc_auc({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}) == Approx(0.75).margin(1e-12));
  const Matrix p = Matrix::from(std::vector<double>{.1, .9, .9, .1, .8, .2, .35, .65}, 4, 2);
  CHECK(log_loss(std::vector<int>{1, 0, 0, 1}, p) == Approx(0.21616187468057912).margin(1e-12));
  CHECK(log_loss(std::vector<int>{1, 0, 0, 1}, std::vector<double>{.9, .1, .2, .65}) ==
        Approx(0.21616187468057912).margin(1e-12));
}

TEST_CASE("calibrate: sklearn parity to 1e-6 (brier, log loss, AUROC, ECE)",
          "[calibrate][sklearn]") {
  const json ref = reference();
  if (ref.is_null()) return;
  for (const auto& c : ref["binary"]) {
    INFO("case " << c["name"].get<std::string>());
    const auto y = c["y"].get<std::vector<int>>();
    const auto p = c["p"].get<std::vector<double>>();
    CHECK(std::fabs(brier_score(y, p) - c["brier"].get<double>()) < 1e-6);
    CHECK(std::fabs(log_loss(y, p) - c["log_loss"].get<double>()) < 1e-6);
    CHECK(std::fabs(roc_auc(y, p) - c["roc_auc"].get<double>()) < 1e-6);
    CHECK(std::fabs(ece(y, p) - c["ece"].get<double>()) < 1e-6);
    CHECK(std::fabs(mce(y, p) - c["mce"].get<double>()) < 1e-6);
    CHECK(std::fabs(adaptive_ece(y, p) - c["adaptive_ece"].get<double>()) < 1e-6);
    CHECK(std::fabs(ece(y, p, 10) - c["ece_10"].get<double>()) < 1e-6);
    CHECK(std::fabs(adaptive_ece(y, p, 7) - c["adaptive_ece_7"].get<double>()) < 1e-6);
  }
  const json& mc = ref["multiclass"];
  const auto probs =
      Matrix::from(mc["probs"].get<std::vector<double>>(), mc["y"].size(), mc["k"].get<size_t>());
  CHECK(std::fabs(log_loss(mc["y"].get<std::vector<int>>(), probs) - mc["log_loss"].get<double>()) <
        1e-6);
}

TEST_CASE("calibrate: isotonic equals sklearn IsotonicRegression(out_of_bounds='clip')",
          "[calibrate][sklearn]") {
  const json ref = reference();
  if (ref.is_null()) return;
  const json& iso = ref["isotonic"];
  const IsotonicCurve f =
      IsotonicCurve::fit(iso["x"].get<std::vector<double>>(), iso["y"].get<std::vector<double>>());
  const auto test = iso["test"].get<std::vector<double>>();
  const auto want = iso["predict"].get<std::vector<double>>();
  double worst = 0;
  for (size_t i = 0; i < test.size(); ++i) worst = std::max(worst, std::fabs(f(test[i]) - want[i]));
  CHECK(worst < 1e-6);
  for (size_t i = 1; i < f.y.size(); ++i) CHECK(f.y[i] >= f.y[i - 1]);
}

TEST_CASE("calibrate: temperature fit equals scipy's NLL minimum", "[calibrate][sklearn]") {
  const json ref = reference();
  if (ref.is_null()) return;
  const json& t = ref["temperature"];
  const auto z = t["logits"].get<std::vector<double>>();
  const Calibrator c =
      Calibrator::fit(Method::kTemperature, Activation::kSigmoid, Matrix::from(z, z.size(), 1),
                      t["y"].get<std::vector<int>>());
  CHECK(c.temperature()[0] == Approx(t["temperature"].get<double>()).epsilon(1e-6));
}

TEST_CASE("calibrate: AUROC handles ties exactly and its bootstrap CI is deterministic",
          "[calibrate][metrics]") {
  // All scores tied: 0.5. One positive tied with one negative: half a pair.
  CHECK(roc_auc({0, 1, 0, 1}, {0.3, 0.3, 0.3, 0.3}) == 0.5);
  CHECK(roc_auc({0, 1, 0}, {0.2, 0.5, 0.5}) == 0.75);
  std::mt19937 rng(3);
  std::normal_distribution<double> g;
  std::vector<int> y(300);
  std::vector<double> s(300);
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = i % 3 == 0;
    s[i] = g(rng) + (y[i] ? 1.0 : 0.0);
  }
  const Interval a = roc_auc_ci(y, s, 500, 0.95, 11), b = roc_auc_ci(y, s, 500, 0.95, 11);
  CHECK(a.lo == b.lo);
  CHECK(a.hi == b.hi);
  CHECK(a.lo < a.estimate);
  CHECK(a.estimate < a.hi);
  CHECK(a.resamples == 500);
  CHECK(a.hi - a.lo < 0.2);
}

TEST_CASE("calibrate: bad input is MV_ERR_INVALID_ARGUMENT", "[calibrate][errors]") {
  CHECK(status_of([] { roc_auc({1, 1, 1}, {0.1, 0.2, 0.3}); }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([] { roc_auc({0, 1}, {0.1}); }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([] { brier_score({0, 1}, {0.1, 1.5}); }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([] { brier_score({0, 2}, {0.1, 0.5}); }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([] { ece({}, {}); }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([] {
          Matrix::from(std::vector<float>{1, 2, 3}, 2, 2);
        }) == MV_ERR_INVALID_ARGUMENT);
  const Matrix z = Matrix::from(std::vector<double>{0.1, -0.2, 0.3, 0.5}, 2, 2);
  CHECK(status_of([&] {
          Calibrator::fit(Method::kTemperature, Activation::kSigmoid, z, {0, 1});
        }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([&] {
          Calibrator::fit(Method::kPlatt, Activation::kSoftmax, z, {0, 2});
        }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([] {
          Calibrator::from_json(json{{"method", "magic"}, {"labels", 1}});
        }) == MV_ERR_INVALID_ARGUMENT);
  CHECK(status_of([] {
          Calibrator::from_json(
              json{{"method", "temperature"}, {"labels", 2}, {"temperature", {1.0}}});
        }) == MV_ERR_INVALID_ARGUMENT);
  try {
    roc_auc({0, 0}, {0.1, 0.2});
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("single class") != std::string::npos);
  }
}

namespace {

// Synthetic validation data from a calibrated model, then made over-confident by `scale`.
struct Synthetic {
  Matrix logits;
  std::vector<int> labels;
};

Synthetic sigmoid_data(size_t n, const std::vector<double>& scales, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0.0, 1.5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Synthetic s{Matrix(n, scales.size()), std::vector<int>(n * scales.size())};
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < scales.size(); ++j) {
      const double z = g(rng) - 0.5;
      s.labels[i * scales.size() + j] = u(rng) < sigmoid(z) ? 1 : 0;
      s.logits(i, j) = z * scales[j];
    }
  }
  return s;
}

Synthetic softmax_data(size_t n, size_t k, double scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0.0, 1.2);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Synthetic s{Matrix(n, k), std::vector<int>(n)};
  for (size_t i = 0; i < n; ++i) {
    Matrix z(1, k);
    for (size_t j = 0; j < k; ++j) z(0, j) = g(rng) + (j == 0 ? 0.8 : 0.0);
    const Matrix p = activate(z, Activation::kSoftmax);
    double r = u(rng), acc = 0;
    int y = static_cast<int>(k) - 1;
    for (size_t j = 0; j < k; ++j) {
      acc += p(0, j);
      if (r < acc) {
        y = static_cast<int>(j);
        break;
      }
    }
    s.labels[i] = y;
    for (size_t j = 0; j < k; ++j) s.logits(i, j) = z(0, j) * scale;
  }
  return s;
}

}  // namespace

TEST_CASE("calibrate: temperature recovers a known T per label and lowers ECE",
          "[calibrate][temperature]") {
  const Synthetic d = sigmoid_data(20000, {2.5, 0.6, 1.0}, 1);
  const Calibrator c =
      Calibrator::fit(Method::kTemperature, Activation::kSigmoid, d.logits, d.labels);
  REQUIRE(c.temperature().size() == 3);
  CHECK(c.temperature()[0] == Approx(2.5).epsilon(0.05));
  CHECK(c.temperature()[1] == Approx(0.6).epsilon(0.05));
  CHECK(c.temperature()[2] == Approx(1.0).epsilon(0.05));
  CHECK(c.warnings().empty());
  // Held-out data from the same model: ECE falls after scaling.
  const Synthetic test = sigmoid_data(20000, {2.5, 0.6, 1.0}, 2);
  const Matrix before = activate(test.logits, Activation::kSigmoid);
  const Matrix after = c.probabilities(test.logits);
  const auto y = binary_outcomes(test.logits, test.labels, Activation::kSigmoid);
  for (size_t j = 0; j < 2; ++j) {
    CHECK(ece(y[j], after.column(j)) < ece(y[j], before.column(j)));
    CHECK(ece(y[j], after.column(j)) < 0.02);
    CHECK(log_loss(y[j], after.column(j)) < log_loss(y[j], before.column(j)));
  }

  const Synthetic sm = softmax_data(20000, 4, 3.0, 3);
  const Calibrator cs =
      Calibrator::fit(Method::kTemperature, Activation::kSoftmax, sm.logits, sm.labels);
  REQUIRE(cs.temperature().size() == 1);
  CHECK(cs.temperature()[0] == Approx(3.0).epsilon(0.05));
  const Synthetic smt = softmax_data(20000, 4, 3.0, 4);
  const TopLabel tb = top_label(activate(smt.logits, Activation::kSoftmax), smt.labels);
  const TopLabel ta = top_label(cs.probabilities(smt.logits), smt.labels);
  CHECK(ece(ta.correct, ta.confidence) < ece(tb.correct, tb.confidence));
  CHECK(log_loss(smt.labels, cs.probabilities(smt.logits)) <
        log_loss(smt.labels, activate(smt.logits, Activation::kSoftmax)));
}

TEST_CASE("calibrate: degenerate labels keep the identity and warn", "[calibrate][temperature]") {
  const Matrix z = Matrix::from(std::vector<double>{1, 2, -1, 0.5, 3, 4}, 3, 2);
  const Calibrator c = Calibrator::fit(Method::kTemperature, Activation::kSigmoid, z,
                                       {1, 0, 1, 1, 1, 0});  // label 0: all positive
  CHECK(c.temperature()[0] == 1.0);
  REQUIRE_FALSE(c.warnings().empty());
  CHECK(c.warnings()[0].find("label 0") != std::string::npos);
}

TEST_CASE("calibrate: Platt recovers a known affine map; isotonic is monotone and calibrated",
          "[calibrate][platt][isotonic]") {
  // Observed logit s, true logit a * s + b with a = 0.5, b = -0.7.
  std::mt19937 rng(5);
  std::normal_distribution<double> g(0.0, 3.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const size_t n = 30000;
  Matrix s(n, 1);
  std::vector<int> y(n);
  for (size_t i = 0; i < n; ++i) {
    s(i, 0) = g(rng);
    y[i] = u(rng) < sigmoid(0.5 * s(i, 0) - 0.7) ? 1 : 0;
  }
  const Calibrator platt = Calibrator::fit(Method::kPlatt, Activation::kSigmoid, s, y);
  CHECK(platt.platt_a()[0] == Approx(0.5).margin(0.03));
  CHECK(platt.platt_b()[0] == Approx(-0.7).margin(0.05));
  CHECK(platt.warnings().empty());

  FitOptions no_smoothing;
  no_smoothing.platt_target_smoothing = false;
  const Calibrator platt2 =
      Calibrator::fit(Method::kPlatt, Activation::kSigmoid, s, y, no_smoothing);
  CHECK(platt2.platt_a()[0] == Approx(platt.platt_a()[0]).margin(1e-3));

  const Calibrator iso = Calibrator::fit(Method::kIsotonic, Activation::kSigmoid, s, y);
  const Matrix p = iso.probabilities(s);
  CHECK(ece(y, p.column(0)) < 1e-9);  // isotonic fits are calibrated in-sample
  double last = -1;
  for (double v = -12; v <= 12; v += 0.25) {
    const double q = iso.probabilities(std::vector<double>{v})[0];
    CHECK(q >= last);
    last = q;
  }

  // Softmax: one-vs-rest per class, rows renormalised.
  const Synthetic sm = softmax_data(3000, 3, 2.0, 9);
  for (Method m : {Method::kPlatt, Method::kIsotonic}) {
    const Matrix q =
        Calibrator::fit(m, Activation::kSoftmax, sm.logits, sm.labels).probabilities(sm.logits);
    for (size_t i = 0; i < q.rows; i += 97) {
      CHECK(q(i, 0) + q(i, 1) + q(i, 2) == Approx(1.0).margin(1e-12));
    }
  }
}

TEST_CASE("calibrate: calibrators round-trip through JSON", "[calibrate][json]") {
  const Synthetic d = sigmoid_data(2000, {2.0, 1.0}, 7);
  FitOptions opts;
  opts.date = "2024-06-01";
  opts.data = "synthetic";
  for (Method m : {Method::kTemperature, Method::kPlatt, Method::kIsotonic}) {
    const Calibrator c = Calibrator::fit(m, Activation::kSigmoid, d.logits, d.labels, opts);
    const json j = json::parse(c.to_json().dump());
    CHECK(j["method"] == to_string(m));
    CHECK(j["fitted_on"]["n"] == 2000);
    CHECK(j["fitted_on"]["data"] == "synthetic");
    const Calibrator back = Calibrator::from_json(j);
    const Matrix a = c.probabilities(d.logits), b = back.probabilities(d.logits);
    for (size_t k = 0; k < a.values.size(); ++k) REQUIRE(a.values[k] == b.values[k]);
    CHECK(back.to_json() == j);
  }
}
