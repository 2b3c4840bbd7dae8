#include "calibrate/drift.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;

// numpy.quantile's default (linear, "type 7") on sorted data.
double quantile_sorted(const std::vector<double>& v, double q) {
  const double pos = q * to_double(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - to_double(lo));
}

// The reference CDF: piecewise linear through (q_k, k / 100), right- or left-continuous at ties.
double reference_cdf(const std::vector<double>& q, double x, bool left) {
  const size_t last = q.size() - 1;
  // Number of knots <= x (right limit) or < x (left limit).
  const size_t below = static_cast<size_t>(
      (left ? std::lower_bound(q.begin(), q.end(), x) : std::upper_bound(q.begin(), q.end(), x)) -
      q.begin());
  if (below == 0) return 0.0;
  if (below > last) return 1.0;
  const size_t k = below - 1;  // q[k] <= x < q[k + 1] (or < / <=)
  const double frac = q[k + 1] > q[k] ? (x - q[k]) / (q[k + 1] - q[k]) : 0.0;
  return (to_double(k) + frac) / to_double(last);
}

// Bin of x among the interior decile edges: the number of edges <= x.
size_t psi_bin(const std::vector<double>& q, double x) {
  size_t b = 0;
  for (size_t e = 1; e < DriftReference::kPsiBins; ++e) {
    if (x >= q[e * (DriftReference::kQuantiles - 1) / DriftReference::kPsiBins]) b = e;
  }
  return b;
}

std::vector<std::vector<double>> read_rows(const json& j, const char* key, size_t width) {
  if (!j.contains(key) || !j[key].is_array() || j[key].empty()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, std::string("drift: missing \"") + key + "\"");
  }
  std::vector<std::vector<double>> rows;
  for (const auto& r : j[key]) {
    if (!r.is_array() || r.size() != width) {
      throw Error(MV_ERR_INVALID_ARGUMENT, std::string("drift: \"") + key + "\" rows need " +
                                               std::to_string(width) + " numbers");
    }
    std::vector<double> row;
    for (const auto& v : r) {
      if (!v.is_number()) throw Error(MV_ERR_INVALID_ARGUMENT, "drift: non-numeric value");
      row.push_back(v.get<double>());
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

double kolmogorov_survival(double lambda) {
  if (lambda < 0.2) return 1.0;  // the series is 1 to double precision below ~0.2
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    const double term = std::exp(-2.0 * k * k * lambda * lambda);
    sum += (k % 2 ? 1.0 : -1.0) * term;
    if (term < 1e-17) break;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

DriftReference DriftReference::build(const Matrix& scores) {
  if (scores.rows < 2 || scores.cols == 0 || scores.values.size() != scores.rows * scores.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "drift: need at least two reference images");
  }
  DriftReference r;
  r.n_ = scores.rows;
  for (size_t j = 0; j < scores.cols; ++j) {
    std::vector<double> v = scores.column(j);
    for (double x : v) {
      if (!std::isfinite(x)) throw Error(MV_ERR_INVALID_ARGUMENT, "drift: non-finite score");
    }
    std::sort(v.begin(), v.end());
    std::vector<double> q(kQuantiles);
    for (size_t k = 0; k < kQuantiles; ++k) {
      q[k] = quantile_sorted(v, to_double(k) / to_double(kQuantiles - 1));
    }
    std::vector<double> bins(kPsiBins, 0.0);
    for (double x : v) bins[psi_bin(q, x)] += 1.0 / to_double(v.size());
    r.quantiles_.push_back(std::move(q));
    r.psi_bins_.push_back(std::move(bins));
  }
  return r;
}

OodScore DriftReference::ood(const float* logits, size_t count) const {
  if (logits == nullptr || count != num_labels()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "drift: expected " + std::to_string(num_labels()) + " logits per image");
  }
  OodScore out;
  out.score = 0;
  const size_t last = kQuantiles - 1;
  for (size_t j = 0; j < count; ++j) {
    const std::vector<double>& q = quantiles_[j];
    const double x = static_cast<double>(logits[j]);
    // Robust SD from the interquartile range (1.349 = IQR of a standard normal); a degenerate
    // reference (most logits equal) falls back to the 1st-99th percentile range (4.653 SD), then
    // to a tiny positive width so that any different logit is far.
    double sigma = (q[75] - q[25]) / 1.349;
    if (!(sigma > 1e-9)) sigma = (q[99] - q[1]) / 4.653;
    if (!(sigma > 1e-9)) sigma = 1e-9;
    const double z =
        std::isfinite(x) ? std::fabs(x - q[50]) / sigma : std::numeric_limits<double>::infinity();
    if (j == 0 || z > out.score) {
      out.score = z;
      out.label = j;
      const double cdf =
          0.5 * (reference_cdf(q, x, false) + reference_cdf(q, x, true));  // mid-rank at ties
      out.percentile = x < q[0] ? 0.0 : x > q[last] ? 100.0 : 100.0 * cdf;
    }
  }
  return out;
}

DriftReport DriftReference::compare(const Matrix& scores, const DriftOptions& options) const {
  if (scores.rows == 0 || scores.cols != num_labels() ||
      scores.values.size() != scores.rows * scores.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "drift: expected [M, " + std::to_string(num_labels()) + "] scores with M >= 1");
  }
  DriftReport report;
  report.batch_size = scores.rows;
  const double m = to_double(scores.rows);
  const double en = to_double(n_) * m / (to_double(n_) + m);
  const double sqrt_en = std::sqrt(en);
  for (size_t j = 0; j < num_labels(); ++j) {
    const std::vector<double>& q = quantiles_[j];
    std::vector<double> b = scores.column(j);
    std::sort(b.begin(), b.end());
    // Both CDFs are monotone, so the supremum is reached at a batch point or a knot, from the
    // left or the right.
    std::vector<double> points = b;
    points.insert(points.end(), q.begin(), q.end());
    double d = 0;
    for (double x : points) {
      const double fb_right =
          to_double(static_cast<size_t>(std::upper_bound(b.begin(), b.end(), x) - b.begin())) / m;
      const double fb_left =
          to_double(static_cast<size_t>(std::lower_bound(b.begin(), b.end(), x) - b.begin())) / m;
      d = std::max({d, std::fabs(fb_right - reference_cdf(q, x, false)),
                    std::fabs(fb_left - reference_cdf(q, x, true))});
    }
    LabelDrift ld;
    ld.ks = d;
    // Stephens' small-sample correction of the asymptotic distribution (Numerical Recipes 14.3).
    ld.p_value = kolmogorov_survival((sqrt_en + 0.12 + 0.11 / sqrt_en) * d);
    std::vector<double> actual(kPsiBins, 0.0);
    for (double x : b) actual[psi_bin(q, x)] += 1.0 / m;
    constexpr double kFloor = 1e-4;  // empty bins would make PSI infinite
    for (size_t k = 0; k < kPsiBins; ++k) {
      const double a = std::max(actual[k], kFloor), e = std::max(psi_bins_[j][k], kFloor);
      ld.psi += (a - e) * std::log(a / e);
    }
    ld.shifted = ld.p_value < options.p_threshold || ld.psi > options.psi_threshold;
    report.shifted = report.shifted || ld.shifted;
    report.labels.push_back(ld);
  }
  return report;
}

json DriftReport::to_json() const {
  json labs = json::array();
  for (const auto& l : labels) {
    labs.push_back({{"ks", l.ks}, {"p_value", l.p_value}, {"psi", l.psi}, {"shifted", l.shifted}});
  }
  return {{"batch_size", batch_size}, {"shifted", shifted}, {"labels", labs}};
}

json DriftReference::to_json() const {
  return {{"score", "logit"}, {"n", n_}, {"quantiles", quantiles_}, {"psi_bins", psi_bins_}};
}

DriftReference DriftReference::from_json(const json& j) {
  if (!j.is_object() || !j.contains("n") || !j["n"].is_number_integer() ||
      j["n"].get<int64_t>() < 2) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "drift: reference needs \"n\" >= 2");
  }
  DriftReference r;
  r.n_ = j["n"].get<size_t>();
  r.quantiles_ = read_rows(j, "quantiles", kQuantiles);
  r.psi_bins_ = read_rows(j, "psi_bins", kPsiBins);
  if (r.quantiles_.size() != r.psi_bins_.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "drift: quantiles and psi_bins differ in labels");
  }
  for (const auto& q : r.quantiles_) {
    if (!std::is_sorted(q.begin(), q.end())) {
      throw Error(MV_ERR_INVALID_ARGUMENT, "drift: quantiles must be non-decreasing");
    }
  }
  return r;
}

}  // namespace medvision::calibrate
