// Results of either task and their JSON form (docs/results.md, docs/segmentation.md).

#include "model/result.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/log.hpp"

namespace medvision::model {

namespace {

// The result's conformal sets: null without conformal calibration; softmax {"alpha", "set":
// [classes, most probable first]}; sigmoid {"alpha", "labels": {label: subset of
// ["negative", "positive"]}}.
nlohmann::json conformal_json(const Classification& c) {
  if (std::isnan(c.conformal_alpha) || c.scores.empty() || c.scores[0].conformal < 0) {
    return nullptr;
  }
  nlohmann::json j = {{"alpha", c.conformal_alpha}};
  if (c.softmax) {
    nlohmann::json set = nlohmann::json::array();
    for (size_t idx : c.ranking) {
      if (c.scores[idx].conformal == MV_CONFORMAL_IN_SET) set.push_back(c.scores[idx].label);
    }
    j["set"] = std::move(set);
  } else {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& s : c.scores) {
      nlohmann::json set = nlohmann::json::array();
      if (s.conformal & MV_CONFORMAL_NEGATIVE) set.push_back("negative");
      if (s.conformal & MV_CONFORMAL_POSITIVE) set.push_back("positive");
      labels[s.label] = std::move(set);
    }
    j["labels"] = std::move(labels);
  }
  return j;
}

// What a reader needs to read a result: how the probabilities were calibrated (method and the
// number of images), or null when they were not.
nlohmann::json calibration_summary(const nlohmann::json& calibration) {
  if (!calibration.is_object()) return nullptr;
  nlohmann::json s = {{"method", calibration.value("method", std::string())}};
  if (calibration.contains("fitted_on") && calibration["fitted_on"].is_object()) {
    const auto& f = calibration["fitted_on"];
    if (f.contains("n") && f["n"].is_number_integer()) s["images"] = f["n"];
  }
  return s;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string classification_json(const Result& r, const Manifest& m) {
  const Classification& c = r.classification;
  nlohmann::json j;
  j["model"] = {{"name", r.model_name}, {"version", r.model_version}};
  j["notice"] = r.notice;
  j["task"] = "classification";  // every result names its task (docs/results.md)
  nlohmann::json labels = nlohmann::json::array();
  for (size_t idx : c.ranking) {
    const auto& s = c.scores[idx];
    nlohmann::json e = {{"label", s.label}, {"logit", s.logit}, {"probability", s.probability}};
    e["calibrated"] = std::isnan(s.calibrated) ? nlohmann::json() : nlohmann::json(s.calibrated);
    e["decision"] = s.decision < 0 ? nlohmann::json() : nlohmann::json(s.decision == 1);
    e["refer"] = s.refer;
    // The operating point behind "decision" and the band behind "refer", as the manifest
    // records them (threshold and band on the calibrated probability), or null.
    e["operating_point"] = m.thresholds.is_object() && m.thresholds.contains(s.label)
                               ? m.thresholds[s.label]
                               : nlohmann::json();
    labels.push_back(std::move(e));
  }
  j["labels"] = std::move(labels);
  // Labels are ranked by "ranked_by": the calibrated probability when the package has one.
  const bool calibrated = !c.scores.empty() && !std::isnan(c.scores[0].calibrated);
  j["ranked_by"] = calibrated ? "calibrated" : "probability";
  j["calibration"] = calibrated ? calibration_summary(m.calibration) : nlohmann::json();
  j["conformal"] = conformal_json(c);
  j["warnings"] = c.warnings;
  // Out-of-distribution score from the calibration's drift reference (docs/calibration.md).
  j["ood"] = std::isnan(c.ood.score) ? nlohmann::json()
                                     : nlohmann::json{{"score", c.ood.score},
                                                      {"label", m.labels.at(c.ood.label)},
                                                      {"percentile", c.ood.percentile},
                                                      {"far", c.ood.far()},
                                                      {"far_above", calibrate::OodScore::kFar}};
  return dump(j);
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

// What a reader must know about a spacing source (docs/segmentation.md, "Units").
const char* spacing_note(const std::string& source) {
  if (source.empty()) return "spacing unknown: sizes are pixel/voxel counts";
  if (source == "ImagerPixelSpacing") {
    return "Imager Pixel Spacing: at the detector, not corrected for magnification";
  }
  if (source == "NominalScannedPixelSpacing")
    return "Nominal Scanned Pixel Spacing: digitised film";
  if (source == "user") return "supplied by the user";
  return "";
}

nlohmann::json region_json(const Region& reg, bool volume) {
  const auto& st = reg.stats;
  nlohmann::json e = {{"name", reg.name},
                      {"values", reg.values},
                      {"voxels", st.voxels},
                      {"components", st.components},
                      {"largest_component_voxels", st.largest_component_voxels}};
  // Unknown spacing: the size key stays (null) and "unit" says what the number is.
  if (volume) {
    e["volume_ml"] = number_or_null(st.volume_ml);
  } else {
    e["area_mm2"] = number_or_null(st.area_mm2);
  }
  e["spacing_known"] = st.spacing_known;
  e["unit"] = st.spacing_known ? (volume ? "mL" : "mm2") : (volume ? "voxels" : "pixels");
  if (st.voxels > 0) {
    e["bbox_min"] = st.bbox_min;
    e["bbox_max"] = st.bbox_max;
    e["centroid_lps"] = {number_or_null(st.centroid_lps[0]), number_or_null(st.centroid_lps[1]),
                         number_or_null(st.centroid_lps[2])};
    // Without a spacing there are no millimetres: the centroid is only known as an index.
    if (!st.spacing_known) e["centroid_lps"] = nullptr;
    e["centroid_index"] = {number_or_null(st.centroid_index[0]),
                           number_or_null(st.centroid_index[1]),
                           number_or_null(st.centroid_index[2])};
  }
  return e;
}

std::string segmentation_json(const Result& r) {
  const Segmentation& s = r.segmentation;
  nlohmann::json j;
  j["model"] = {{"name", r.model_name}, {"version", r.model_version}};
  j["notice"] = r.notice;
  j["task"] = "segmentation";
  j["classes"] = s.classes;
  const Image& mask = *s.mask;
  j["shape"] = {mask.depth(), mask.height(), mask.width()};
  // Where the pixel spacing came from, and what that means for the sizes below.
  const std::string& src = mask.geometry.spacing_source;
  j["spacing"] = {
      {"source", src.empty() ? nlohmann::json() : nlohmann::json(src)},
      {"mm", {mask.geometry.spacing[0], mask.geometry.spacing[1], mask.geometry.spacing[2]}},
      {"note", spacing_note(src)}};
  if (src.empty()) j["spacing"]["mm"] = nullptr;
  nlohmann::json regions = nlohmann::json::array();
  for (const auto& reg : s.regions) regions.push_back(region_json(reg, mask.depth() > 1));
  j["regions"] = std::move(regions);
  j["warnings"] = s.warnings;
  return dump(j);
}

Result made_by(const Manifest& m, Task task) {
  Result r;
  r.task = task;
  r.model_name = m.name;
  r.model_version = m.version;
  r.notice = m.notice;
  r.codes = m.codes;
  return r;
}

}  // namespace

Result make_result(const Manifest& manifest, Classification&& classification) {
  log_warnings(manifest.name, classification.warnings);
  Result r = made_by(manifest, Task::kClassification);
  r.classification = std::move(classification);
  r.json = classification_json(r, manifest);
  return r;
}

Result make_result(const Manifest& manifest, Segmentation&& segmentation) {
  log_warnings(manifest.name, segmentation.warnings);
  Result r = made_by(manifest, Task::kSegmentation);
  r.segmentation = std::move(segmentation);
  r.json = segmentation_json(r);
  return r;
}

}  // namespace medvision::model
