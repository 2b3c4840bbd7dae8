// The derived objects written from a Result: label-map NIfTI, outline overlay PNG, DICOM SEG and
// DICOM SR. The io writers know the formats; this file knows what a result says in them.

#include <cmath>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/writers.hpp"
#include "model/result.hpp"

namespace medvision::model {

namespace {

const Segmentation& segmentation_of(const Result& r, const char* what) {
  if (r.task != Task::kSegmentation || !r.segmentation.mask) {
    throw Error(MV_ERR_INVALID_ARGUMENT, std::string(what) + ": not a segmentation result");
  }
  return r.segmentation;
}

// One description per foreground class, coloured from a palette that stays distinct for
// colour-blind readers (io::class_colour, Okabe-Ito; docs/segmentation.md), coded as the
// manifest's segmentation.codes say (else the writer's generic "Tissue").
std::vector<io::SegmentDescription> segments_of(const Segmentation& s) {
  std::vector<io::SegmentDescription> out;
  for (size_t v = 1; v < s.classes.size(); ++v) {
    io::SegmentDescription d;
    d.label = s.classes[v];
    d.value = static_cast<int>(v);
    d.rgb = io::class_colour(static_cast<int>(v));
    if (auto c = s.codes.find(s.classes[v]); c != s.codes.end()) {
      d.category = {c->second.category.value, c->second.category.scheme,
                    c->second.category.meaning};
      d.type = {c->second.type.value, c->second.type.scheme, c->second.type.meaning};
    }
    out.push_back(std::move(d));
  }
  return out;
}

io::DerivedInfo derived_info(const Result& r, const std::string& what) {
  io::DerivedInfo info;
  info.model_name = r.model_name;
  info.model_version = r.model_version;
  info.notice = r.notice;
  info.series_description = r.model_name + " " + r.model_version + " " + what;
  return info;
}

io::Code to_code(const ConceptCode& c) { return {c.value, c.scheme, c.meaning}; }

// The finding a label or region reports: the manifest's "codes", else (segmentation) the
// segment's type from segmentation.codes, else none (the writer codes the label locally).
io::Code finding_of(const Result& r, const std::string& label) {
  if (auto c = r.codes.find(label); c != r.codes.end()) return to_code(c->second);
  if (auto c = r.segmentation.codes.find(label); c != r.segmentation.codes.end()) {
    return to_code(c->second.type);
  }
  return {};
}

// What the report says, from the result (manifest label order; regions in result order).
io::SrContent sr_content(const Result& r) {
  io::SrContent c;
  c.info = derived_info(r, "report");
  if (r.task == Task::kSegmentation) {
    c.conformal_alpha = std::nan("");
    for (const auto& reg : r.segmentation.regions) {
      io::SrFinding f;
      f.label = reg.name;
      f.finding = finding_of(r, reg.name);
      f.has_region = true;
      f.voxels = static_cast<uint64_t>(reg.stats.voxels);
      f.volume_ml = reg.stats.volume_ml;
      f.area_mm2 = reg.stats.area_mm2;
      // One class is one segment of the SEG (write_dicom_seg labels it by class).
      if (reg.values.size() == 1) f.segment_label = reg.name;
      c.findings.push_back(std::move(f));
    }
    return c;
  }
  c.softmax = r.classification.softmax;
  c.conformal_alpha = r.classification.conformal_alpha;
  for (const auto& s : r.classification.scores) {
    io::SrFinding f;
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

void write_mask_nifti(const Result& result, const std::string& path) {
  const Segmentation& s = segmentation_of(result, path.c_str());
  // Label values are class indices: uint8 holds up to 256 classes (background included).
  io::write_nifti(*s.mask, path,
                  s.classes.size() <= 256 ? io::NiftiType::kUint8 : io::NiftiType::kInt16);
}

void write_overlay_png(const Result& result, const Image& image, int64_t slice,
                       const std::string& path) {
  const Segmentation& s = segmentation_of(result, path.c_str());
  int64_t h = 0, w = 0;
  const auto segments = segments_of(s);
  const auto rgb = io::render_outline_overlay(image, *s.mask, slice, segments, &h, &w);
  // The legend (which colour is which structure), the model and the notice, below the picture.
  io::Annotation note;
  note.title = result.model_name + " " + result.model_version;
  for (const auto& d : segments) note.swatches.emplace_back(d.label, d.rgb);
  int64_t ah = 0, aw = 0;
  const auto annotated = io::annotate(rgb, h, w, note, &ah, &aw);
  io::write_png_rgb(path, annotated, ah, aw);
}

void write_dicom_seg(const Result& result, const Image& source, const std::string& path) {
  const Segmentation& s = segmentation_of(result, path.c_str());
  io::write_dicom_seg(*s.mask, source, segments_of(s), derived_info(result, "segmentation"), path);
}

void write_dicom_sr(const Result& result, const Image& source, const std::string& seg_path,
                    const std::string& path) {
  io::write_dicom_sr(sr_content(result), source, seg_path, path);
}

}  // namespace medvision::model
