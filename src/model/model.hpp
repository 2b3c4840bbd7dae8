#pragma once
// medvision::model::Model: a loaded model package (manifest + preprocessing + runtime).
// Immutable after load and shareable: every method is const and thread-safe.

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calibrate/operating_point.hpp"
#include "common/image.hpp"
#include "infer/runtime.hpp"
#include "model/manifest.hpp"
#include "preprocess/preprocess.hpp"
#include "segment/postprocess.hpp"

namespace medvision::model {

struct LabelScore {
  std::string label;
  float logit = 0.0f;
  float probability = 0.0f;
  float calibrated = std::numeric_limits<float>::quiet_NaN();  // NaN until calibrated
  int decision = -1;   // 1 positive / 0 negative at the operating point; -1 when none is set
  bool refer = false;  // calibrated probability inside the refer band
  // Conformal prediction set (docs/calibration.md), -1 when the package has none. Sigmoid
  // models: bit 0 = "negative" in the label's set, bit 1 = "positive" in it (0 = empty, 3 =
  // both). Softmax models: 1 when this class is in the image's set, else 0.
  int conformal = -1;
};

// Warnings for an image whose DICOM attributes contradict the package's intended population
// (manifest "population"): each names the attribute and the expected values, never a patient
// value such as the age.
std::vector<std::string> population_warnings(const Population& population, const Image& image);

struct Classification {
  std::vector<LabelScore> scores;  // in manifest label order
  std::vector<size_t> ranking;     // label indices, most probable first
  bool softmax = false;            // the model's output activation (mutually exclusive classes)
  // Miscoverage level of the conformal sets in `scores`; NaN when the package has none.
  double conformal_alpha = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> warnings;  // input looked wrong for the model, etc.
  preprocess::TransformChain chain;   // how the image became the model input
  // How far the logits lie from the calibration-time distribution (docs/calibration.md);
  // ood.score is NaN when the package has no drift reference.
  calibrate::OodScore ood;
};

// Overrides of the manifest's "segmentation" settings for one call; negative / zero values keep
// the manifest's.
struct SegmentOptions {
  double overlap = -1.0;
  int batch_size = 0;
  int mirror = -1;  // -1 manifest, 0 off, 1 on
  bool probabilities = false;
  int largest_component = -1;
  int fill_holes = -1;
  std::function<bool(uint64_t, uint64_t)> progress;  // false cancels
};

struct Region {
  std::string name;
  std::vector<int> values;  // label-map values that make up the region
  segment::RegionStats stats;
};

struct Segmentation {
  // Label-map value -> class name. [0] is the background: for softmax models the manifest's first
  // label, for sigmoid models "background" followed by the manifest's labels.
  std::vector<std::string> classes;
  std::unique_ptr<Image> mask;  // 1 channel, the input image's grid and geometry
  // Per model output channel probabilities on the input grid, when asked for (else null).
  std::unique_ptr<Image> probabilities;
  std::vector<Region> regions;  // every foreground class, then the manifest's unions
  std::vector<std::string> warnings;
  preprocess::TransformChain chain;
  std::map<std::string, SegmentCodes> codes;  // the manifest's DICOM SEG codes per class name
};

struct Result;  // model/result.hpp

struct LoadOptions {
  infer::RuntimeOptions runtime;
  bool warmup = true;
};

class Model {
 public:
  // Finds (see resolve_package), validates and loads a package, then runs one warm-up batch
  // that also checks the model's output shape against the manifest's labels.
  static std::shared_ptr<const Model> load(const std::string& name_or_path,
                                           const LoadOptions& options);

  const Manifest& manifest() const { return manifest_; }
  const infer::Runtime& runtime() const { return *runtime_; }
  const preprocess::Pipeline& pipeline() const { return pipeline_; }
  const std::vector<std::string>& load_warnings() const { return load_warnings_; }

  // Runs the manifest's task with the manifest's settings: a classification or a segmentation
  // (model/result.hpp). The one place that dispatches on the task: the C API (mv_model_run,
  // mv_model_run_batch), and through it Python and the CLI, call this.
  Result run(const Image& image) const;
  // Every image's Result, in order: classification models run them as one batch, segmentation
  // models one after the other. Throws before returning any when one fails.
  std::vector<Result> run_batch(const std::vector<const Image*>& images) const;
  // segment() with per-call overrides, as a Result (mv_model_segment).
  Result run_segmentation(const Image& image, const SegmentOptions& options) const;

  // Preprocesses every image and runs them as one batch. Throws medvision::Error.
  std::vector<Classification> classify(const std::vector<const Image*>& images) const;

  // Segments one image (2D or 3D): preprocessing, sliding-window inference, activation, the
  // probabilities mapped back onto the input grid, label map, post-processing and measurements.
  Segmentation segment(const Image& image, const SegmentOptions& options) const;

  // Preprocessing + batching alone (used by classify, CAM and benchmarks).
  std::vector<preprocess::Prepared> prepare(const std::vector<const Image*>& images) const;
  // Stacks prepared inputs into one [N, ...] buffer.
  static std::vector<float> stack(const std::vector<preprocess::Prepared>& inputs,
                                  std::vector<int64_t>* shape);
  // Turns raw logits [N, L] into results (activation; calibration when the manifest has it).
  std::vector<Classification> interpret(const infer::Tensor& logits,
                                        std::vector<preprocess::Prepared>&& inputs) const;

 private:
  Model() = default;
  Manifest manifest_;
  preprocess::Pipeline pipeline_;
  std::unique_ptr<infer::Runtime> runtime_;
  // The manifest's calibration and thresholds, parsed once at load (absent when both are null).
  std::optional<calibrate::ScoreCalibration> calibration_;
  std::vector<std::string> load_warnings_;
  // A package loaded from an archive: its extracted folder, removed with the model.
  std::shared_ptr<const class ExtractedPackage> extracted_;
};

}  // namespace medvision::model
