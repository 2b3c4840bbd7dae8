#pragma once
// medvision::calibrate: the labels CSV that `medvision calibrate --labels` and `medvision
// evaluate` read (docs/calibration.md), also reachable as mv_labels_csv_read(): image paths and
// their labels, in the layout mv_model_calibrate() and mv_evaluate() take.

#include <cstdint>
#include <string>
#include <vector>

namespace medvision::calibrate {

// A labelled image set: image paths and, per image, `label_count` values in {0, 1} (sigmoid
// models) or one class index (softmax models).
struct LabelledSet {
  std::vector<std::string> paths;
  std::vector<int32_t> labels;
};

// Reads `path,label` (label names, '|'-separated for multi-label; "normal", "none", "no finding"
// or empty mean no positive label unless the model has a label of that name; names match the
// model's case-insensitively) or
// `path,<label>,<label>...` with 0/1 columns named as the model's labels. Relative paths are
// relative to the CSV's folder; blank lines are skipped. Cells are split at every comma (no
// quoting: paths and label names here never hold commas) and lose trailing spaces and '\r'.
// Throws medvision::Error naming the file, the line and the problem: MV_ERR_IO (cannot open),
// MV_ERR_INVALID_ARGUMENT (anything wrong with the contents, or no model labels).
LabelledSet read_labels_csv(const std::string& csv, const std::vector<std::string>& model_labels,
                            bool softmax);

}  // namespace medvision::calibrate
