#pragma once
// medvision::model::Result: what one run of a model returns, whatever its task, with the JSON
// form of it and the derived objects written from it (label-map NIfTI, outline overlay PNG,
// DICOM SEG, DICOM SR). The C API wraps a Result in an mv_result and adds nothing to it.

#include <map>
#include <string>
#include <vector>

#include "common/image.hpp"
#include "model/model.hpp"

namespace medvision::model {

struct Result {
  Task task = Task::kClassification;
  // Who made it (every result shown carries them).
  std::string model_name;
  std::string model_version;
  std::string notice;
  std::map<std::string, ConceptCode> codes;  // the manifest's "codes", for DICOM SR
  Classification classification;             // task == kClassification
  Segmentation segmentation;                 // task == kSegmentation
  std::string json;                          // the result as JSON, serialised once
  // The warnings of either task. A switch without default, as on every dispatch on the task:
  // -Wswitch names it when a task is added (docs/architecture.md, "Add a task").
  const std::vector<std::string>& warnings() const {
    switch (task) {
      case Task::kSegmentation:
        return segmentation.warnings;
      case Task::kClassification:
        break;
    }
    return classification.warnings;
  }
};

// Wraps a task's output: fills in the model's name, version, notice and codes, logs the
// warnings (log level WARN, named after the model) and serialises the JSON (docs/results.md).
Result make_result(const Manifest& manifest, Classification&& classification);
Result make_result(const Manifest& manifest, Segmentation&& segmentation);

// Segmentation results (MV_ERR_INVALID_ARGUMENT for another task). The image passed must be on
// the label map's grid; callers check that (mv_result_* name the function in the message).
// The label map as NIfTI: uint8 when the classes fit, else int16.
void write_mask_nifti(const Result& result, const std::string& path);
// The outlines of each class over one slice of `image` (-1: the one with most foreground), with
// the legend, the model and the notice in a margin below it.
void write_overlay_png(const Result& result, const Image& image, int64_t slice,
                       const std::string& path);
// A DICOM SEG in the source's study: one segment per foreground class, coloured from the
// colour-blind-safe palette and coded as the manifest's segmentation.codes say.
void write_dicom_seg(const Result& result, const Image& source, const std::string& path);
// A DICOM SR (TID 1500) of either task; `seg_path` "" or the SEG written for this result.
void write_dicom_sr(const Result& result, const Image& source, const std::string& seg_path,
                    const std::string& path);

}  // namespace medvision::model
