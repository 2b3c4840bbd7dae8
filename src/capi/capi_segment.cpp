// C API of segmentation: mv_model_segment, mv_segment_options, region measurements.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "capi/segment_result.hpp"
#include "model/result.hpp"

namespace {

constexpr size_t kSegmentOptionsV1 = offsetof(mv_segment_options, progress_user) + sizeof(void*);
constexpr size_t kRegionStatsV1 = offsetof(mv_region_stats, centroid_index) + 3 * sizeof(double);

mv_segment_options default_segment_options() {
  mv_segment_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.overlap = -1.0;
  o.batch_size = 0;
  o.mirror = -1;
  o.probabilities = 0;
  o.largest_component = -1;
  o.fill_holes = -1;
  o.progress = nullptr;
  o.progress_user = nullptr;
  return o;
}

mv_status require_segmentation(const mv_result* r, const char* path, const char* fn) {
  if (r == nullptr || path == nullptr || *path == '\0') {
    return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                 (std::string(fn) + ": result or path is NULL or empty").c_str());
  }
  if (r->task != MV_TASK_SEGMENTATION || !r->mask) {
    return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                 (std::string(fn) + ": not a segmentation result").c_str());
  }
  return MV_OK;
}

// The image the result was computed from must have the label map's grid.
mv_status require_same_grid(const mv_result* r, const mv_image* image, const char* fn) {
  if (image == nullptr) {
    return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                 (std::string(fn) + ": image is NULL").c_str());
  }
  const medvision::Image& m = *r->mask->image;
  const medvision::Image& im = *image->image;
  if (m.depth() != im.depth() || m.height() != im.height() || m.width() != im.width()) {
    return medvision::capi::fail(
        MV_ERR_SHAPE_MISMATCH,
        (std::string(fn) + ": the image is not the one the result was computed from (its grid is " +
         std::to_string(im.width()) + "x" + std::to_string(im.height()) + "x" +
         std::to_string(im.depth()) + ", the mask's " + std::to_string(m.width()) + "x" +
         std::to_string(m.height()) + "x" + std::to_string(m.depth()) + ")")
            .c_str());
  }
  return MV_OK;
}

}  // namespace

extern "C" {

mv_status mv_segment_options_init(mv_segment_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kSegmentOptionsV1,
                                       default_segment_options(), "mv_segment_options_init");
  MV_CAPI_END
}

mv_status mv_model_segment(const mv_model* model, const mv_image* image,
                           const mv_segment_options* opts, mv_result** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(model != nullptr, "mv_model_segment: model is NULL");
  MV_CHECK_ARG(image != nullptr, "mv_model_segment: image is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_model_segment: out is NULL");
  mv_segment_options o = default_segment_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kSegmentOptionsV1,
          "mv_model_segment: mv_segment_options.struct_size is smaller than any known version");
      s != MV_OK)
    return s;
  MV_CHECK_ARG(o.overlap < 1.0 && !std::isnan(o.overlap),
               "mv_model_segment: overlap must be in [0, 1) (or negative for the manifest's)");
  MV_CHECK_ARG(o.batch_size >= 0 && o.batch_size <= 1024,
               "mv_model_segment: batch_size must be in [0, 1024]");
  medvision::model::SegmentOptions so;
  so.overlap = o.overlap;
  so.batch_size = o.batch_size;
  so.mirror = o.mirror < 0 ? -1 : (o.mirror != 0 ? 1 : 0);
  so.probabilities = o.probabilities != 0;
  so.largest_component = o.largest_component < 0 ? -1 : (o.largest_component != 0 ? 1 : 0);
  so.fill_holes = o.fill_holes < 0 ? -1 : (o.fill_holes != 0 ? 1 : 0);
  if (o.progress != nullptr) {
    so.progress = [fn = o.progress, user = o.progress_user](uint64_t done, uint64_t total) {
      return fn(done, total, user) != 0;
    };
  }
  *out = medvision::capi::wrap_result(model->model->run_segmentation(*image->image, so));
  return MV_OK;
  MV_CAPI_END
}

mv_task mv_result_task(const mv_result* r) MV_NOEXCEPT {
  return r ? r->task : MV_TASK_CLASSIFICATION;
}

const mv_image* mv_result_mask(const mv_result* r) MV_NOEXCEPT {
  return r && r->mask ? r->mask.get() : nullptr;
}

const mv_image* mv_result_probability_map(const mv_result* r) MV_NOEXCEPT {
  return r && r->probabilities ? r->probabilities.get() : nullptr;
}

size_t mv_result_region_count(const mv_result* r) MV_NOEXCEPT {
  return r ? r->result.segmentation.regions.size() : 0;
}

const char* mv_result_region_name(const mv_result* r, size_t i) MV_NOEXCEPT {
  if (r == nullptr || i >= r->result.segmentation.regions.size()) return nullptr;
  return r->result.segmentation.regions[i].name.c_str();
}

mv_status mv_result_region(const mv_result* r, size_t i, mv_region_stats* out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(r != nullptr, "mv_result_region: result is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_result_region: out is NULL");
  MV_CHECK_ARG(i < r->result.segmentation.regions.size(),
               ("mv_result_region: index " + std::to_string(i) + " is out of range (" +
                std::to_string(r->result.segmentation.regions.size()) + " regions)")
                   .c_str());
  if (out->struct_size < kRegionStatsV1) {
    return medvision::capi::fail(MV_ERR_ABI_MISMATCH,
                                 "mv_result_region: mv_region_stats.struct_size is smaller than "
                                 "any known version (set it to sizeof(mv_region_stats))");
  }
  const auto& st = r->result.segmentation.regions[i].stats;
  mv_region_stats v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.voxels = static_cast<uint64_t>(st.voxels);
  v.volume_ml = st.volume_ml;
  v.area_mm2 = st.area_mm2;
  for (size_t a = 0; a < 3; ++a) {
    v.bbox_min[a] = st.bbox_min[a];
    v.bbox_max[a] = st.bbox_max[a];
    v.centroid[a] = st.centroid_lps[a];
    v.centroid_index[a] = st.centroid_index[a];
  }
  v.components = static_cast<uint64_t>(st.components);
  v.largest_component_voxels = static_cast<uint64_t>(st.largest_component_voxels);
  v.spacing_known = st.spacing_known ? 1u : 0u;
  const uint32_t keep = out->struct_size;
  std::memcpy(out, &v, std::min<size_t>(keep, sizeof v));
  out->struct_size = keep;
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_result_write_nifti(const mv_result* r, const char* path) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  if (mv_status st = require_segmentation(r, path, "mv_result_write_nifti"); st != MV_OK) return st;
  medvision::model::write_mask_nifti(r->result, path);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_result_write_overlay_png(const mv_result* r, const mv_image* image, int64_t slice,
                                      const char* path) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  if (mv_status st = require_segmentation(r, path, "mv_result_write_overlay_png"); st != MV_OK) {
    return st;
  }
  if (mv_status st = require_same_grid(r, image, "mv_result_write_overlay_png"); st != MV_OK) {
    return st;
  }
  MV_CHECK_ARG(slice >= -1 && slice < r->mask->image->depth(),
               ("mv_result_write_overlay_png: slice " + std::to_string(slice) +
                " is out of range (the volume has " + std::to_string(r->mask->image->depth()) +
                " slices; -1 picks one)")
                   .c_str());
  medvision::model::write_overlay_png(r->result, *image->image, slice, path);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_result_write_dicom_seg(const mv_result* r, const mv_image* source,
                                    const char* path) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  if (mv_status st = require_segmentation(r, path, "mv_result_write_dicom_seg"); st != MV_OK) {
    return st;
  }
  if (mv_status st = require_same_grid(r, source, "mv_result_write_dicom_seg"); st != MV_OK) {
    return st;
  }
  medvision::model::write_dicom_seg(r->result, *source->image, path);
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
