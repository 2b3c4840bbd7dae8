// C API of the labels CSV reader (calibrate/labels_csv.hpp): what `medvision calibrate --labels`
// and `medvision evaluate` read, for any front end.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "calibrate/labels_csv.hpp"
#include "capi/capi_guard.hpp"

struct mv_labels_csv {
  medvision::calibrate::LabelledSet set;
};

extern "C" {

mv_status mv_labels_csv_read(const char* path, const char* const* labels, size_t label_count,
                             int32_t softmax, mv_labels_csv** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(path != nullptr && out != nullptr, "mv_labels_csv_read: path or out is NULL");
  MV_CHECK_ARG(labels != nullptr || label_count == 0, "mv_labels_csv_read: labels is NULL");
  std::vector<std::string> names;
  for (size_t k = 0; k < label_count; ++k) {
    MV_CHECK_ARG(labels[k] != nullptr, "mv_labels_csv_read: a label name is NULL");
    names.emplace_back(labels[k]);
  }
  auto csv = std::make_unique<mv_labels_csv>();
  csv->set = medvision::calibrate::read_labels_csv(path, names, softmax != 0);
  *out = csv.release();
  return MV_OK;
  MV_CAPI_END
}

size_t mv_labels_csv_count(const mv_labels_csv* csv) MV_NOEXCEPT {
  return csv == nullptr ? 0 : csv->set.paths.size();
}

const char* mv_labels_csv_path(const mv_labels_csv* csv, size_t index) MV_NOEXCEPT {
  if (csv == nullptr || index >= csv->set.paths.size()) return "";
  return csv->set.paths[index].c_str();
}

const int32_t* mv_labels_csv_labels(const mv_labels_csv* csv, size_t* out_count) MV_NOEXCEPT {
  if (out_count != nullptr) *out_count = csv == nullptr ? 0 : csv->set.labels.size();
  return csv == nullptr ? nullptr : csv->set.labels.data();
}

void mv_labels_csv_free(mv_labels_csv* csv) MV_NOEXCEPT { delete csv; }

}  // extern "C"
