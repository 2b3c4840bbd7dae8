#pragma once
// medvision::calibrate: the whole `medvision calibrate` step on a labelled validation set:
// fit a calibrator, choose operating points and refer bands on the calibrated probabilities,
// optionally fit split conformal sets, record the drift reference, and report metrics before and
// after. Produces the manifest's "calibration" and "thresholds" objects (docs/calibration.md).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calibrate/calibrator.hpp"
#include "calibrate/conformal.hpp"
#include "calibrate/drift.hpp"
#include "calibrate/metrics.hpp"
#include "calibrate/operating_point.hpp"
#include "calibrate/reliability.hpp"
#include "calibrate/types.hpp"

namespace medvision::calibrate {

struct CalibrateOptions {
  Method method = Method::kTemperature;
  FitOptions fit;
  OperatingPointOptions operating_point;
  // Split conformal: a seeded random `conformal_fraction` of the rows is held out of the
  // calibrator and thresholds fit and used for the conformal quantile alone (the coverage
  // guarantee needs data the calibrator has not seen).
  bool conformal = false;
  double alpha = 0.1;
  ConformalScore conformal_score = ConformalScore::kLac;
  double conformal_fraction = 0.3;
  bool drift_reference = true;
  size_t bins = 15;
  size_t bootstrap = 1000;
  uint64_t seed = 20240601;
};

struct CalibrationResult {
  Calibrator calibrator;
  nlohmann::json calibration;  // manifest "calibration": calibrator (+ "drift", "conformal")
  nlohmann::json thresholds;   // manifest "thresholds"
  nlohmann::json report;       // {"before": evaluate(...), "after": evaluate(...), "warnings"}
  std::vector<ReliabilityPanel>
      reliability;  // before / after (top label for softmax, else label 0)
};

// logits [N, L], labels as in types.hpp, one name per label. Throws MV_ERR_INVALID_ARGUMENT.
CalibrationResult calibrate(const Matrix& logits, const std::vector<int>& labels,
                            Activation activation, const std::vector<std::string>& names,
                            const CalibrateOptions& options = {});

// What a new package version is made from: the package that was calibrated.
struct PackageSource {
  std::string dir;          // its folder
  std::string model_file;   // the model file, relative to `dir`
  std::string sha256;       // the model file's checksum, as the manifest records it
  nlohmann::json manifest;  // the manifest as read
  std::string version;      // its version
};

// What was written by write_package(): the folder, the new manifest and the report.
struct PackageWritten {
  std::string dir;
  nlohmann::json manifest;
  nlohmann::json report;  // CalibrationResult::report
};

// Writes a new package version to `out_dir` (created; it must not hold a manifest.json, checked
// again here): the source's model file (copied, then checked against the source's checksum), its
// manifest with `version` ("" for "<old>+cal"), the fit's "calibration" and "thresholds" and
// metrics.calibration {before, after, data, date, count, from_version}, then
// calibration-report.json, reliability.png and the source's README.md (the model card) when it
// has one. Throws MV_ERR_INVALID_ARGUMENT (a manifest already there) or MV_ERR_IO naming the file.
PackageWritten write_package(const PackageSource& source, const CalibrationResult& result,
                             const CalibrateOptions& options, size_t count,
                             const std::string& version, const std::string& out_dir);

// Throws MV_ERR_INVALID_ARGUMENT when `out_dir` already holds a package (a manifest.json).
void require_new_package_dir(const std::string& out_dir);

// The start of every new package version (write_package, write_prior_shift_package): refuses an
// `out_dir` that holds a package, creates it, copies the source's model file and checks the copy
// against the source's checksum, and copies the source's README.md (the model card) when it has
// one. Throws MV_ERR_INVALID_ARGUMENT or MV_ERR_IO naming the file.
void copy_package_files(const PackageSource& source, const std::string& out_dir);

// Writes `j` indented (invalid UTF-8 replaced) with a final newline; MV_ERR_IO naming the file.
void write_json_file(const std::string& path, const nlohmann::json& j);

// Today's date (UTC), YYYY-MM-DD: the "date" of calibration and prior-shift records.
std::string today_utc_date();

// Metrics of probabilities [N, L] per label (one-vs-rest for softmax; plus top-label ECE/MCE and
// multi-class log loss for softmax): brier, log_loss, ece, adaptive_ece, mce, auroc with its
// bootstrap CI (null for a single-class label), and sensitivity / specificity at each label's
// threshold when `thresholds` (manifest form) is not null.
nlohmann::json evaluate(const Matrix& probs, const std::vector<int>& labels, Activation activation,
                        const std::vector<std::string>& names,
                        const nlohmann::json& thresholds = nullptr, size_t bins = 15,
                        size_t bootstrap = 1000, uint64_t seed = 20240601);

}  // namespace medvision::calibrate
