#pragma once
// The opaque C handles: each wraps the C++ object it stands for.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/image.hpp"
#include "model/model.hpp"
#include "model/result.hpp"

struct mv_image {
  // Owning, or (the mask and probability maps of a result) a non-owning alias of an image that
  // the result owns: mv_image_free() of an alias frees only the handle.
  std::shared_ptr<medvision::Image> image;
};

struct mv_model {
  std::shared_ptr<const medvision::model::Model> model;
  std::string manifest_json;  // serialised once at load
  std::string device;
};

struct mv_result {
  medvision::model::Result result;
  mv_task task = MV_TASK_CLASSIFICATION;
  // Segmentation results: the label map and (optional) probability maps as image handles lent
  // out, aliases of result.segmentation's images.
  std::unique_ptr<mv_image> mask;
  std::unique_ptr<mv_image> probabilities;
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

// mv_model_calibrate_report(): the report, serialised once.
struct mv_calibration_report {
  std::string json;
};

// mv_model_run_many(): one entry per input, in input order.
struct mv_result_list {
  struct Item {
    mv_status status = MV_OK;
    std::string message;
    std::unique_ptr<mv_result> result;
  };
  std::vector<Item> items;
};
