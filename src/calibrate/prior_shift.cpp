#include "calibrate/prior_shift.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "calibrate/calibrate.hpp"
#include "calibrate/drift.hpp"
#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Saerens et al. eq. 2.4 for one binary label: the probability p, computed under prior ps,
// re-expressed under prior pt.
double adjust_binary(double p, double ps, double pt) {
  const double a = pt / ps * p;
  const double b = (1.0 - pt) / (1.0 - ps) * (1.0 - p);
  return a / (a + b);
}

// Probabilities must be finite and in [0, 1]; rounding up to 1e-9 outside is clipped.
Matrix checked_probabilities(const Matrix& probs, Activation activation) {
  if (probs.rows == 0 || probs.cols == 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "prior shift: no images (N = 0)");
  }
  Matrix p = probs;
  for (size_t i = 0; i < p.rows; ++i) {
    double sum = 0;
    for (size_t j = 0; j < p.cols; ++j) {
      double& v = p(i, j);
      if (!std::isfinite(v) || v < -1e-9 || v > 1.0 + 1e-9) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "prior shift: image " + std::to_string(i) +
                                                 ", label " + std::to_string(j) + ": probability " +
                                                 fmt(v) + " is not finite or outside [0, 1]");
      }
      v = std::min(1.0, std::max(0.0, v));
      sum += v;
    }
    if (activation == Activation::kSoftmax) {
      if (std::fabs(sum - 1.0) > 1e-6) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "prior shift: image " + std::to_string(i) +
                                                 ": softmax probabilities sum to " + fmt(sum) +
                                                 ", not 1");
      }
      for (size_t j = 0; j < p.cols; ++j) p(i, j) /= sum;
    }
  }
  return p;
}

void check_prior(const std::vector<double>& prior, size_t labels, Activation activation,
                 const char* what) {
  if (prior.size() != labels) {
    throw Error(MV_ERR_INVALID_ARGUMENT, std::string("prior shift: ") + what + " has " +
                                             std::to_string(prior.size()) + " values for " +
                                             std::to_string(labels) + " labels");
  }
  double sum = 0;
  for (double v : prior) {
    if (!(v > 0.0 && v < 1.0)) {
      throw Error(MV_ERR_INVALID_ARGUMENT, std::string("prior shift: ") + what + " value " +
                                               fmt(v) + " is not inside (0, 1)");
    }
    sum += v;
  }
  if (activation == Activation::kSoftmax && std::fabs(sum - 1.0) > 1e-6) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                std::string("prior shift: ") + what + " sums to " + fmt(sum) + ", not 1");
  }
}

struct BinaryFit {
  double prior = 0;
  int iterations = 0;
  bool converged = false;
  bool clamped = false;
  double ll_after = 0;
};

double binary_log_likelihood(const std::vector<double>& p, double ps, double pt) {
  double ll = 0;
  for (double v : p) ll += std::log(pt / ps * v + (1.0 - pt) / (1.0 - ps) * (1.0 - v));
  return ll;
}

BinaryFit fit_binary(const std::vector<double>& p, double ps, const PriorShiftOptions& o) {
  BinaryFit f;
  double pi = ps;
  const double n = to_double(p.size());
  for (int it = 1; it <= o.max_iterations; ++it) {
    double sum = 0;
    for (double v : p) sum += adjust_binary(v, ps, pi);  // E-step
    double next = sum / n;                               // M-step
    if (next < o.clamp || next > 1.0 - o.clamp) {
      next = std::min(1.0 - o.clamp, std::max(o.clamp, next));
      f.clamped = true;
    }
    const double delta = std::fabs(next - pi);
    pi = next;
    f.iterations = it;
    if (delta < o.tolerance) {
      f.converged = true;
      break;
    }
  }
  f.prior = pi;
  f.ll_after = binary_log_likelihood(p, ps, pi);
  return f;
}

double softmax_log_likelihood(const Matrix& p, const std::vector<double>& ps,
                              const std::vector<double>& pt) {
  double ll = 0;
  for (size_t i = 0; i < p.rows; ++i) {
    double s = 0;
    for (size_t k = 0; k < p.cols; ++k) s += pt[k] / ps[k] * p(i, k);
    ll += std::log(s);
  }
  return ll;
}

// Q(a, x) by the series of P (x < a + 1) or Lentz's continued fraction (x >= a + 1).
double gamma_q(double a, double x) {
  if (x <= 0) return 1.0;
  const double lg = std::lgamma(a);
  if (x < a + 1.0) {
    double ap = a, sum = 1.0 / a, del = sum;
    for (int n = 0; n < 1000; ++n) {
      ap += 1.0;
      del *= x / ap;
      sum += del;
      if (std::fabs(del) < std::fabs(sum) * 1e-16) break;
    }
    return std::max(0.0, 1.0 - sum * std::exp(-x + a * std::log(x) - lg));
  }
  const double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < 1e-16) break;
  }
  return std::exp(-x + a * std::log(x) - lg) * h;
}

double number_or_nan(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>()
                                               : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

double chi_square_survival(double x, size_t dof) {
  if (dof == 0) throw Error(MV_ERR_INVALID_ARGUMENT, "chi-square: 0 degrees of freedom");
  if (!(x > 0)) return 1.0;
  return std::min(1.0, std::max(0.0, gamma_q(0.5 * to_double(dof), 0.5 * x)));
}

json PriorShiftEstimate::to_json() const {
  json j = {
      {"method", "em_saerens2002"},
      {"activation", calibrate::to_string(activation)},
      {"source_prior", source_prior},
      {"target_prior", target_prior},
      {"images", n},
      {"iterations", iterations},
      {"converged", converged},
      {"log_likelihood", {{"before", log_likelihood_before}, {"after", log_likelihood_after}}},
      {"lr_test", {{"statistic", lr_statistic}, {"dof", dof}, {"p_value", lr_p_value}}},
      {"warnings", warnings}};
  if (activation == Activation::kSigmoid) {
    json labels = json::array();
    for (size_t k = 0; k < label_lr_statistic.size(); ++k) {
      labels.push_back(
          {{"iterations", label_iterations[k]},
           {"lr_test",
            {{"statistic", label_lr_statistic[k]}, {"dof", 1}, {"p_value", label_lr_p_value[k]}}}});
    }
    j["labels"] = labels;
  }
  return j;
}

PriorShiftEstimate estimate_prior_shift(const Matrix& probs, Activation activation,
                                        const std::vector<double>& source_prior,
                                        const PriorShiftOptions& options) {
  if (!(options.tolerance > 0) || options.max_iterations < 1 ||
      !(options.clamp > 0 && options.clamp < 0.5)) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "prior shift: tolerance and clamp must be > 0 (clamp < 0.5), max_iterations >= 1");
  }
  const Matrix p = checked_probabilities(probs, activation);
  if (activation == Activation::kSoftmax && p.cols < 2) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "prior shift: a softmax model needs two classes or more");
  }
  check_prior(source_prior, p.cols, activation, "the source prior");
  PriorShiftEstimate e;
  e.activation = activation;
  e.n = p.rows;
  e.source_prior = source_prior;
  if (activation == Activation::kSigmoid) {
    e.converged = true;
    e.dof = p.cols;
    for (size_t j = 0; j < p.cols; ++j) {
      const BinaryFit f = fit_binary(p.column(j), source_prior[j], options);
      e.target_prior.push_back(f.prior);
      e.iterations = std::max(e.iterations, f.iterations);
      e.converged = e.converged && f.converged;
      e.label_iterations.push_back(f.iterations);
      // At the source prior every term is log 1 = 0.
      const double stat = std::max(0.0, 2.0 * f.ll_after);
      e.label_lr_statistic.push_back(stat);
      e.label_lr_p_value.push_back(chi_square_survival(stat, 1));
      e.log_likelihood_after += f.ll_after;
      if (f.clamped) {
        e.warnings.push_back("label " + std::to_string(j) + ": the prior estimate reached " +
                             fmt(f.prior) + ", clamped to [" + fmt(options.clamp) + ", 1 - " +
                             fmt(options.clamp) +
                             "]: the images look like one class only (or the model is "
                             "miscalibrated here)");
      }
      if (!f.converged) {
        e.warnings.push_back("label " + std::to_string(j) + ": EM did not converge in " +
                             std::to_string(options.max_iterations) + " iterations");
      }
    }
  } else {
    const size_t k_count = p.cols;
    e.dof = k_count - 1;
    std::vector<double> pi = source_prior, next(k_count);
    bool clamped = false;
    for (int it = 1; it <= options.max_iterations; ++it) {
      std::fill(next.begin(), next.end(), 0.0);
      for (size_t i = 0; i < p.rows; ++i) {  // E-step
        double s = 0;
        for (size_t k = 0; k < k_count; ++k) s += pi[k] / source_prior[k] * p(i, k);
        for (size_t k = 0; k < k_count; ++k) next[k] += pi[k] / source_prior[k] * p(i, k) / s;
      }
      double total = 0;
      for (double& v : next) {  // M-step
        v /= to_double(p.rows);
        if (v < options.clamp) {
          v = options.clamp;
          clamped = true;
        }
        total += v;
      }
      double delta = 0;
      for (size_t k = 0; k < k_count; ++k) {
        next[k] /= total;
        delta = std::max(delta, std::fabs(next[k] - pi[k]));
      }
      pi = next;
      e.iterations = it;
      if (delta < options.tolerance) {
        e.converged = true;
        break;
      }
    }
    e.target_prior = pi;
    e.log_likelihood_after = softmax_log_likelihood(p, source_prior, pi);
    if (clamped) {
      e.warnings.push_back("a class prior estimate fell below " + fmt(options.clamp) +
                           " and was clamped: the images hold (almost) none of it");
    }
    if (!e.converged) {
      e.warnings.push_back("EM did not converge in " + std::to_string(options.max_iterations) +
                           " iterations");
    }
  }
  e.lr_statistic = std::max(0.0, 2.0 * (e.log_likelihood_after - e.log_likelihood_before));
  e.lr_p_value = chi_square_survival(e.lr_statistic, e.dof);
  return e;
}

PriorShift::PriorShift(Activation activation, std::vector<double> source,
                       std::vector<double> target)
    : activation_(activation), source_(std::move(source)), target_(std::move(target)) {
  check_prior(source_, source_.size(), activation_, "the source prior");
  check_prior(target_, source_.size(), activation_, "the target prior");
}

PriorShift PriorShift::from_json(const json& j, Activation activation, size_t labels) {
  const auto vec = [&](const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_array()) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  std::string("calibration.prior_shift: needs a \"") + key + "\" array");
    }
    std::vector<double> v;
    for (const auto& x : j[key]) {
      if (!x.is_number()) {
        throw Error(MV_ERR_INVALID_ARGUMENT,
                    std::string("calibration.prior_shift.") + key + ": numbers only");
      }
      v.push_back(x.get<double>());
    }
    if (v.size() != labels) {
      throw Error(MV_ERR_INVALID_ARGUMENT, std::string("calibration.prior_shift.") + key + ": " +
                                               std::to_string(v.size()) + " values for " +
                                               std::to_string(labels) + " labels");
    }
    return v;
  };
  return PriorShift(activation, vec("source_prior"), vec("target_prior"));
}

double PriorShift::log_odds_ratio(size_t label) const {
  const double ps = source_.at(label), pt = target_.at(label);
  return std::log(pt / ps) - std::log((1.0 - pt) / (1.0 - ps));
}

double PriorShift::map(size_t label, double p) const {
  return adjust_binary(p, source_.at(label), target_.at(label));
}

std::vector<double> PriorShift::apply(const std::vector<double>& row) const {
  if (row.size() != source_.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "prior shift: expected " + std::to_string(source_.size()) + " probabilities");
  }
  std::vector<double> out(row.size());
  if (activation_ == Activation::kSigmoid) {
    for (size_t k = 0; k < row.size(); ++k) out[k] = map(k, row[k]);
    return out;
  }
  double s = 0;
  for (size_t k = 0; k < row.size(); ++k) {
    out[k] = target_[k] / source_[k] * row[k];
    s += out[k];
  }
  if (s > 0) {
    for (double& v : out) v /= s;
  }
  return out;
}

Matrix PriorShift::apply(const Matrix& probs) const {
  Matrix out = probs;
  for (size_t i = 0; i < probs.rows; ++i) {
    const std::vector<double> row(
        probs.values.begin() + static_cast<std::ptrdiff_t>(i * probs.cols),
        probs.values.begin() + static_cast<std::ptrdiff_t>((i + 1) * probs.cols));
    const std::vector<double> r = apply(row);
    std::copy(r.begin(), r.end(), out.values.begin() + static_cast<std::ptrdiff_t>(i * probs.cols));
  }
  return out;
}

json source_thresholds(const json& thresholds) {
  if (!thresholds.is_object()) return thresholds;
  json out = thresholds;
  for (auto it = out.begin(); it != out.end(); ++it) {
    json& e = it.value();
    if (!e.is_object() || !e.contains("prior_shift") || !e["prior_shift"].is_object()) continue;
    const json ps = e["prior_shift"];
    if (ps.contains("source_threshold")) e["threshold"] = ps["source_threshold"];
    if (ps.contains("source_refer_band")) e["refer_band"] = ps["source_refer_band"];
    e.erase("prior_shift");
  }
  return out;
}

json shift_thresholds(const json& thresholds, const std::vector<std::string>& labels,
                      const PriorShift& shift) {
  if (!thresholds.is_object()) return thresholds;
  json out = source_thresholds(thresholds);
  for (size_t k = 0; k < labels.size(); ++k) {
    if (!out.contains(labels[k])) continue;
    json& e = out[labels[k]];
    if (!e.is_object() || !e.contains("threshold") || !e["threshold"].is_number()) continue;
    const double t = e["threshold"].get<double>();
    json rec = {{"source_threshold", t},
                {"source_refer_band", e.contains("refer_band") ? e["refer_band"] : json()}};
    if (shift.activation() == Activation::kSoftmax) {
      rec["decided_on"] = "source_prior_probabilities";
      e["prior_shift"] = rec;
      continue;
    }
    // Cuts outside (0, 1) (the "all negative" cut just above the largest score) stay put.
    const auto mapped = [&](double v) { return v > 0.0 && v < 1.0 ? shift.map(k, v) : v; };
    e["threshold"] = mapped(t);
    if (e.contains("refer_band") && e["refer_band"].is_array() && e["refer_band"].size() == 2) {
      e["refer_band"] = {mapped(e["refer_band"][0].get<double>()),
                         mapped(e["refer_band"][1].get<double>())};
    }
    const double pi = shift.target()[k];
    const double se = number_or_nan(e, "sensitivity"), sp = number_or_nan(e, "specificity");
    rec["prevalence"] = pi;
    rec["ppv"] = nullptr;
    rec["npv"] = nullptr;
    if (std::isfinite(se) && std::isfinite(sp)) {
      const double tp = se * pi, fp = (1.0 - sp) * (1.0 - pi);
      const double tn = sp * (1.0 - pi), fn = (1.0 - se) * pi;
      if (tp + fp > 0) rec["ppv"] = tp / (tp + fp);
      if (tn + fn > 0) rec["npv"] = tn / (tn + fn);
    }
    rec["decided_on"] = "shifted_probabilities";
    e["prior_shift"] = rec;
  }
  return out;
}

std::vector<double> recorded_source_prior(const json& calibration, size_t labels,
                                          const std::string& where) {
  if (!calibration.is_object() || !calibration.contains("method")) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                where +
                    ": the package is not calibrated (run medvision calibrate on labelled "
                    "images first; the prior shift corrects calibrated probabilities)");
  }
  const json fo = calibration.value("fitted_on", json());
  if (!fo.is_object() || !fo.contains("n") || !fo["n"].is_number() || !fo.contains("positives") ||
      !fo["positives"].is_array()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                where +
                    ": the calibration records no source prior (calibration.fitted_on.n and "
                    ".positives; a package calibrated by an older medvision): give the source "
                    "prior explicitly (--source-prior / source_prior)");
  }
  const double n = fo["n"].get<double>();
  std::vector<double> prior;
  for (const auto& v : fo["positives"]) {
    if (!v.is_number() || !(n > 0)) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  where + ": calibration.fitted_on.positives is malformed");
    }
    prior.push_back(v.get<double>() / n);
  }
  if (prior.size() != labels) {
    throw Error(MV_ERR_INVALID_ARGUMENT, where + ": calibration.fitted_on.positives has " +
                                             std::to_string(prior.size()) + " values for " +
                                             std::to_string(labels) + " labels");
  }
  for (size_t k = 0; k < prior.size(); ++k) {
    if (!(prior[k] > 0 && prior[k] < 1)) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  where + ": label " + std::to_string(k) +
                      " had no positives or no negatives in the calibration set (prior " +
                      fmt(prior[k]) + "): no prior shift can be estimated for it");
    }
  }
  return prior;
}

json label_shift_fit(const json& drift, const Matrix& logits, const Calibrator& calibrator,
                     const PriorShift& shift) {
  if (shift.activation() != Activation::kSigmoid || !drift.is_object() ||
      !drift.contains("quantiles") || !drift.contains("n")) {
    return nullptr;
  }
  const DriftReference ref = DriftReference::from_json(drift);  // validates the shape
  const size_t labels = logits.cols;
  if (ref.num_labels() != labels) return nullptr;
  const auto& quantiles = drift["quantiles"];
  const size_t knots = DriftReference::kQuantiles;
  // Calibrated probability at each interval's midpoint, every label at once (per-label maps).
  Matrix mids(knots - 1, labels);
  for (size_t j = 0; j < labels; ++j) {
    for (size_t k = 0; k + 1 < knots; ++k) {
      mids(k, j) = 0.5 * (quantiles[j][k].get<double>() + quantiles[j][k + 1].get<double>());
    }
  }
  const Matrix pm = calibrator.probabilities(mids);
  const double m = to_double(logits.rows);
  json out = {{"labels", json::array()}};
  for (size_t j = 0; j < labels; ++j) {
    std::vector<double> q(knots), cdf(knots, 0.0), w(knots - 1);
    for (size_t k = 0; k < knots; ++k) q[k] = quantiles[j][k].get<double>();
    const double ps = shift.source()[j], pt = shift.target()[j];
    double total = 0, total2 = 0;
    for (size_t k = 0; k + 1 < knots; ++k) {
      const double p = pm(k, j);
      w[k] = pt / ps * p + (1.0 - pt) / (1.0 - ps) * (1.0 - p);
      total += w[k];
      total2 += w[k] * w[k];
    }
    for (size_t k = 1; k < knots; ++k) cdf[k] = cdf[k - 1] + w[k - 1] / total;
    // The reweighted reference CDF: piecewise linear through (q_k, cdf_k); left/right limits at
    // a knot shared by several quantiles (ties) differ.
    const auto g = [&](double x, bool left) {
      if (x < q.front() || (left && x == q.front())) return 0.0;
      if (x > q.back() || (!left && x == q.back())) return 1.0;
      const auto it =
          left ? std::lower_bound(q.begin(), q.end(), x) : std::upper_bound(q.begin(), q.end(), x);
      const size_t hi = static_cast<size_t>(it - q.begin());
      if (hi == 0) return 0.0;
      if (hi >= knots) return 1.0;
      const size_t lo = hi - 1;
      const double span = q[hi] - q[lo];
      return span > 0 ? cdf[lo] + (cdf[hi] - cdf[lo]) * (x - q[lo]) / span
                      : (left ? cdf[lo] : cdf[hi]);
    };
    std::vector<double> b = logits.column(j);
    std::sort(b.begin(), b.end());
    std::vector<double> points = b;
    points.insert(points.end(), q.begin(), q.end());
    double d = 0;
    for (double x : points) {
      const double fr =
          to_double(static_cast<size_t>(std::upper_bound(b.begin(), b.end(), x) - b.begin())) / m;
      const double fl =
          to_double(static_cast<size_t>(std::lower_bound(b.begin(), b.end(), x) - b.begin())) / m;
      d = std::max({d, std::fabs(fr - g(x, false)), std::fabs(fl - g(x, true))});
    }
    const double kish = to_double(ref.n()) * total * total / (to_double(knots - 1) * total2);
    const double en = kish * m / (kish + m), sqrt_en = std::sqrt(en);
    const double p_value = kolmogorov_survival((sqrt_en + 0.12 + 0.11 / sqrt_en) * d);
    out["labels"].push_back({{"ks", d}, {"p_value", p_value}, {"consistent", p_value >= 0.01}});
  }
  return out;
}

PackageWritten write_prior_shift_package(const PackageSource& source, const PriorShiftPackage& p,
                                         const std::string& version, const std::string& out_dir) {
  namespace fs = std::filesystem;
  copy_package_files(source, out_dir);
  const fs::path out(out_dir);
  PackageWritten w;
  w.dir = out_dir;
  w.report = p.report;
  w.manifest = source.manifest;
  w.manifest["version"] = version.empty() ? source.version + "+prior" : version;
  w.manifest["calibration"]["prior_shift"] = p.prior_shift;
  w.manifest["thresholds"] = p.thresholds;
  write_json_file((out / "manifest.json").string(), w.manifest);
  write_json_file((out / "prior-shift-report.json").string(), p.report);
  return w;
}

}  // namespace medvision::calibrate
