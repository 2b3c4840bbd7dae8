#include "calibrate/metrics.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

void check_binary(const std::vector<int>& y, const std::vector<double>& p, const char* what,
                  bool probabilities) {
  if (y.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, std::string(what) + ": no samples");
  if (y.size() != p.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, std::string(what) + ": " + std::to_string(y.size()) +
                                             " labels but " + std::to_string(p.size()) + " scores");
  }
  for (int v : y) {
    if (v != 0 && v != 1) {
      throw Error(MV_ERR_INVALID_ARGUMENT, std::string(what) + ": labels must be 0 or 1");
    }
  }
  for (double v : p) {
    if (!std::isfinite(v) || (probabilities && (v < 0.0 || v > 1.0))) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  std::string(what) + (probabilities ? ": probabilities must lie in [0, 1]"
                                                     : ": scores must be finite"));
    }
  }
}

// AUROC without checks: mid-ranks of the scores, U statistic of the positives.
double auc_unchecked(const std::vector<int>& y, const std::vector<double>& s,
                     std::vector<size_t>& order) {
  const size_t n = s.size();
  order.resize(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] < s[b]; });
  double rank_sum = 0;
  size_t n_pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    size_t pos_in_group = 0;
    while (j < n && s[order[j]] == s[order[i]]) pos_in_group += static_cast<size_t>(y[order[j++]]);
    const double mid_rank = 0.5 * (to_double(i + 1) + to_double(j));  // ranks are 1-based
    rank_sum += mid_rank * to_double(pos_in_group);
    n_pos += pos_in_group;
    i = j;
  }
  const double np = to_double(n_pos);
  const double nn = to_double(n - n_pos);
  if (n_pos == 0 || n_pos == n) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - np * (np + 1) / 2) / (np * nn);
}

}  // namespace

double brier_score(const std::vector<int>& y, const std::vector<double>& p) {
  check_binary(y, p, "brier_score", true);
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double d = p[i] - y[i];
    sum += d * d;
  }
  return sum / to_double(y.size());
}

double log_loss(const std::vector<int>& y, const std::vector<double>& p) {
  check_binary(y, p, "log_loss", true);
  constexpr double kEps = DBL_EPSILON;
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    // sklearn clips p first and then builds [1 - p, p], renormalising the row.
    const double q1 = std::clamp(p[i], kEps, 1 - kEps);
    const double q0 = 1 - q1;
    sum -= std::log((y[i] == 1 ? q1 : q0) / (q0 + q1));
  }
  return sum / to_double(y.size());
}

double log_loss(const std::vector<int>& y, const Matrix& probs) {
  if (probs.rows == 0 || probs.cols < 2 || y.size() != probs.rows) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "log_loss: need [N, K>=2] probabilities and N labels");
  }
  constexpr double kEps = DBL_EPSILON;
  double sum = 0;
  for (size_t i = 0; i < probs.rows; ++i) {
    if (y[i] < 0 || static_cast<size_t>(y[i]) >= probs.cols) {
      throw Error(MV_ERR_INVALID_ARGUMENT, "log_loss: class index out of range");
    }
    double row = 0;
    for (size_t j = 0; j < probs.cols; ++j) {
      const double v = probs(i, j);
      if (!(v >= 0.0 && v <= 1.0)) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "log_loss: probabilities must lie in [0, 1]");
      }
      row += std::clamp(v, kEps, 1 - kEps);
    }
    sum -= std::log(std::clamp(probs(i, static_cast<size_t>(y[i])), kEps, 1 - kEps) / row);
  }
  return sum / to_double(probs.rows);
}

double roc_auc(const std::vector<int>& y, const std::vector<double>& score) {
  check_binary(y, score, "roc_auc", false);
  std::vector<size_t> order;
  const double auc = auc_unchecked(y, score, order);
  if (std::isnan(auc)) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "roc_auc: labels hold a single class; AUROC needs positives and negatives");
  }
  return auc;
}

Interval roc_auc_ci(const std::vector<int>& y, const std::vector<double>& score, size_t resamples,
                    double level, uint64_t seed) {
  if (!(level > 0 && level < 1) || resamples == 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "roc_auc_ci: need 0 < level < 1 and resamples > 0");
  }
  Interval out;
  out.estimate = roc_auc(y, score);
  const size_t n = y.size();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<int> yb(n);
  std::vector<double> sb(n);
  std::vector<size_t> order;
  std::vector<double> aucs;
  aucs.reserve(resamples);
  for (size_t b = 0; b < resamples; ++b) {
    for (size_t i = 0; i < n; ++i) {
      const size_t k = pick(rng);
      yb[i] = y[k];
      sb[i] = score[k];
    }
    const double auc = auc_unchecked(yb, sb, order);
    if (!std::isnan(auc)) aucs.push_back(auc);
  }
  out.resamples = aucs.size();
  if (aucs.empty()) {
    out.lo = out.hi = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  std::sort(aucs.begin(), aucs.end());
  out.lo = percentile_sorted(aucs, 100.0 * (1 - level) / 2);
  out.hi = percentile_sorted(aucs, 100.0 * (1 + level) / 2);
  return out;
}

CalibrationError calibration_error(const std::vector<int>& y, const std::vector<double>& p,
                                   size_t bins, Binning binning) {
  check_binary(y, p, "calibration_error", true);
  if (bins == 0) throw Error(MV_ERR_INVALID_ARGUMENT, "calibration_error: need bins >= 1");
  const size_t n = y.size();
  CalibrationError out;
  std::vector<double> sum_p(bins, 0.0), sum_y(bins, 0.0);
  std::vector<size_t> count(bins, 0);
  out.bins.resize(bins);
  if (binning == Binning::kEqualWidth) {
    // Edges as numpy.linspace(0, 1, bins + 1); bin = searchsorted(edges[1:-1], p, 'right').
    const double step = 1.0 / to_double(bins);
    std::vector<double> inner(bins - 1);
    for (size_t b = 1; b < bins; ++b) inner[b - 1] = to_double(b) * step;
    for (size_t i = 0; i < n; ++i) {
      const size_t b =
          static_cast<size_t>(std::upper_bound(inner.begin(), inner.end(), p[i]) - inner.begin());
      sum_p[b] += p[i];
      sum_y[b] += y[i];
      ++count[b];
    }
    for (size_t b = 0; b < bins; ++b) {
      out.bins[b].lo = to_double(b) * step;
      out.bins[b].hi = b + 1 == bins ? 1.0 : to_double(b + 1) * step;
    }
  } else {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t c) { return p[a] < p[c]; });
    size_t start = 0;
    for (size_t b = 0; b < bins; ++b) {
      const size_t len = n / bins + (b < n % bins ? 1 : 0);
      for (size_t k = start; k < start + len; ++k) {
        sum_p[b] += p[order[k]];
        sum_y[b] += y[order[k]];
      }
      count[b] = len;
      if (len > 0) {
        out.bins[b].lo = p[order[start]];
        out.bins[b].hi = p[order[start + len - 1]];
      }
      start += len;
    }
  }
  for (size_t b = 0; b < bins; ++b) {
    Bin& bin = out.bins[b];
    bin.count = count[b];
    if (count[b] == 0) continue;
    bin.confidence = sum_p[b] / to_double(count[b]);
    bin.accuracy = sum_y[b] / to_double(count[b]);
    const double gap = std::fabs(bin.accuracy - bin.confidence);
    out.ece += to_double(count[b]) / to_double(n) * gap;
    out.mce = std::max(out.mce, gap);
  }
  return out;
}

TopLabel top_label(const Matrix& probs, const std::vector<int>& labels) {
  if (probs.rows == 0 || probs.cols == 0 || labels.size() != probs.rows) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "top_label: need [N, K] probabilities and N labels");
  }
  TopLabel out;
  out.correct.resize(probs.rows);
  out.confidence.resize(probs.rows);
  for (size_t i = 0; i < probs.rows; ++i) {
    size_t arg = 0;
    for (size_t j = 1; j < probs.cols; ++j) {
      if (probs(i, j) > probs(i, arg)) arg = j;
    }
    out.confidence[i] = probs(i, arg);
    out.correct[i] = labels[i] == static_cast<int>(arg) ? 1 : 0;
  }
  return out;
}

Rates rates_at(const std::vector<int>& y, const std::vector<double>& p, double threshold) {
  check_binary(y, p, "rates_at", false);
  Rates r;
  for (size_t i = 0; i < y.size(); ++i) {
    const bool pos = p[i] >= threshold;
    if (y[i] == 1) {
      pos ? ++r.tp : ++r.fn;
    } else {
      pos ? ++r.fp : ++r.tn;
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.sensitivity = r.tp + r.fn ? to_double(r.tp) / to_double(r.tp + r.fn) : nan;
  r.specificity = r.tn + r.fp ? to_double(r.tn) / to_double(r.tn + r.fp) : nan;
  return r;
}

}  // namespace medvision::calibrate
