#include "calibrate/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>
#include <random>

#include "calibrate/calibrator.hpp"
#include "calibrate/conformal.hpp"
#include "calibrate/metrics.hpp"
#include "calibrate/operating_point.hpp"
#include "calibrate/prior_shift.hpp"
#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_pair(const std::vector<int>& y, size_t n, const char* what) {
  if (y.empty() || y.size() != n) {
    throw Error(MV_ERR_INVALID_ARGUMENT, std::string(what) + ": empty or mismatched inputs");
  }
  for (int v : y) {
    if (v != 0 && v != 1) throw Error(MV_ERR_INVALID_ARGUMENT, std::string(what) + ": y not 0/1");
  }
}

// 1-based mid-ranks of v (ties get the mean of their ranks).
std::vector<double> midranks(const std::vector<double>& v) {
  const size_t n = v.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && v[order[j]] == v[order[i]]) ++j;
    const double mid = 0.5 * (to_double(i + 1) + to_double(j));
    for (size_t k = i; k < j; ++k) r[order[k]] = mid;
    i = j;
  }
  return r;
}

// Structural components of one score vector (Sun & Xu 2014): v10 per positive, v01 per negative.
struct Components {
  double auc = 0;
  std::vector<double> v10, v01;
};

Components components(const std::vector<int>& y, const std::vector<double>& s) {
  std::vector<double> pos, neg;
  for (size_t i = 0; i < y.size(); ++i) (y[i] ? pos : neg).push_back(s[i]);
  if (pos.empty() || neg.empty()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "delong: needs both classes");
  }
  const double m = to_double(pos.size()), n = to_double(neg.size());
  const auto tz = midranks(s);
  const auto tx = midranks(pos);
  const auto ty = midranks(neg);
  Components c;
  size_t ip = 0, in = 0;
  double sum_pos = 0;
  c.v10.resize(pos.size());
  c.v01.resize(neg.size());
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i]) {
      c.v10[ip] = (tz[i] - tx[ip]) / n;
      sum_pos += tz[i];
      ++ip;
    } else {
      c.v01[in] = 1.0 - (tz[i] - ty[in]) / m;
      ++in;
    }
  }
  c.auc = (sum_pos - m * (m + 1) / 2) / (m * n);
  return c;
}

double covariance(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = a.size();
  if (n < 2) return 0;
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / to_double(n);
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / to_double(n);
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += (a[i] - ma) * (b[i] - mb);
  return s / to_double(n - 1);
}

// numpy.percentile(v, q) with linear interpolation; sorts v (metrics' percentile_sorted).
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  return percentile_sorted(v, q);
}

double ratio(size_t a, size_t b) { return b == 0 ? kNaN : to_double(a) / to_double(b); }

json confusion_json(const Confusion& c) {
  return {{"threshold", c.threshold},
          {"tp", c.tp},
          {"fp", c.fp},
          {"tn", c.tn},
          {"fn", c.fn},
          {"sensitivity", c.sensitivity},
          {"specificity", c.specificity},
          {"ppv", c.ppv},
          {"npv", c.npv},
          {"accuracy", c.accuracy}};
}

json calibration_json(const std::vector<int>& y, const std::vector<double>& p, size_t bins) {
  const auto equal_width = calibration_error(y, p, bins, Binning::kEqualWidth);
  json b = json::array();
  for (const auto& x : equal_width.bins) {
    b.push_back({{"lo", x.lo},
                 {"hi", x.hi},
                 {"count", x.count},
                 {"confidence", x.confidence},
                 {"accuracy", x.accuracy}});
  }
  return {{"brier", brier_score(y, p)}, {"log_loss", log_loss(y, p)},
          {"ece", equal_width.ece},     {"adaptive_ece", adaptive_ece(y, p, bins)},
          {"mce", equal_width.mce},     {"reliability", b}};
}

// Every k-th point of a curve (and the last), k chosen to keep about `max_points`.
json thin_curve(const Curve& c, size_t max_points, const char* xname, const char* yname) {
  const size_t n = c.x.size();
  const size_t step = max_points == 0 || n <= max_points ? 1 : (n + max_points - 1) / max_points;
  json xs = json::array(), ys = json::array();
  for (size_t i = 0; i < n; i += step) {
    xs.push_back(c.x[i]);
    ys.push_back(c.y[i]);
    if (i + step >= n && i != n - 1) {
      xs.push_back(c.x[n - 1]);
      ys.push_back(c.y[n - 1]);
    }
  }
  return {{xname, xs}, {yname, ys}};
}

bool both_classes(const std::vector<int>& y) {
  const size_t pos = static_cast<size_t>(std::count(y.begin(), y.end(), 1));
  return pos > 0 && pos < y.size();
}

// What one model says about one label on the test set.
struct LabelScores {
  std::vector<double> raw, calibrated, decision;  // decision = calibrated when calibrated
  bool has_point = false;
  OperatingPoint point;
};

struct Prepared {
  const ModelScores* model = nullptr;
  bool calibrated = false;
  Matrix raw, calibrated_probs;
  std::vector<LabelScores> labels;
  std::optional<Conformal> conformal;
};

Prepared prepare(const ModelScores& m, Activation activation,
                 const std::vector<std::string>& names) {
  Prepared p;
  p.model = &m;
  p.raw = activate(m.logits, activation);
  p.calibrated = m.calibration.is_object() && m.calibration.contains("method");
  if (p.calibrated) {
    const Calibrator cal = Calibrator::from_json(m.calibration);
    if (cal.num_labels() != names.size() || cal.activation() != activation) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "evaluate: model '" + m.name + "': calibration does not match its labels");
    }
    p.calibrated_probs = cal.probabilities(m.logits);
    // A package adapted to a site's label priors (medvision calibrate --prior-shift): its
    // probabilities are the calibrated ones re-expressed at the estimated priors.
    if (m.calibration.contains("prior_shift") && m.calibration["prior_shift"].is_object()) {
      p.calibrated_probs =
          PriorShift::from_json(m.calibration["prior_shift"], activation, names.size())
              .apply(p.calibrated_probs);
    }
    if (m.calibration.contains("conformal") && m.calibration["conformal"].is_object()) {
      p.conformal = Conformal::from_json(m.calibration["conformal"], activation);
    }
  }
  p.labels.resize(names.size());
  for (size_t j = 0; j < names.size(); ++j) {
    auto& l = p.labels[j];
    l.raw = p.raw.column(j);
    if (p.calibrated) l.calibrated = p.calibrated_probs.column(j);
    l.decision = p.calibrated ? l.calibrated : l.raw;
    if (m.thresholds.is_object() && m.thresholds.contains(names[j])) {
      l.point = OperatingPoint::from_json(m.thresholds[names[j]]);
      l.has_point = true;
    }
  }
  return p;
}

json label_json(const Prepared& p, size_t j, const std::vector<int>& y, const EvaluateOptions& o) {
  const LabelScores& l = p.labels[j];
  const size_t pos = static_cast<size_t>(std::count(y.begin(), y.end(), 1));
  json r;
  r["positives"] = pos;
  r["negatives"] = y.size() - pos;
  const bool two = both_classes(y);
  if (two) {
    const Interval ci = roc_auc_ci(y, l.decision, o.bootstrap, o.level, o.seed);
    r["auroc"] = {{"estimate", ci.estimate},
                  {"lo", ci.lo},
                  {"hi", ci.hi},
                  {"resamples", ci.resamples},
                  {"delong_se", std::sqrt(delong_variance(y, l.decision))}};
    r["average_precision"] = average_precision(y, l.decision);
    r["roc_curve"] = thin_curve(roc_curve(y, l.decision), o.max_curve_points, "fpr", "tpr");
    r["pr_curve"] = thin_curve(precision_recall_curve(y, l.decision), o.max_curve_points, "recall",
                               "precision");
  } else {
    r["auroc"] = nullptr;
    r["average_precision"] = nullptr;
    r["roc_curve"] = nullptr;
    r["pr_curve"] = nullptr;
  }
  r["raw"] = calibration_json(y, l.raw, o.bins);
  r["calibrated"] = p.calibrated ? calibration_json(y, l.calibrated, o.bins) : json(nullptr);

  r["operating_point"] = nullptr;
  r["refer"] = nullptr;
  if (l.has_point) {
    const Confusion c = confusion_at(y, l.decision, l.point.threshold);
    json op = confusion_json(c);
    op["rule"] = to_string(l.point.rule);
    r["operating_point"] = op;
    if (l.point.has_refer_band) {
      size_t referred = 0, errors = 0, errors_in = 0, kept = 0, kept_correct = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        const double v = l.decision[i];
        const bool in = v >= l.point.refer_lo && v <= l.point.refer_hi;
        const bool wrong = (v >= l.point.threshold ? 1 : 0) != y[i];
        referred += in;
        errors += wrong;
        errors_in += in && wrong;
        kept += !in;
        kept_correct += !in && !wrong;
      }
      r["refer"] = {{"band", {l.point.refer_lo, l.point.refer_hi}},
                    {"referred", referred},
                    {"referred_fraction", ratio(referred, y.size())},
                    {"errors", errors},
                    {"errors_referred", errors_in},
                    {"errors_referred_fraction", ratio(errors_in, errors)},
                    {"accuracy_not_referred", ratio(kept_correct, kept)}};
    }
  }
  r["at_threshold"] = std::isnan(o.threshold)
                          ? json(nullptr)
                          : confusion_json(confusion_at(y, l.decision, o.threshold));
  r["at_sensitivity"] = nullptr;
  if (!std::isnan(o.sensitivity) && pos > 0) {
    json s = confusion_json(
        confusion_at(y, l.decision, threshold_for_sensitivity(y, l.decision, o.sensitivity)));
    s["target"] = o.sensitivity;
    r["at_sensitivity"] = s;
  }
  return r;
}

// The statistics the paired bootstrap compares, for one model on one resample.
std::vector<double> paired_stats(const std::vector<int>& y, const LabelScores& l, bool two,
                                 size_t bins) {
  std::vector<double> s(6, kNaN);
  if (two) s[0] = roc_auc(y, l.decision);
  s[1] = brier_score(y, l.decision);
  s[2] = log_loss(y, l.decision);
  s[3] = ece(y, l.decision, bins);
  if (l.has_point) {
    const Confusion c = confusion_at(y, l.decision, l.point.threshold);
    s[4] = c.sensitivity;
    s[5] = c.specificity;
  }
  return s;
}
const char* const kPairedNames[] = {"auroc", "brier",       "log_loss",
                                    "ece",   "sensitivity", "specificity"};

json compare(const Prepared& a, const Prepared& b, size_t j, const std::vector<int>& y,
             const EvaluateOptions& o) {
  const auto& la = a.labels[j];
  const auto& lb = b.labels[j];
  json r;
  const bool two = both_classes(y);
  if (two) {
    const DeLongResult d = delong_test(y, la.decision, lb.decision);
    r["delong"] = {
        {"auc_a", d.auc_a}, {"auc_b", d.auc_b},     {"difference", d.difference}, {"se", d.se},
        {"z", d.z},         {"p_value", d.p_value}, {"covariance", d.covariance}};
  } else {
    r["delong"] = nullptr;
  }
  const auto full_a = paired_stats(y, la, two, o.bins);
  const auto full_b = paired_stats(y, lb, two, o.bins);
  std::vector<std::vector<double>> diffs(6);
  std::mt19937_64 rng(o.seed);
  const size_t n = y.size();
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<int> yb(n);
  LabelScores ra, rb;
  ra.has_point = la.has_point;
  ra.point = la.point;
  rb.has_point = lb.has_point;
  rb.point = lb.point;
  ra.decision.resize(n);
  rb.decision.resize(n);
  for (size_t it = 0; it < o.bootstrap; ++it) {
    for (size_t i = 0; i < n; ++i) {
      const size_t k = pick(rng);
      yb[i] = y[k];
      ra.decision[i] = la.decision[k];
      rb.decision[i] = lb.decision[k];
    }
    const bool two_b = both_classes(yb);
    const auto sa = paired_stats(yb, ra, two_b, o.bins);
    const auto sb = paired_stats(yb, rb, two_b, o.bins);
    for (size_t s = 0; s < 6; ++s) {
      const double d = sa[s] - sb[s];
      if (std::isfinite(d)) diffs[s].push_back(d);
    }
  }
  json boot;
  for (size_t s = 0; s < 6; ++s) {
    const double d = full_a[s] - full_b[s];
    if (!std::isfinite(d)) {
      boot[kPairedNames[s]] = nullptr;
      continue;
    }
    const double lo = percentile(diffs[s], 100.0 * (1 - o.level) / 2);
    const double hi = percentile(diffs[s], 100.0 * (1 + o.level) / 2);
    // Two-sided bootstrap p-value: twice the smaller share of resampled differences on either side
    // of zero (capped at 1).
    size_t below = 0, above = 0;
    for (double v : diffs[s]) {
      below += v <= 0;
      above += v >= 0;
    }
    const double share =
        to_double(std::min(below, above)) / to_double(std::max<size_t>(1, diffs[s].size()));
    boot[kPairedNames[s]] = {{"a", full_a[s]},
                             {"b", full_b[s]},
                             {"difference", d},
                             {"lo", lo},
                             {"hi", hi},
                             {"resamples", diffs[s].size()},
                             {"p_value", std::min(1.0, 2 * share)}};
  }
  r["bootstrap"] = boot;
  return r;
}

}  // namespace

DeLongResult delong_test(const std::vector<int>& y, const std::vector<double>& a,
                         const std::vector<double>& b) {
  check_pair(y, a.size(), "delong_test");
  check_pair(y, b.size(), "delong_test");
  const Components ca = components(y, a), cb = components(y, b);
  const double m = to_double(ca.v10.size()), n = to_double(ca.v01.size());
  DeLongResult r;
  r.auc_a = ca.auc;
  r.auc_b = cb.auc;
  r.var_a = covariance(ca.v10, ca.v10) / m + covariance(ca.v01, ca.v01) / n;
  r.var_b = covariance(cb.v10, cb.v10) / m + covariance(cb.v01, cb.v01) / n;
  r.covariance = covariance(ca.v10, cb.v10) / m + covariance(ca.v01, cb.v01) / n;
  r.difference = r.auc_a - r.auc_b;
  const double var = r.var_a + r.var_b - 2 * r.covariance;
  r.se = std::sqrt(std::max(0.0, var));
  if (r.se > 0) {
    r.z = r.difference / r.se;
    r.p_value = std::erfc(std::fabs(r.z) / std::sqrt(2.0));
  } else {
    r.z = r.difference == 0 ? kNaN : std::copysign(INFINITY, r.difference);
    r.p_value = r.difference == 0 ? 1.0 : 0.0;
  }
  return r;
}

double delong_variance(const std::vector<int>& y, const std::vector<double>& score) {
  check_pair(y, score.size(), "delong_variance");
  const Components c = components(y, score);
  return covariance(c.v10, c.v10) / to_double(c.v10.size()) +
         covariance(c.v01, c.v01) / to_double(c.v01.size());
}

Confusion confusion_at(const std::vector<int>& y, const std::vector<double>& p, double threshold) {
  const Rates r = rates_at(y, p, threshold);
  Confusion c;
  c.threshold = threshold;
  c.tp = r.tp;
  c.fp = r.fp;
  c.tn = r.tn;
  c.fn = r.fn;
  c.sensitivity = ratio(r.tp, r.tp + r.fn);
  c.specificity = ratio(r.tn, r.tn + r.fp);
  c.ppv = ratio(r.tp, r.tp + r.fp);
  c.npv = ratio(r.tn, r.tn + r.fn);
  c.accuracy = ratio(r.tp + r.tn, y.size());
  return c;
}

double threshold_for_sensitivity(const std::vector<int>& y, const std::vector<double>& p,
                                 double target) {
  check_pair(y, p.size(), "threshold_for_sensitivity");
  if (!(target > 0 && target <= 1)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "sensitivity target must lie in (0, 1]");
  }
  std::vector<double> pos;
  for (size_t i = 0; i < y.size(); ++i)
    if (y[i]) pos.push_back(p[i]);
  if (pos.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "threshold_for_sensitivity: no positives");
  // Sensitivity at t = #(pos >= t) / P; the highest t reaching the target is the k-th largest
  // positive score with k = ceil(target * P) (with a tolerance for target * P being integral).
  std::sort(pos.begin(), pos.end(), std::greater<double>());
  const double want = target * to_double(pos.size());
  size_t k = static_cast<size_t>(std::ceil(want - 1e-9));
  k = std::clamp<size_t>(k, 1, pos.size());
  return pos[k - 1];
}

Curve roc_curve(const std::vector<int>& y, const std::vector<double>& p) {
  check_pair(y, p.size(), "roc_curve");
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  const double P = to_double(static_cast<size_t>(std::count(y.begin(), y.end(), 1)));
  const double N = to_double(y.size()) - P;
  Curve c;
  c.x.push_back(0);
  c.y.push_back(0);
  c.thresholds.push_back(INFINITY);
  size_t tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && p[order[j]] == p[order[i]]) {
      (y[order[j]] ? tp : fp)++;
      ++j;
    }
    c.x.push_back(N > 0 ? to_double(fp) / N : kNaN);
    c.y.push_back(P > 0 ? to_double(tp) / P : kNaN);
    c.thresholds.push_back(p[order[i]]);
    i = j;
  }
  return c;
}

Curve precision_recall_curve(const std::vector<int>& y, const std::vector<double>& p) {
  check_pair(y, p.size(), "precision_recall_curve");
  const Curve roc = roc_curve(y, p);
  const double P = to_double(static_cast<size_t>(std::count(y.begin(), y.end(), 1)));
  const double N = to_double(y.size()) - P;
  // sklearn >= 1.1: every distinct threshold (1.0 stopped at full recall), increasing order.
  std::vector<double> rec, prec, thr;
  for (size_t i = 1; i < roc.x.size(); ++i) {
    const double tp = roc.y[i] * P, fp = roc.x[i] * N;
    const double pr = tp + fp > 0 ? tp / (tp + fp) : 1.0;
    rec.push_back(P > 0 ? tp / P : kNaN);
    prec.push_back(pr);
    thr.push_back(roc.thresholds[i]);
  }
  Curve c;
  c.x.assign(rec.rbegin(), rec.rend());
  c.y.assign(prec.rbegin(), prec.rend());
  c.thresholds.assign(thr.rbegin(), thr.rend());
  c.x.push_back(0);
  c.y.push_back(1);
  return c;
}

double average_precision(const std::vector<int>& y, const std::vector<double>& p) {
  const Curve c = precision_recall_curve(y, p);
  // sklearn: -sum(diff(recall) * precision[:-1]) with recall decreasing.
  double ap = 0;
  for (size_t i = 0; i + 1 < c.x.size(); ++i) ap -= (c.x[i + 1] - c.x[i]) * c.y[i];
  return ap;
}

json evaluate_models(const std::vector<ModelScores>& models, const std::vector<int>& labels,
                     Activation activation, const std::vector<std::string>& names,
                     const EvaluateOptions& o) {
  if (models.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "evaluate: no models");
  if (!(o.level > 0 && o.level < 1) || o.bootstrap == 0 || o.bins == 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "evaluate: need 0 < level < 1, bootstrap > 0, bins > 0");
  }
  if (!std::isnan(o.threshold) && !(o.threshold >= 0 && o.threshold <= 1)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "evaluate: threshold must lie in [0, 1]");
  }
  if (!std::isnan(o.sensitivity) && !(o.sensitivity > 0 && o.sensitivity <= 1)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "evaluate: sensitivity must lie in (0, 1]");
  }
  const Matrix& first = models.front().logits;
  if (names.size() != first.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "evaluate: one name per label");
  }
  for (const auto& m : models) {
    if (m.logits.rows != first.rows || m.logits.cols != first.cols) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "evaluate: model '" + m.name + "' has outputs of another shape than '" +
                      models.front().name + "' (the models must share labels and images)");
    }
  }
  check_labels(first, labels, activation);
  const auto outcomes = binary_outcomes(first, labels, activation);

  std::vector<Prepared> prepared;
  for (const auto& m : models) prepared.push_back(prepare(m, activation, names));

  json out;
  out["images"] = first.rows;
  out["activation"] = to_string(activation);
  out["labels"] = names;
  out["options"] = {
      {"bins", o.bins},
      {"bootstrap", o.bootstrap},
      {"level", o.level},
      {"seed", o.seed},
      {"threshold", std::isnan(o.threshold) ? json(nullptr) : json(o.threshold)},
      {"sensitivity", std::isnan(o.sensitivity) ? json(nullptr) : json(o.sensitivity)}};
  out["models"] = json::array();
  for (const auto& p : prepared) {
    json m;
    m["name"] = p.model->name;
    m["version"] = p.model->version;
    m["calibrated"] = p.calibrated;
    m["calibration_method"] = p.calibrated ? p.model->calibration["method"] : json(nullptr);
    json per_label = json::object();
    for (size_t j = 0; j < names.size(); ++j)
      per_label[names[j]] = label_json(p, j, outcomes[j], o);
    m["labels"] = per_label;
    double sum = 0;
    size_t counted = 0;
    for (const auto& [k, v] : per_label.items()) {
      if (!v["auroc"].is_null()) {
        sum += v["auroc"]["estimate"].get<double>();
        ++counted;
      }
    }
    m["mean_auroc"] = counted ? json(sum / to_double(counted)) : json(nullptr);
    const Matrix& dec = p.calibrated ? p.calibrated_probs : p.raw;
    if (activation == Activation::kSoftmax) {
      const TopLabel t = top_label(dec, labels);
      m["top_label"] = {{"accuracy", std::accumulate(t.correct.begin(), t.correct.end(), 0.0) /
                                         to_double(t.correct.size())},
                        {"ece", ece(t.correct, t.confidence, o.bins)},
                        {"log_loss", log_loss(labels, dec)}};
    }
    m["conformal"] = nullptr;
    if (p.conformal) {
      json c = {{"alpha", p.conformal->alpha()}, {"score", to_string(p.conformal->score())}};
      if (activation == Activation::kSoftmax) {
        const auto sets = p.conformal->predict_sets(dec);
        size_t covered = 0, size_sum = 0, empty = 0;
        for (size_t i = 0; i < sets.size(); ++i) {
          covered += std::find(sets[i].begin(), sets[i].end(), labels[i]) != sets[i].end();
          size_sum += sets[i].size();
          empty += sets[i].empty();
        }
        c["coverage"] = ratio(covered, sets.size());
        c["mean_set_size"] = ratio(size_sum, sets.size());
        c["empty"] = empty;
      } else {
        const auto sets = p.conformal->predict_label_sets(dec);
        json per = json::object();
        for (size_t j = 0; j < names.size(); ++j) {
          size_t covered = 0, empty = 0, both = 0;
          for (size_t i = 0; i < sets.size(); ++i) {
            const uint8_t s = sets[i][j];
            covered += (outcomes[j][i] ? (s & kSetPositive) : (s & kSetNegative)) != 0;
            empty += s == kSetEmpty;
            both += s == kSetBoth;
          }
          per[names[j]] = {{"coverage", ratio(covered, sets.size())},
                           {"empty", empty},
                           {"both", both},
                           {"singleton", sets.size() - empty - both}};
        }
        c["labels"] = per;
      }
      m["conformal"] = c;
    }
    out["models"].push_back(m);
  }
  out["comparisons"] = json::array();
  for (size_t a = 0; a < prepared.size(); ++a) {
    for (size_t b = a + 1; b < prepared.size(); ++b) {
      json per_label = json::object();
      for (size_t j = 0; j < names.size(); ++j)
        per_label[names[j]] = compare(prepared[a], prepared[b], j, outcomes[j], o);
      out["comparisons"].push_back({{"a", models[a].name + " " + models[a].version},
                                    {"b", models[b].name + " " + models[b].version},
                                    {"a_index", a},
                                    {"b_index", b},
                                    {"labels", per_label}});
    }
  }
  out["note"] = "Not for diagnostic use.";
  return out;
}

}  // namespace medvision::calibrate
