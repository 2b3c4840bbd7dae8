#pragma once
// The opaque C handles: each wraps the C++ object it stands for.

#include <memory>
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
  medvision::model::Classification classification;
  std::string json;  // serialised once when the result is made
};

#include "explain/cam.hpp"

struct mv_heatmap {
  medvision::explain::Heatmap heatmap;
  // Of the model that made the map, for the derived objects written from it (DICOM SC).
  std::string model_name;
  std::string model_version;
  std::string notice;
};
