// C API of DICOM Structured Reports: mv_result_write_dicom_sr.

#include <cstddef>
#include <cstring>
#include <string>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "model/result.hpp"

namespace {

constexpr size_t kSrOptionsV1 = offsetof(mv_dicom_sr_options, seg_path) + sizeof(const char*);

mv_dicom_sr_options default_sr_options() {
  mv_dicom_sr_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.seg_path = nullptr;
  return o;
}

}  // namespace

extern "C" {

mv_status mv_dicom_sr_options_init(mv_dicom_sr_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kSrOptionsV1, default_sr_options(),
                                       "mv_dicom_sr_options_init");
  MV_CAPI_END
}

mv_status mv_result_write_dicom_sr(const mv_result* r, const mv_image* source,
                                   const mv_dicom_sr_options* opts, const char* path) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(r != nullptr, "mv_result_write_dicom_sr: result is NULL");
  MV_CHECK_ARG(source != nullptr, "mv_result_write_dicom_sr: source is NULL");
  MV_CHECK_ARG(path != nullptr && *path != '\0', "mv_result_write_dicom_sr: path is NULL or empty");
  mv_dicom_sr_options o = default_sr_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kSrOptionsV1,
          "mv_result_write_dicom_sr: mv_dicom_sr_options.struct_size is smaller than any known "
          "version");
      s != MV_OK) {
    return s;
  }
  if (r->task == MV_TASK_SEGMENTATION) {
    const medvision::Image& m = *r->mask->image;
    const medvision::Image& im = *source->image;
    if (m.depth() != im.depth() || m.height() != im.height() || m.width() != im.width()) {
      return medvision::capi::fail(MV_ERR_SHAPE_MISMATCH,
                                   "mv_result_write_dicom_sr: the source is not the image the "
                                   "segmentation was computed from (another grid)");
    }
  }
  medvision::model::write_dicom_sr(r->result, *source->image,
                                   o.seg_path != nullptr ? o.seg_path : "", path);
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
