#pragma once
// The opaque C handles: each wraps the C++ object it stands for.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/image.hpp"
#include "model/model.hpp"

struct mv_image {
  std::unique_ptr<medvision::Image> image;
};

struct mv_model {
  std::shared_ptr<const medvision::model::Model> model;
  std::string manifest_json;  // serialised once at load
  std::string device;
};

struct mv_result {
  std::string model_name;
  std::string model_version;
  std::string notice;
  mv_task task = MV_TASK_CLASSIFICATION;
  medvision::model::Classification classification;
  // Segmentation results: the label map and (optional) probability maps as image handles that
  // the result owns and lends out; segmentation.mask/probabilities are moved into them.
  medvision::model::Segmentation segmentation;
  std::unique_ptr<mv_image> mask;
  std::unique_ptr<mv_image> probabilities;
  std::string json;  // serialised once when the result is made
  // The manifest's "codes" (label -> the finding it reports), for DICOM SR.
  std::map<std::string, medvision::model::ConceptCode> codes;
};

#include "explain/cam.hpp"

struct mv_heatmap {
  medvision::explain::Heatmap heatmap;
  // mv_heatmap_image(): made on first use (std::call_once), then lent out.
  mutable std::once_flag image_once;
  mutable std::unique_ptr<mv_image> image;
  // Of the model that made the map, for the derived objects written from it (DICOM SC).
  std::string model_name;
  std::string model_version;
  std::string notice;
};
