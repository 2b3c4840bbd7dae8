#pragma once
// The model package manifest (docs/model-package.md): parsed, validated, and kept whole.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "preprocess/preprocess.hpp"

namespace medvision::model {

enum class Task { kClassification, kSegmentation };
enum class Activation { kSigmoid, kSoftmax };

// The manifest's "segmentation" object (docs/model-package.md, "Segmentation"), validated.
// A coded concept for DICOM SEG (Segmented Property Category / Type, CID 7150 / 7151).
struct ConceptCode {
  std::string value;    // e.g. "80891009"
  std::string scheme;   // e.g. "SCT"
  std::string meaning;  // e.g. "Heart"
};
struct SegmentCodes {
  ConceptCode category;
  ConceptCode type;
};

struct SegmentationSpec {
  double overlap = 0.5;        // sliding-window overlap in [0, 1)
  bool gaussian = true;        // blend: gaussian | constant
  double sigma_scale = 0.125;  // Gaussian sigma as a fraction of the window
  int batch_size = 1;          // windows per forward pass (memory: see docs/segmentation.md)
  bool mirror = false;         // mirror test-time augmentation
  double threshold = 0.5;      // sigmoid models: probability that makes a voxel foreground
  bool largest_component = false;
  bool fill_holes = false;
  // Named regions as unions of labels, sorted by name (JSON objects are unordered).
  std::vector<std::pair<std::string, std::vector<size_t>>> regions;
  // Label name -> its codes for DICOM SEG (manifest "codes"); labels without one are "Tissue".
  std::map<std::string, SegmentCodes> codes;
};

// The population and acquisition a package was trained for (manifest "population"): results of
// images whose DICOM attributes contradict it carry a warning naming the attribute (never its
// value when that value is about the patient, e.g. the age). Empty fields check nothing.
struct Population {
  double age_min_years = -1.0;              // inclusive; < 0: no age range
  double age_max_years = -1.0;              // inclusive
  std::vector<std::string> view_positions;  // ViewPosition, e.g. AP, PA
  std::vector<std::string> body_parts;      // BodyPartExamined, e.g. CHEST
  std::vector<std::string> photometric;     // MONOCHROME1, MONOCHROME2, RGB
  std::string description;                  // e.g. "children aged 1-5 years, AP chest radiographs"
};

struct Manifest {
  std::string dir;   // the package folder
  std::string path;  // the manifest file (for messages)
  int format_version = 1;
  std::string name;
  std::string version;
  Task task = Task::kClassification;
  std::vector<std::string> labels;
  preprocess::InputSpec input;
  std::vector<double> spacing;  // 3D target spacing [z, y, x] mm, or empty
  nlohmann::json preprocess = nlohmann::json::array();
  Activation activation = Activation::kSigmoid;
  nlohmann::json calibration;    // null until `medvision calibrate` fills it
  nlohmann::json thresholds;     // null until then
  std::string explain_features;  // TorchScript method names for CAM, or empty
  std::string explain_head;
  // Segmentation CAM: a TorchScript method x -> (output, activations), or empty.
  std::string explain_activations;
  nlohmann::json segmentation;  // as written
  // "inference.graph": "optimize_for_inference", "freeze" or "none"; empty when absent (the
  // runtime's default, optimize_for_inference). src/infer/runtime.hpp: infer::Graph.
  std::string inference_graph;
  // Label name -> the finding it reports, coded (manifest "codes"; DICOM SR measurement groups).
  std::map<std::string, ConceptCode> codes;
  SegmentationSpec segment;  // parsed (defaults when "segmentation" is null)
  std::string intended_use;
  Population population;
  std::string notice;
  nlohmann::json provenance;
  nlohmann::json metrics;
  std::string model_file = "model.pt";
  std::string sha256;
  nlohmann::json raw;  // everything, as read
};

// The notice results carry when a model card gives none.
inline constexpr const char* kDefaultNotice =
    "Not for diagnostic use. Research use only; results must be reviewed by a qualified "
    "clinician.";

// Reads and validates `<dir>/manifest.json`. Throws medvision::Error(MV_ERR_MODEL) with the
// manifest path and the JSON path of the problem, e.g.
// "models/x/manifest.json: input.size: expected 2 positive integers for a 2D model".
Manifest read_manifest(const std::string& dir);
Manifest parse_manifest(const nlohmann::json& j, const std::string& dir, const std::string& where);

// Checks the model file's SHA-256 against the manifest (MV_ERR_MODEL on mismatch).
void verify_checksum(const Manifest& m);

// Model search path: MEDVISION_MODEL_PATH (':'-separated), then the models/ folder of the source
// tree medvision was built from, then <prefix>/share/medvision/models.
std::vector<std::string> search_path();

// Finds a package by folder path, archive path or by name on the search path (a folder
// <dir>/<name>[/package], or an archive <dir>/<name>.mvpkg / .tar.gz); returns the package folder
// (the one holding manifest.json) or the archive file. Throws MV_ERR_IO listing where it looked.
std::string resolve_package(const std::string& name_or_path);

// Every package found on the search path (folder paths), for `medvision models`.
std::vector<std::string> list_packages();

}  // namespace medvision::model
