#pragma once
// Calibrating a loaded classification model on a labelled validation set and writing the result
// as a new package version (mv_model_calibrate(), `medvision calibrate`, medvision.calibrate()).

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "calibrate/calibrate.hpp"
#include "model/model.hpp"

namespace medvision::model {

// `logits` count x label_count raw outputs; `labels` count x label_count 0/1 (sigmoid models) or
// count class indices (softmax models). `options.fit.date` empty: today (UTC). `version` "" for
// "<old>+cal". Checks (MV_ERR_INVALID_ARGUMENT, before anything is fitted or written): a
// classification model; APS conformal sets only for a softmax model; an `out_dir` without a
// manifest. Then fits (calibrate::calibrate) and writes (calibrate::write_package).
calibrate::PackageWritten calibrate_package(const Model& model, const float* logits,
                                            const int32_t* labels, size_t count,
                                            calibrate::CalibrateOptions options,
                                            const std::string& version, const std::string& out_dir);

// What a caller is told about the new package (mv_calibration_report_json()): {"dir", "name",
// "version", "calibration", "thresholds", "report"} with "report" as calibration-report.json.
nlohmann::json calibration_report_json(const calibrate::PackageWritten& written);

}  // namespace medvision::model
