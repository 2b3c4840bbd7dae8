#pragma once
// The labels CSV that `medvision calibrate` and `medvision evaluate` read (docs/calibration.md):
// image paths and their labels, read by the library (mv_labels_csv_read()).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "medvision/medvision.hpp"

namespace mvcli {

// A labelled validation set: image paths and, per image, label_count values in {0, 1}
// (sigmoid) or one class index (softmax).
struct LabelledSet {
  std::vector<std::string> paths;
  std::vector<int32_t> labels;
};

// mv_labels_csv_read() for a model with `model_labels`; throws medvision::Exception with the
// library's message (the file, the line and the problem).
inline LabelledSet read_labels_csv(const std::string& csv,
                                   const std::vector<std::string>& model_labels, bool softmax) {
  std::vector<const char*> names;
  names.reserve(model_labels.size());
  for (const auto& l : model_labels) names.push_back(l.c_str());
  mv_labels_csv* raw = nullptr;
  medvision::check(
      mv_labels_csv_read(csv.c_str(), names.data(), names.size(), softmax ? 1 : 0, &raw));
  const std::unique_ptr<mv_labels_csv, decltype(&mv_labels_csv_free)> owned(raw,
                                                                            mv_labels_csv_free);
  LabelledSet set;
  const size_t count = mv_labels_csv_count(raw);
  set.paths.reserve(count);
  for (size_t i = 0; i < count; ++i) set.paths.emplace_back(mv_labels_csv_path(raw, i));
  size_t values = 0;
  const int32_t* labels = mv_labels_csv_labels(raw, &values);
  set.labels.assign(labels, labels + values);
  return set;
}

}  // namespace mvcli
