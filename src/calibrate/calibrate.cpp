#include "calibrate/calibrate.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "common/error.hpp"
#include "common/sha256.hpp"

namespace medvision::calibrate {
namespace {

using nlohmann::json;

Matrix take_rows(const Matrix& m, const std::vector<size_t>& rows) {
  Matrix out(rows.size(), m.cols);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy_n(&m.values[rows[r] * m.cols], m.cols, &out.values[r * m.cols]);
  }
  return out;
}

std::vector<int> take_labels(const std::vector<int>& y, const std::vector<size_t>& rows,
                             size_t width) {
  std::vector<int> out;
  for (size_t r : rows) out.insert(out.end(), y.begin() + r * width, y.begin() + (r + 1) * width);
  return out;
}

ReliabilityPanel panel(const Matrix& probs, const std::vector<int>& labels, Activation activation,
                       const std::vector<std::vector<int>>& outcomes, const std::string& title,
                       size_t bins) {
  if (activation == Activation::kSoftmax) {
    const TopLabel top = top_label(probs, labels);
    return {title + " (top label)", calibration_error(top.correct, top.confidence, bins)};
  }
  return {title, calibration_error(outcomes[0], probs.column(0), bins)};
}

}  // namespace

json evaluate(const Matrix& probs, const std::vector<int>& labels, Activation activation,
              const std::vector<std::string>& names, const json& thresholds, size_t bins,
              size_t bootstrap, uint64_t seed) {
  if (names.size() != probs.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "evaluate: one name per label");
  }
  const std::vector<std::vector<int>> outcomes = binary_outcomes(probs, labels, activation);
  json out = {{"n", probs.rows}, {"labels", json::object()}};
  for (size_t j = 0; j < probs.cols; ++j) {
    const std::vector<double> p = probs.column(j);
    const std::vector<int>& y = outcomes[j];
    const CalibrationError width = calibration_error(y, p, bins, Binning::kEqualWidth);
    json m = {{"positives", std::accumulate(y.begin(), y.end(), 0)},
              {"brier", brier_score(y, p)},
              {"log_loss", log_loss(y, p)},
              {"ece", width.ece},
              {"adaptive_ece", adaptive_ece(y, p, bins)},
              {"mce", width.mce},
              {"auroc", nullptr},
              {"auroc_ci95", nullptr}};
    const int pos = m["positives"].get<int>();
    if (pos > 0 && static_cast<size_t>(pos) < y.size()) {
      const Interval ci = roc_auc_ci(y, p, bootstrap, 0.95, seed);
      m["auroc"] = ci.estimate;
      m["auroc_ci95"] = {ci.lo, ci.hi};
    }
    if (thresholds.is_object() && thresholds.contains(names[j])) {
      const OperatingPoint op = OperatingPoint::from_json(thresholds[names[j]]);
      const Rates r = rates_at(y, p, op.threshold);
      m["threshold"] = op.threshold;
      m["sensitivity"] = r.sensitivity;  // NaN (no positives) serialises as null
      m["specificity"] = r.specificity;
      if (op.has_refer_band) {
        size_t referred = 0;
        for (double v : p) referred += v >= op.refer_lo && v <= op.refer_hi ? 1 : 0;
        m["referred_fraction"] = to_double(referred) / to_double(p.size());
      }
    }
    out["labels"][names[j]] = m;
  }
  if (activation == Activation::kSoftmax) {
    const TopLabel top = top_label(probs, labels);
    const CalibrationError ce = calibration_error(top.correct, top.confidence, bins);
    out["top_label"] = {{"ece", ce.ece},
                        {"adaptive_ece", adaptive_ece(top.correct, top.confidence, bins)},
                        {"mce", ce.mce},
                        {"accuracy", std::accumulate(top.correct.begin(), top.correct.end(), 0.0) /
                                         to_double(probs.rows)},
                        {"log_loss", log_loss(labels, probs)}};
  }
  return out;
}

CalibrationResult calibrate(const Matrix& logits, const std::vector<int>& labels,
                            Activation activation, const std::vector<std::string>& names,
                            const CalibrateOptions& options) {
  check_labels(logits, labels, activation);
  if (names.size() != logits.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: one name per label");
  }
  const size_t width = activation == Activation::kSigmoid ? logits.cols : 1;
  std::vector<size_t> fit_rows(logits.rows), conformal_rows;
  std::iota(fit_rows.begin(), fit_rows.end(), size_t{0});
  if (options.conformal) {
    if (!(options.conformal_fraction > 0 && options.conformal_fraction < 1)) {
      throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: conformal_fraction must lie in (0, 1)");
    }
    std::mt19937_64 rng(options.seed);
    std::shuffle(fit_rows.begin(), fit_rows.end(), rng);
    const size_t n_conf = static_cast<size_t>(to_double(logits.rows) * options.conformal_fraction);
    if (n_conf < 1 || n_conf >= logits.rows) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "calibrate: too few images to hold out a conformal split");
    }
    conformal_rows.assign(fit_rows.begin(), fit_rows.begin() + static_cast<std::ptrdiff_t>(n_conf));
    fit_rows.erase(fit_rows.begin(), fit_rows.begin() + static_cast<std::ptrdiff_t>(n_conf));
    std::sort(fit_rows.begin(), fit_rows.end());
    std::sort(conformal_rows.begin(), conformal_rows.end());
  }
  const Matrix z = take_rows(logits, fit_rows);
  const std::vector<int> y = take_labels(labels, fit_rows, width);

  CalibrationResult r;
  r.calibrator = Calibrator::fit(options.method, activation, z, y, options.fit);
  r.calibration = r.calibrator.to_json();
  const Matrix before = activate(z, activation);
  const Matrix after = r.calibrator.probabilities(z);
  const std::vector<std::vector<int>> outcomes = binary_outcomes(z, y, activation);

  std::vector<OperatingPoint> points;
  std::vector<std::string> with_points;
  json warnings = r.calibration.value("warnings", json::array());
  for (size_t j = 0; j < z.cols; ++j) {
    const int pos = std::accumulate(outcomes[j].begin(), outcomes[j].end(), 0);
    if (pos == 0 || static_cast<size_t>(pos) == z.rows) {
      warnings.push_back("label '" + names[j] + "': a single class; no operating point");
      continue;
    }
    points.push_back(choose_operating_point(outcomes[j], after.column(j), options.operating_point));
    with_points.push_back(names[j]);
  }
  r.thresholds = thresholds_to_json(with_points, points);

  if (options.drift_reference) r.calibration["drift"] = DriftReference::build(z).to_json();
  if (options.conformal) {
    const Matrix pc = r.calibrator.probabilities(take_rows(logits, conformal_rows));
    r.calibration["conformal"] =
        Conformal::fit(activation, pc, take_labels(labels, conformal_rows, width), options.alpha,
                       options.conformal_score)
            .to_json();
  }
  r.report = {{"before", evaluate(before, y, activation, names, nullptr, options.bins,
                                  options.bootstrap, options.seed)},
              {"after", evaluate(after, y, activation, names, r.thresholds, options.bins,
                                 options.bootstrap, options.seed)},
              {"warnings", warnings}};
  r.reliability = {panel(before, y, activation, outcomes, "before", options.bins),
                   panel(after, y, activation, outcomes,
                         "after " + std::string(to_string(options.method)), options.bins)};
  return r;
}

namespace fs = std::filesystem;

void write_json_file(const std::string& path, const json& j) {
  std::ofstream f(path);
  f << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  if (!f) throw Error(MV_ERR_IO, path + ": cannot write");
}

std::string today_utc_date() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

void require_new_package_dir(const std::string& out_dir) {
  std::error_code ec;
  if (fs::exists(fs::path(out_dir) / "manifest.json", ec)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, out_dir + ": already holds a manifest.json");
  }
}

void copy_package_files(const PackageSource& source, const std::string& out_dir) {
  require_new_package_dir(out_dir);
  const fs::path out(out_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(MV_ERR_IO, out_dir + ": cannot create (" + ec.message() + ")");
  const fs::path model_copy = out / source.model_file;
  fs::copy_file(fs::path(source.dir) / source.model_file, model_copy,
                fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error(MV_ERR_IO, model_copy.string() + ": cannot copy (" + ec.message() + ")");
  // The copy must be the file the manifest vouches for.
  if (sha256_file(model_copy.string()) != source.sha256) {
    throw Error(MV_ERR_IO, model_copy.string() + ": copy does not match its checksum");
  }
  const fs::path card = fs::path(source.dir) / "README.md";
  if (fs::exists(card, ec))
    fs::copy_file(card, out / "README.md", fs::copy_options::overwrite_existing, ec);
}

PackageWritten write_package(const PackageSource& source, const CalibrationResult& result,
                             const CalibrateOptions& options, size_t count,
                             const std::string& version, const std::string& out_dir) {
  copy_package_files(source, out_dir);
  const fs::path out(out_dir);
  PackageWritten w;
  w.dir = out_dir;
  w.report = result.report;
  w.manifest = source.manifest;
  w.manifest["version"] = version.empty() ? source.version + "+cal" : version;
  w.manifest["calibration"] = result.calibration;
  w.manifest["thresholds"] = result.thresholds;
  w.manifest["metrics"]["calibration"] = {{"before", result.report["before"]},
                                          {"after", result.report["after"]},
                                          {"data", options.fit.data},
                                          {"date", options.fit.date},
                                          {"count", count},
                                          {"from_version", source.version}};
  write_json_file((out / "manifest.json").string(), w.manifest);
  write_json_file((out / "calibration-report.json").string(), result.report);
  write_reliability_png((out / "reliability.png").string(), result.reliability);
  return w;
}

}  // namespace medvision::calibrate
