// C API of reference label maps (medvision.h "Reference label maps"): mv_label_map_load() over
// io::read_label_map (io/dicom_seg_reader.cpp).

#include <cmath>
#include <cstddef>
#include <memory>
#include <string>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "common/utf8.hpp"
#include "io/label_map.hpp"
#include "medvision/medvision.h"

namespace {

constexpr size_t kLabelMapOptionsV1 =
    offsetof(mv_label_map_options, fractional_threshold) + sizeof(double);

mv_label_map_options default_label_map_options() {
  mv_label_map_options o{};
  o.struct_size = sizeof(mv_label_map_options);
  o.labels = nullptr;
  o.values = nullptr;
  o.label_count = 0;
  o.overlap = MV_LABEL_OVERLAP_ERROR;
  o.fractional_threshold = 0.5;
  return o;
}

}  // namespace

extern "C" {

mv_status mv_label_map_options_init(mv_label_map_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kLabelMapOptionsV1,
                                       default_label_map_options(), "mv_label_map_options_init");
  MV_CAPI_END
}

mv_status mv_label_map_load(const char* path, const mv_image* image,
                            const mv_label_map_options* opts, mv_image** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(path != nullptr && *path != '\0', "mv_label_map_load: path is NULL or empty");
  MV_CHECK_ARG(image != nullptr, "mv_label_map_load: image is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_label_map_load: out is NULL");
  mv_label_map_options o = default_label_map_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kLabelMapOptionsV1, "mv_label_map_load: mv_label_map_options is too small");
      s != MV_OK) {
    return s;
  }
  MV_CHECK_ARG(o.label_count == 0 || o.labels != nullptr,
               "mv_label_map_load: labels is NULL with label_count > 0");
  MV_CHECK_ARG(o.overlap >= MV_LABEL_OVERLAP_ERROR && o.overlap <= MV_LABEL_OVERLAP_HIGHEST,
               "mv_label_map_load: overlap is not an mv_label_overlap");
  MV_CHECK_ARG(o.fractional_threshold > 0 && o.fractional_threshold <= 1,
               "mv_label_map_load: fractional_threshold must be in (0, 1]");
  medvision::io::LabelMapOptions lo;
  for (size_t i = 0; i < o.label_count; ++i) {
    MV_CHECK_ARG(o.labels[i] != nullptr && *o.labels[i] != '\0',
                 ("mv_label_map_load: labels[" + std::to_string(i) + "] is NULL or empty").c_str());
    lo.labels.emplace_back(o.labels[i]);
    if (o.values != nullptr) {
      MV_CHECK_ARG(
          o.values[i] > 0 && o.values[i] <= 65535,
          ("mv_label_map_load: values[" + std::to_string(i) + "] must be in 1..65535").c_str());
      lo.values.push_back(o.values[i]);
    }
  }
  lo.overlap = static_cast<mv_label_overlap>(o.overlap);
  lo.fractional_threshold = o.fractional_threshold;
  auto map = medvision::io::read_label_map(path, *image->image, lo);
  for (auto& w : map->warnings) w = medvision::to_valid_utf8(w);
  auto handle = std::make_unique<mv_image>();
  handle->image = std::move(map);
  *out = handle.release();
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
