// C API of DICOM Structured Reports: mv_result_write_dicom_sr.

#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "io/writers.hpp"

namespace {

constexpr size_t kSrOptionsV1 = offsetof(mv_dicom_sr_options, seg_path) + sizeof(const char*);

mv_dicom_sr_options default_sr_options() {
  mv_dicom_sr_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.seg_path = nullptr;
  return o;
}

medvision::io::Code to_code(const medvision::model::ConceptCode& c) {
  return {c.value, c.scheme, c.meaning};
}

// The finding a label or region reports: the manifest's "codes", else (segmentation) the
// segment's type from segmentation.codes, else none (the writer codes the label locally).
medvision::io::Code finding_of(const mv_result& r, const std::string& label) {
  if (auto c = r.codes.find(label); c != r.codes.end()) return to_code(c->second);
  if (auto c = r.segmentation.codes.find(label); c != r.segmentation.codes.end()) {
    return to_code(c->second.type);
  }
  return {};
}

// What the report says, from the result (manifest label order; regions in result order).
medvision::io::SrContent sr_content(const mv_result& r) {
  medvision::io::SrContent c;
  c.info.model_name = r.model_name;
  c.info.model_version = r.model_version;
  c.info.notice = r.notice;
  c.info.series_description = r.model_name + " " + r.model_version + " report";
  if (r.task == MV_TASK_SEGMENTATION) {
    c.conformal_alpha = std::nan("");
    for (const auto& reg : r.segmentation.regions) {
      medvision::io::SrFinding f;
      f.label = reg.name;
      f.finding = finding_of(r, reg.name);
      f.has_region = true;
      f.voxels = static_cast<uint64_t>(reg.stats.voxels);
      f.volume_ml = reg.stats.volume_ml;
      f.area_mm2 = reg.stats.area_mm2;
      // One class is one segment of the SEG (mv_result_write_dicom_seg labels it by class).
      if (reg.values.size() == 1) f.segment_label = reg.name;
      c.findings.push_back(std::move(f));
    }
    return c;
  }
  c.softmax = r.classification.softmax;
  c.conformal_alpha = r.classification.conformal_alpha;
  for (const auto& s : r.classification.scores) {
    medvision::io::SrFinding f;
    f.label = s.label;
    f.finding = finding_of(r, s.label);
    f.has_scores = true;
    f.probability = static_cast<double>(s.probability);
    f.calibrated = static_cast<double>(s.calibrated);
    f.decision = s.decision;
    f.refer = s.refer;
    f.conformal = s.conformal;
    c.findings.push_back(std::move(f));
  }
  return c;
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
  medvision::io::write_dicom_sr(sr_content(*r), *source->image,
                                o.seg_path != nullptr ? o.seg_path : "", path);
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
