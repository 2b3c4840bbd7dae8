#include "calibrate/calibrator.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;

// log(1 + exp(x)) without overflow.
double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }

// Mean binary cross-entropy of targets t for logits s.
double bce(const std::vector<double>& t, const std::vector<double>& s, double a, double b) {
  double sum = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const double z = a * s[i] + b;
    sum += softplus(z) - t[i] * z;
  }
  return sum / to_double(s.size());
}

bool constant(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); });
}

// Platt fit by Newton's method on (a, b) with a backtracking line search.
void fit_platt(const std::vector<double>& s, const std::vector<double>& t, double& a, double& b,
               bool& converged) {
  a = 1.0;
  b = 0.0;
  converged = false;
  double loss = bce(t, s, a, b);
  for (int it = 0; it < 100; ++it) {
    double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const double p = sigmoid(a * s[i] + b);
      const double r = p - t[i];
      const double w = p * (1 - p);
      g0 += r * s[i];
      g1 += r;
      h00 += w * s[i] * s[i];
      h01 += w * s[i];
      h11 += w;
    }
    const double n = to_double(s.size());
    g0 /= n;
    g1 /= n;
    h00 /= n;
    h01 /= n;
    h11 /= n;
    if (std::hypot(g0, g1) < 1e-12) {
      converged = true;
      return;
    }
    const double ridge = 1e-12;
    h00 += ridge;
    h11 += ridge;
    const double det = h00 * h11 - h01 * h01;
    double d0 = -(h11 * g0 - h01 * g1) / det;
    double d1 = -(-h01 * g0 + h00 * g1) / det;
    if (!std::isfinite(d0) || !std::isfinite(d1) || d0 * g0 + d1 * g1 >= 0) {
      d0 = -g0;  // not a descent direction: fall back to the gradient
      d1 = -g1;
    }
    double step = 1.0;
    double next = bce(t, s, a + step * d0, b + step * d1);
    while (next > loss + 1e-4 * step * (d0 * g0 + d1 * g1) && step > 1e-12) {
      step *= 0.5;
      next = bce(t, s, a + step * d0, b + step * d1);
    }
    if (step <= 1e-12) {
      converged = std::hypot(g0, g1) < 1e-8;
      return;
    }
    a += step * d0;
    b += step * d1;
    if (std::fabs(loss - next) < 1e-15 && std::hypot(step * d0, step * d1) < 1e-10) {
      converged = true;
      return;
    }
    loss = next;
  }
  converged = false;
}

void renormalise_rows(Matrix& p) {
  for (size_t i = 0; i < p.rows; ++i) {
    double sum = 0;
    for (size_t j = 0; j < p.cols; ++j) sum += p(i, j);
    for (size_t j = 0; j < p.cols; ++j) {
      p(i, j) = sum > 0 ? p(i, j) / sum : 1.0 / to_double(p.cols);
    }
  }
}

std::vector<double> get_vector(const json& j, const char* key, size_t expected) {
  if (!j.contains(key) || !j[key].is_array()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                std::string("calibration: \"") + key + "\" must be an array of numbers");
  }
  std::vector<double> v;
  for (const auto& x : j[key]) {
    if (!x.is_number() || !std::isfinite(x.get<double>())) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  std::string("calibration: \"") + key + "\" must hold finite numbers");
    }
    v.push_back(x.get<double>());
  }
  if (expected != 0 && v.size() != expected) {
    throw Error(MV_ERR_INVALID_ARGUMENT, std::string("calibration: \"") + key + "\" has " +
                                             std::to_string(v.size()) + " values, expected " +
                                             std::to_string(expected));
  }
  return v;
}

}  // namespace

Method method_from_string(const std::string& name) {
  if (name == "temperature") return Method::kTemperature;
  if (name == "platt") return Method::kPlatt;
  if (name == "isotonic") return Method::kIsotonic;
  throw Error(MV_ERR_INVALID_ARGUMENT,
              "calibration: unknown method '" + name + "' (want temperature, platt or isotonic)");
}

const char* to_string(Method method) {
  switch (method) {
    case Method::kTemperature:
      return "temperature";
    case Method::kPlatt:
      return "platt";
    case Method::kIsotonic:
      return "isotonic";
  }
  return "?";
}

double minimize_brent(const std::function<double(double)>& f, double lo, double hi, double tol,
                      int max_iter) {
  // Brent (1973), "Algorithms for Minimization without Derivatives", ch. 5 (localmin).
  const double c = 0.5 * (3.0 - std::sqrt(5.0));
  double a = lo, b = hi;
  double x = a + c * (b - a), w = x, v = x;
  double fx = f(x), fw = fx, fv = fx;
  double d = 0, e = 0;
  for (int it = 0; it < max_iter; ++it) {
    const double m = 0.5 * (a + b);
    const double t1 = tol * std::fabs(x) + tol / 3;
    const double t2 = 2 * t1;
    if (std::fabs(x - m) <= t2 - 0.5 * (b - a)) break;
    bool golden = true;
    if (std::fabs(e) > t1) {
      double r = (x - w) * (fx - fv);
      double q = (x - v) * (fx - fw);
      double p = (x - v) * q - (x - w) * r;
      q = 2 * (q - r);
      if (q > 0) p = -p;
      q = std::fabs(q);
      r = e;
      e = d;
      if (std::fabs(p) < std::fabs(0.5 * q * r) && p > q * (a - x) && p < q * (b - x)) {
        d = p / q;
        const double u = x + d;
        if (u - a < t2 || b - u < t2) d = x < m ? t1 : -t1;
        golden = false;
      }
    }
    if (golden) {
      e = (x < m ? b : a) - x;
      d = c * e;
    }
    const double u = x + (std::fabs(d) >= t1 ? d : (d > 0 ? t1 : -t1));
    const double fu = f(u);
    if (fu <= fx) {
      (u < x ? b : a) = x;
      v = w;
      fv = fw;
      w = x;
      fw = fx;
      x = u;
      fx = fu;
    } else {
      (u < x ? a : b) = u;
      if (fu <= fw || w == x) {
        v = w;
        fv = fw;
        w = u;
        fw = fu;
      } else if (fu <= fv || v == x || v == w) {
        v = u;
        fv = fu;
      }
    }
  }
  return x;
}

IsotonicCurve IsotonicCurve::fit(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.empty() || x.size() != y.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "isotonic: need as many targets as inputs (> 0)");
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      throw Error(MV_ERR_INVALID_ARGUMENT, "isotonic: non-finite input");
    }
  }
  // Sort by (x, y) as numpy.lexsort((y, x)), then merge x closer than float64 resolution (1e-15)
  // into one point with the mean y and the summed weight (sklearn's _make_unique).
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return x[a] < x[b] || (x[a] == x[b] && y[a] < y[b]); });
  std::vector<double> ux, uy, uw;
  double cur_x = x[order[0]], cur_y = 0, cur_w = 0;
  for (size_t k : order) {
    if (x[k] - cur_x >= 1e-15) {
      ux.push_back(cur_x);
      uy.push_back(cur_y / cur_w);
      uw.push_back(cur_w);
      cur_x = x[k];
      cur_y = y[k];
      cur_w = 1;
    } else {
      cur_y += y[k];
      cur_w += 1;
    }
  }
  ux.push_back(cur_x);
  uy.push_back(cur_y / cur_w);
  uw.push_back(cur_w);
  // Pool adjacent violators: blocks of (weighted mean, weight, length).
  std::vector<double> bv, bw;
  std::vector<size_t> bn;
  for (size_t i = 0; i < uy.size(); ++i) {
    bv.push_back(uy[i]);
    bw.push_back(uw[i]);
    bn.push_back(1);
    while (bv.size() > 1 && bv[bv.size() - 2] > bv.back()) {
      const size_t k = bv.size() - 1;
      const double w = bw[k - 1] + bw[k];
      bv[k - 1] = (bv[k - 1] * bw[k - 1] + bv[k] * bw[k]) / w;
      bw[k - 1] = w;
      bn[k - 1] += bn[k];
      bv.pop_back();
      bw.pop_back();
      bn.pop_back();
    }
  }
  std::vector<double> fy;
  for (size_t b = 0; b < bv.size(); ++b) fy.insert(fy.end(), bn[b], bv[b]);
  // Drop interior points whose value equals both neighbours' (they do not change the map).
  IsotonicCurve c;
  for (size_t i = 0; i < ux.size(); ++i) {
    const bool interior = i > 0 && i + 1 < ux.size();
    if (interior && fy[i] == fy[i - 1] && fy[i] == fy[i + 1]) continue;
    c.x.push_back(ux[i]);
    c.y.push_back(fy[i]);
  }
  return c;
}

double IsotonicCurve::operator()(double v) const {
  if (x.empty()) return v;
  if (!(v > x.front())) return y.front();
  if (!(v < x.back())) return y.back();
  const size_t hi = static_cast<size_t>(std::upper_bound(x.begin(), x.end(), v) - x.begin());
  const size_t lo = hi - 1;
  // numpy.interp's formula: slope * (v - x_lo) + y_lo.
  const double slope = (y[hi] - y[lo]) / (x[hi] - x[lo]);
  return slope * (v - x[lo]) + y[lo];
}

Calibrator Calibrator::fit(Method method, Activation activation, const Matrix& logits,
                           const std::vector<int>& labels, const FitOptions& options) {
  if (!(options.min_temperature > 0 && options.min_temperature < options.max_temperature)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: need 0 < min_temperature < max_temperature");
  }
  const std::vector<std::vector<int>> outcomes = binary_outcomes(logits, labels, activation);
  Calibrator c;
  c.method_ = method;
  c.activation_ = activation;
  c.num_labels_ = logits.cols;
  const size_t n = logits.rows;
  const size_t num = logits.cols;

  json positives = json::array();
  for (const auto& col : outcomes) positives.push_back(std::accumulate(col.begin(), col.end(), 0));
  c.fitted_on_ = {{"n", n}, {"positives", positives}};
  if (!options.date.empty()) c.fitted_on_["date"] = options.date;
  if (!options.data.empty()) c.fitted_on_["data"] = options.data;

  auto single_class = [&](size_t j) {
    const int pos = positives[j].get<int>();
    return pos == 0 || static_cast<size_t>(pos) == n;
  };
  const double lo = std::log(options.min_temperature), hi = std::log(options.max_temperature);
  auto check_bound = [&](double t, const std::string& who) {
    if (std::fabs(std::log(t) - lo) < 1e-6 || std::fabs(std::log(t) - hi) < 1e-6) {
      c.warnings_.push_back(who + ": temperature " + std::to_string(t) +
                            " is at the search bound; the scores carry little signal");
    }
  };

  if (method == Method::kTemperature) {
    if (activation == Activation::kSoftmax) {
      auto nll = [&](double u) {
        const double inv_t = std::exp(-u);
        double sum = 0;
        for (size_t i = 0; i < n; ++i) {
          const double* z = &logits.values[i * num];
          const double zmax = *std::max_element(z, z + num) * inv_t;
          double s = 0;
          for (size_t j = 0; j < num; ++j) s += std::exp(z[j] * inv_t - zmax);
          sum += zmax + std::log(s) - z[labels[i]] * inv_t;
        }
        return sum / to_double(n);
      };
      if (constant(logits.values)) {
        c.temperature_ = {1.0};
        c.warnings_.push_back("softmax: constant logits; temperature left at 1");
      } else {
        c.temperature_ = {std::exp(minimize_brent(nll, lo, hi))};
        check_bound(c.temperature_[0], "softmax");
      }
    } else {
      c.temperature_.assign(num, 1.0);
      for (size_t j = 0; j < num; ++j) {
        const std::vector<double> z = logits.column(j);
        if (single_class(j) || constant(z)) {
          c.warnings_.push_back("label " + std::to_string(j) +
                                ": a single class or constant scores; temperature left at 1");
          continue;
        }
        const std::vector<double> t(outcomes[j].begin(), outcomes[j].end());
        c.temperature_[j] =
            std::exp(minimize_brent([&](double u) { return bce(t, z, std::exp(-u), 0); }, lo, hi));
        check_bound(c.temperature_[j], "label " + std::to_string(j));
      }
    }
    return c;
  }

  const Matrix raw = activate(logits, activation);
  if (method == Method::kPlatt) {
    c.a_.assign(num, 1.0);
    c.b_.assign(num, 0.0);
    c.fitted_on_["target_smoothing"] = options.platt_target_smoothing;
    for (size_t j = 0; j < num; ++j) {
      std::vector<double> s = logits.column(j);
      if (activation == Activation::kSoftmax) {
        for (size_t i = 0; i < n; ++i) s[i] = logit(raw(i, j));
      }
      if (single_class(j) || constant(s)) {
        c.warnings_.push_back("label " + std::to_string(j) +
                              ": a single class or constant scores; Platt map left at identity");
        continue;
      }
      const double n_pos = positives[j].get<double>();
      const double t_pos = options.platt_target_smoothing ? (n_pos + 1) / (n_pos + 2) : 1.0;
      const double t_neg = options.platt_target_smoothing ? 1 / (to_double(n) - n_pos + 2) : 0.0;
      std::vector<double> t(n);
      for (size_t i = 0; i < n; ++i) t[i] = outcomes[j][i] ? t_pos : t_neg;
      bool converged = false;
      fit_platt(s, t, c.a_[j], c.b_[j], converged);
      if (!converged) {
        c.warnings_.push_back("label " + std::to_string(j) +
                              ": Platt fit did not converge (separable data?)");
      }
    }
    return c;
  }

  c.curves_.resize(num);
  for (size_t j = 0; j < num; ++j) {
    const std::vector<double> t(outcomes[j].begin(), outcomes[j].end());
    c.curves_[j] = IsotonicCurve::fit(raw.column(j), t);
    if (single_class(j)) {
      c.warnings_.push_back("label " + std::to_string(j) +
                            ": a single class; the isotonic map is constant");
    }
  }
  return c;
}

Matrix Calibrator::probabilities(const Matrix& logits) const {
  if (logits.cols != num_labels_ || logits.values.size() != logits.rows * logits.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: calibration is for " +
                                             std::to_string(num_labels_) + " labels, scores have " +
                                             std::to_string(logits.cols));
  }
  if (method_ == Method::kTemperature) {
    Matrix scaled = logits;
    for (size_t i = 0; i < scaled.rows; ++i) {
      for (size_t j = 0; j < scaled.cols; ++j) {
        scaled(i, j) /= temperature_[temperature_.size() == 1 ? 0 : j];
      }
    }
    return activate(scaled, activation_);
  }
  Matrix p = activate(logits, activation_);
  for (size_t i = 0; i < p.rows; ++i) {
    for (size_t j = 0; j < p.cols; ++j) {
      if (method_ == Method::kPlatt) {
        const double s = activation_ == Activation::kSigmoid ? logits(i, j) : logit(p(i, j));
        p(i, j) = sigmoid(a_[j] * s + b_[j]);
      } else {
        p(i, j) = curves_[j](p(i, j));
      }
    }
  }
  if (activation_ == Activation::kSoftmax) renormalise_rows(p);
  return p;
}

std::vector<double> Calibrator::probabilities(const std::vector<double>& logits_row) const {
  return probabilities(Matrix::from(logits_row, 1, logits_row.size())).values;
}

json Calibrator::to_json() const {
  json j = {{"method", to_string(method_)},
            {"activation", to_string(activation_)},
            {"labels", num_labels_}};
  if (method_ == Method::kTemperature) j["temperature"] = temperature_;
  if (method_ == Method::kPlatt) {
    j["a"] = a_;
    j["b"] = b_;
  }
  if (method_ == Method::kIsotonic) {
    json curves = json::array();
    for (const auto& c : curves_) curves.push_back({{"x", c.x}, {"y", c.y}});
    j["isotonic"] = curves;
  }
  if (!fitted_on_.is_null()) j["fitted_on"] = fitted_on_;
  if (!warnings_.empty()) j["warnings"] = warnings_;
  return j;
}

Calibrator Calibrator::from_json(const json& j) {
  if (!j.is_object() || !j.contains("method") || !j["method"].is_string()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibration: expected an object with a \"method\"");
  }
  Calibrator c;
  c.method_ = method_from_string(j["method"].get<std::string>());
  c.activation_ = activation_from_string(j.value("activation", std::string("sigmoid")));
  if (!j.contains("labels") || !j["labels"].is_number_integer() ||
      j["labels"].get<int64_t>() <= 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibration: \"labels\" must be a positive count");
  }
  c.num_labels_ = j["labels"].get<size_t>();
  const size_t num = c.num_labels_;
  if (c.method_ == Method::kTemperature) {
    c.temperature_ = get_vector(j, "temperature", 0);
    const size_t want = c.activation_ == Activation::kSoftmax ? 1 : num;
    if (c.temperature_.size() != want) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "calibration: \"temperature\" needs " + std::to_string(want) + " values");
    }
    for (double t : c.temperature_) {
      if (!(t > 0)) throw Error(MV_ERR_INVALID_ARGUMENT, "calibration: temperature must be > 0");
    }
  } else if (c.method_ == Method::kPlatt) {
    c.a_ = get_vector(j, "a", num);
    c.b_ = get_vector(j, "b", num);
  } else {
    if (!j.contains("isotonic") || !j["isotonic"].is_array() || j["isotonic"].size() != num) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "calibration: \"isotonic\" needs one {x, y} curve per label");
    }
    for (const auto& cj : j["isotonic"]) {
      IsotonicCurve curve;
      curve.x = get_vector(cj, "x", 0);
      curve.y = get_vector(cj, "y", curve.x.size());
      if (curve.x.empty())
        throw Error(MV_ERR_INVALID_ARGUMENT, "calibration: empty isotonic curve");
      for (size_t i = 1; i < curve.x.size(); ++i) {
        if (!(curve.x[i] > curve.x[i - 1]) || curve.y[i] < curve.y[i - 1]) {
          throw Error(MV_ERR_INVALID_ARGUMENT, "calibration: isotonic curve is not monotone");
        }
      }
      c.curves_.push_back(std::move(curve));
    }
  }
  if (j.contains("fitted_on")) c.fitted_on_ = j["fitted_on"];
  if (j.contains("warnings") && j["warnings"].is_array()) {
    for (const auto& w : j["warnings"]) {
      if (w.is_string()) c.warnings_.push_back(w.get<std::string>());
    }
  }
  return c;
}

}  // namespace medvision::calibrate
