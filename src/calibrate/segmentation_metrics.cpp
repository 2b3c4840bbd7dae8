#include "calibrate/segmentation_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "calibrate/metrics.hpp"
#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Squared distance transform of one line (Felzenszwalb & Huttenlocher, "Distance transforms of
// sampled functions", Theory of Computing 8, 2012): d[p] = min_q f[q] + w (p - q)^2 with w the
// squared spacing along the line; f is +inf where there is no feature.
void edt_line(const double* f, double* d, size_t n, double w, std::vector<size_t>& v,
              std::vector<double>& z) {
  v.resize(n);
  z.resize(n + 1);
  size_t k = 0;
  bool any = false;
  for (size_t q = 0; q < n; ++q) {
    if (std::isinf(f[q])) continue;
    const double fq = f[q] + w * to_double(q) * to_double(q);
    if (!any) {
      any = true;
      k = 0;
      v[0] = q;
      z[0] = -kInf;
      z[1] = kInf;
      continue;
    }
    double s = 0;
    bool empty = false;
    for (;;) {
      const size_t r = v[k];
      const double fr = f[r] + w * to_double(r) * to_double(r);
      s = (fq - fr) / (2 * w * (to_double(q) - to_double(r)));
      if (s > z[k]) break;
      if (k == 0) {
        empty = true;
        break;
      }
      --k;
    }
    if (empty) {
      v[0] = q;
      z[0] = -kInf;
      z[1] = kInf;
      continue;
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = kInf;
  }
  if (!any) {
    std::fill(d, d + n, kInf);
    return;
  }
  k = 0;
  for (size_t p = 0; p < n; ++p) {
    while (z[k + 1] < to_double(p)) ++k;
    const double dp = to_double(p) - to_double(v[k]);
    d[p] = w * dp * dp + f[v[k]];
  }
}

// Mean of the finite values, NaN when there are none.
double finite_mean(const std::vector<double>& v) {
  double s = 0;
  size_t n = 0;
  for (double x : v) {
    if (std::isfinite(x)) {
      s += x;
      ++n;
    }
  }
  return n ? s / to_double(n) : kNaN;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  return percentile_sorted(v, 50);
}

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Mean of per-case values (finite ones) with a case-level percentile bootstrap CI.
json mean_ci(const std::vector<double>& values, const EvaluateOptions& o) {
  const size_t n = values.size();
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> means, sample(n);
  for (size_t it = 0; it < o.bootstrap; ++it) {
    for (size_t i = 0; i < n; ++i) sample[i] = values[pick(rng)];
    const double m = finite_mean(sample);
    if (std::isfinite(m)) means.push_back(m);
  }
  std::sort(means.begin(), means.end());
  const size_t counted = static_cast<size_t>(
      std::count_if(values.begin(), values.end(), [](double x) { return std::isfinite(x); }));
  return {
      {"mean", number(finite_mean(values))},
      {"lo", means.empty() ? json(nullptr) : number(percentile_sorted(means, 50 * (1 - o.level)))},
      {"hi", means.empty() ? json(nullptr) : number(percentile_sorted(means, 50 * (1 + o.level)))},
      {"median", number(median(values))},
      {"cases", counted},
      {"resamples", means.size()}};
}

// Paired bootstrap of mean(a) - mean(b) over the cases where both are finite.
json paired(const std::vector<double>& a, const std::vector<double>& b, const EvaluateOptions& o) {
  std::vector<double> d;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isfinite(a[i]) && std::isfinite(b[i])) d.push_back(a[i] - b[i]);
  }
  if (d.empty()) return nullptr;
  std::vector<double> pa, pb;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isfinite(a[i]) && std::isfinite(b[i])) {
      pa.push_back(a[i]);
      pb.push_back(b[i]);
    }
  }
  const size_t n = d.size();
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> diffs;
  size_t below = 0, above = 0;
  for (size_t it = 0; it < o.bootstrap; ++it) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += d[pick(rng)];
    const double m = s / to_double(n);
    diffs.push_back(m);
    below += m <= 0;
    above += m >= 0;
  }
  std::sort(diffs.begin(), diffs.end());
  const double share = to_double(std::min(below, above)) / to_double(diffs.size());
  return {{"a", finite_mean(pa)},
          {"b", finite_mean(pb)},
          {"difference", finite_mean(d)},
          {"lo", percentile_sorted(diffs, 50 * (1 - o.level))},
          {"hi", percentile_sorted(diffs, 50 * (1 + o.level))},
          {"cases", n},
          {"resamples", diffs.size()},
          {"p_value", std::min(1.0, 2 * share)}};
}

}  // namespace

double dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) throw Error(MV_ERR_INVALID_ARGUMENT, "dice: masks differ in size");
  size_t sa = 0, sb = 0, both = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sa += a[i] != 0;
    sb += b[i] != 0;
    both += a[i] != 0 && b[i] != 0;
  }
  return sa + sb == 0 ? 1.0 : 2.0 * to_double(both) / to_double(sa + sb);
}

std::vector<uint8_t> surface(const std::vector<uint8_t>& mask, const MaskGrid& g) {
  const int64_t D = g.depth, H = g.height, W = g.width;
  std::vector<uint8_t> s(mask.size(), 0);
  const auto at = [&](int64_t z, int64_t y, int64_t x) {
    return mask[static_cast<size_t>((z * H + y) * W + x)] != 0;
  };
  for (int64_t z = 0; z < D; ++z) {
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        if (!at(z, y, x)) continue;
        bool edge = x == 0 || x == W - 1 || y == 0 || y == H - 1 || !at(z, y, x - 1) ||
                    !at(z, y, x + 1) || !at(z, y - 1, x) || !at(z, y + 1, x);
        if (!edge && D > 1) edge = z == 0 || z == D - 1 || !at(z - 1, y, x) || !at(z + 1, y, x);
        if (edge) s[static_cast<size_t>((z * H + y) * W + x)] = 1;
      }
    }
  }
  return s;
}

std::vector<double> distance_to(const std::vector<uint8_t>& feature, const MaskGrid& g) {
  const auto D = static_cast<size_t>(g.depth), H = static_cast<size_t>(g.height),
             W = static_cast<size_t>(g.width);
  std::vector<double> d(feature.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = feature[i] ? 0.0 : kInf;
  std::vector<size_t> v;
  std::vector<double> z, f, out;
  const auto pass = [&](size_t n, size_t count, double spacing, auto index) {
    f.resize(n);
    out.resize(n);
    for (size_t line = 0; line < count; ++line) {
      for (size_t i = 0; i < n; ++i) f[i] = d[index(line, i)];
      edt_line(f.data(), out.data(), n, spacing * spacing, v, z);
      for (size_t i = 0; i < n; ++i) d[index(line, i)] = out[i];
    }
  };
  pass(W, D * H, g.spacing[0], [&](size_t line, size_t i) { return line * W + i; });
  pass(H, D * W, g.spacing[1],
       [&](size_t line, size_t i) { return (line / W) * H * W + i * W + line % W; });
  if (D > 1) pass(D, H * W, g.spacing[2], [&](size_t line, size_t i) { return i * H * W + line; });
  for (double& x : d) x = std::sqrt(x);
  return d;
}

double hd95(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, const MaskGrid& g) {
  if (a.size() != g.size() || b.size() != g.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "hd95: masks differ from the grid in size");
  }
  const auto sa = surface(a, g), sb = surface(b, g);
  const bool any_a = std::any_of(sa.begin(), sa.end(), [](uint8_t x) { return x != 0; });
  const bool any_b = std::any_of(sb.begin(), sb.end(), [](uint8_t x) { return x != 0; });
  if (!any_a || !any_b) return kNaN;
  // Distances between surface voxels do not depend on the grid around them: the transforms run
  // on the bounding box of both surfaces only (a small structure in a large volume).
  std::array<int64_t, 3> lo{{g.width, g.height, g.depth}}, hi{{-1, -1, -1}};
  for (int64_t z = 0; z < g.depth; ++z) {
    for (int64_t y = 0; y < g.height; ++y) {
      for (int64_t x = 0; x < g.width; ++x) {
        const auto i = static_cast<size_t>((z * g.height + y) * g.width + x);
        if (!sa[i] && !sb[i]) continue;
        lo = {{std::min(lo[0], x), std::min(lo[1], y), std::min(lo[2], z)}};
        hi = {{std::max(hi[0], x), std::max(hi[1], y), std::max(hi[2], z)}};
      }
    }
  }
  MaskGrid box = g;
  box.width = hi[0] - lo[0] + 1;
  box.height = hi[1] - lo[1] + 1;
  box.depth = hi[2] - lo[2] + 1;
  std::vector<uint8_t> ca(box.size()), cb(box.size());
  for (int64_t z = 0; z < box.depth; ++z) {
    for (int64_t y = 0; y < box.height; ++y) {
      for (int64_t x = 0; x < box.width; ++x) {
        const auto src =
            static_cast<size_t>(((z + lo[2]) * g.height + y + lo[1]) * g.width + x + lo[0]);
        const auto dst = static_cast<size_t>((z * box.height + y) * box.width + x);
        ca[dst] = sa[src];
        cb[dst] = sb[src];
      }
    }
  }
  const auto to_b = distance_to(cb, box);
  const auto to_a = distance_to(ca, box);
  std::vector<double> all;
  for (size_t i = 0; i < ca.size(); ++i) {
    if (ca[i]) all.push_back(to_b[i]);
  }
  for (size_t i = 0; i < cb.size(); ++i) {
    if (cb[i]) all.push_back(to_a[i]);
  }
  std::sort(all.begin(), all.end());
  return percentile_sorted(all, 95);
}

SegmentationEvaluator::SegmentationEvaluator(std::vector<SegmentationModelInfo> models,
                                             std::vector<RegionDef> regions, int max_value,
                                             const EvaluateOptions& options)
    : models_(std::move(models)),
      regions_(std::move(regions)),
      max_value_(max_value),
      options_(options) {
  if (models_.empty() || regions_.empty()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "segmentation evaluation: no models or no regions");
  }
  if (!(options_.level > 0 && options_.level < 1) || options_.bootstrap == 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "segmentation evaluation: need 0 < level < 1, "
                "bootstrap > 0");
  }
}

void SegmentationEvaluator::add(const std::string& case_name, const MaskGrid& grid,
                                const float* reference,
                                const std::vector<const float*>& predictions) {
  const std::string where = "segmentation evaluation: case '" + case_name + "'";
  if (reference == nullptr || predictions.size() != models_.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, where + ": one reference and one mask per model");
  }
  if (grid.depth < 1 || grid.height < 1 || grid.width < 1) {
    throw Error(MV_ERR_INVALID_ARGUMENT, where + ": empty grid");
  }
  const bool three_d = grid.depth > 1;
  if (case_names_.empty()) {
    spacing_known_ = grid.spacing_known;
    three_d_ = three_d;
  } else if (grid.spacing_known != spacing_known_) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                where +
                    (grid.spacing_known ? ": has a pixel spacing but the earlier cases had none"
                                        : ": has no pixel spacing but the earlier cases had") +
                    " (distances and volumes of one evaluation share one unit)");
  } else if (three_d != three_d_) {
    throw Error(MV_ERR_INVALID_ARGUMENT, where + ": mixes 2D images and 3D volumes");
  }
  const size_t n = grid.size();
  const auto values = [&](const float* p, const char* what) {
    std::vector<uint16_t> v(n);
    for (size_t i = 0; i < n; ++i) {
      const float x = p[i];
      if (!(x >= 0 && x <= static_cast<float>(max_value_)) || x != std::floor(x)) {
        throw Error(MV_ERR_INVALID_ARGUMENT,
                    where + ": the " + what + " holds the value " + std::to_string(x) +
                        ", not a label index 0.." + std::to_string(max_value_) +
                        " (a 0/255 binary mask needs converting to label indices)");
      }
      v[i] = static_cast<uint16_t>(x);
    }
    return v;
  };
  const auto ref = values(reference, "reference mask");
  const double voxel = spacing_known_ ? grid.spacing[0] * grid.spacing[1] *
                                            (three_d_ ? grid.spacing[2] / 1000.0 : 1.0)
                                      : 1.0;
  MaskGrid g = grid;
  if (!spacing_known_) g.spacing = {1.0, 1.0, 1.0};
  std::vector<uint8_t> a(n), b(n);
  const auto binary = [&](const std::vector<uint16_t>& lab, const RegionDef& r,
                          std::vector<uint8_t>& out) {
    uint64_t count = 0;
    for (size_t i = 0; i < n; ++i) {
      out[i] = std::find(r.values.begin(), r.values.end(), lab[i]) != r.values.end() ? 1 : 0;
      count += out[i];
    }
    return count;
  };
  std::vector<std::vector<CaseRegion>> per_model;
  for (size_t k = 0; k < models_.size(); ++k) {
    if (predictions[k] == nullptr) throw Error(MV_ERR_INVALID_ARGUMENT, where + ": NULL mask");
    const auto pred = values(predictions[k], ("mask of " + models_[k].name).c_str());
    std::vector<CaseRegion> per_region;
    for (const auto& r : regions_) {
      CaseRegion c;
      c.reference_voxels = binary(ref, r, a);
      c.prediction_voxels = binary(pred, r, b);
      c.dice = dice(b, a);
      c.hd95 = hd95(b, a, g);
      c.reference = to_double(c.reference_voxels) * voxel;
      c.prediction = to_double(c.prediction_voxels) * voxel;
      per_region.push_back(c);
    }
    per_model.push_back(std::move(per_region));
  }
  case_names_.push_back(case_name);
  metrics_.push_back(std::move(per_model));
}

json SegmentationEvaluator::summary() const {
  if (case_names_.empty()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "segmentation evaluation: no cases");
  }
  const size_t n = case_names_.size();
  const char* voxel_word = three_d_ ? "voxels" : "pixels";
  json out;
  out["task"] = "segmentation";
  out["images"] = n;
  json names = json::array();
  for (const auto& r : regions_) names.push_back(r.name);
  out["regions"] = names;
  out["units"] = {{"spacing_known", spacing_known_},
                  {"distance", spacing_known_ ? "mm" : voxel_word},
                  {"volume", spacing_known_ ? (three_d_ ? "ml" : "mm2") : voxel_word}};
  out["options"] = {
      {"bootstrap", options_.bootstrap}, {"level", options_.level}, {"seed", options_.seed}};
  // Per-case series: [model][region][metric] -> values over cases.
  enum { kDice, kHd95, kVolErr, kAbsVolErr, kRelVolErr, kMetrics };
  std::vector<std::vector<std::array<std::vector<double>, kMetrics>>> series(
      models_.size(), std::vector<std::array<std::vector<double>, kMetrics>>(regions_.size()));
  json cases = json::array();
  for (size_t i = 0; i < n; ++i) {
    json per_model = json::array();
    for (size_t k = 0; k < models_.size(); ++k) {
      json per_region = json::object();
      for (size_t r = 0; r < regions_.size(); ++r) {
        const CaseRegion& c = metrics_[i][k][r];
        const double err = c.prediction - c.reference;
        const double rel = c.reference > 0 ? err / c.reference : kNaN;
        auto& s = series[k][r];
        s[kDice].push_back(c.dice);
        s[kHd95].push_back(c.hd95);
        s[kVolErr].push_back(err);
        s[kAbsVolErr].push_back(std::fabs(err));
        s[kRelVolErr].push_back(rel);
        per_region[regions_[r].name] = {{"dice", c.dice},
                                        {"hd95", number(c.hd95)},
                                        {"reference", c.reference},
                                        {"prediction", c.prediction},
                                        {"reference_voxels", c.reference_voxels},
                                        {"prediction_voxels", c.prediction_voxels},
                                        {"volume_error", err},
                                        {"relative_volume_error", number(rel)}};
      }
      per_model.push_back(per_region);
    }
    cases.push_back({{"case", case_names_[i]}, {"models", per_model}});
  }
  out["models"] = json::array();
  for (size_t k = 0; k < models_.size(); ++k) {
    json m;
    m["name"] = models_[k].name;
    m["version"] = models_[k].version;
    json per_region = json::object();
    double dice_sum = 0;
    for (size_t r = 0; r < regions_.size(); ++r) {
      const auto& s = series[k][r];
      size_t ref_empty = 0, pred_empty = 0;
      for (size_t i = 0; i < n; ++i) {
        ref_empty += metrics_[i][k][r].reference_voxels == 0;
        pred_empty += metrics_[i][k][r].prediction_voxels == 0;
      }
      json region = {{"dice", mean_ci(s[kDice], options_)},
                     {"hd95", mean_ci(s[kHd95], options_)},
                     {"volume_error", mean_ci(s[kVolErr], options_)},
                     {"absolute_volume_error", mean_ci(s[kAbsVolErr], options_)},
                     {"relative_volume_error", mean_ci(s[kRelVolErr], options_)},
                     {"reference_empty", ref_empty},
                     {"prediction_empty", pred_empty}};
      region["hd95"]["undefined"] = n - region["hd95"]["cases"].get<size_t>();
      dice_sum += finite_mean(s[kDice]);
      per_region[regions_[r].name] = region;
    }
    m["regions"] = per_region;
    m["mean_dice"] = dice_sum / to_double(regions_.size());
    out["models"].push_back(m);
  }
  out["comparisons"] = json::array();
  for (size_t a = 0; a < models_.size(); ++a) {
    for (size_t b = a + 1; b < models_.size(); ++b) {
      json per_region = json::object();
      for (size_t r = 0; r < regions_.size(); ++r) {
        per_region[regions_[r].name] = {
            {"dice", paired(series[a][r][kDice], series[b][r][kDice], options_)},
            {"hd95", paired(series[a][r][kHd95], series[b][r][kHd95], options_)},
            {"absolute_volume_error",
             paired(series[a][r][kAbsVolErr], series[b][r][kAbsVolErr], options_)}};
      }
      out["comparisons"].push_back({{"a", models_[a].name + " " + models_[a].version},
                                    {"b", models_[b].name + " " + models_[b].version},
                                    {"a_index", a},
                                    {"b_index", b},
                                    {"regions", per_region}});
    }
  }
  out["cases"] = cases;
  out["note"] = "Not for diagnostic use.";
  return out;
}

}  // namespace medvision::calibrate
