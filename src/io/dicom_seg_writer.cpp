// DICOM Segmentation (PS3.3 A.51) writing through DCMTK's dcmseg: BINARY segments, one frame per
// (segment, slice) where the segment is present.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmiod/cielabutil.h>
#include <dcmtk/dcmiod/iodreferences.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <cmath>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/geometry.hpp"
#include "io/dicom_derived.hpp"
#include "io/writers.hpp"

namespace medvision::io {
namespace {

using dicom::check;
using dicom::decimal_string;

constexpr const char* kWhat = "write_dicom_seg";

std::string get(DcmItem& item, const DcmTagKey& tag) {
  OFString s;
  item.findAndGetOFString(tag, s);
  return s.c_str();
}

void check_inputs(const Image& label_map, const Image& source,
                  const std::vector<SegmentDescription>& segments, const std::string& path) {
  if (label_map.channels() != 1 || label_map.depth() != source.depth() ||
      label_map.height() != source.height() || label_map.width() != source.width()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                path + ": the label map must have one channel and the source's grid");
  }
  const Geometry& a = label_map.geometry;
  const Geometry& b = source.geometry;
  for (size_t i = 0; i < 9; ++i) {
    const bool same = (i >= 3 || (std::abs(a.spacing[i] - b.spacing[i]) < 1e-4 &&
                                  std::abs(a.origin[i] - b.origin[i]) < 1e-3)) &&
                      std::abs(a.direction[i] - b.direction[i]) < 1e-4;
    if (!same) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  path + ": the label map's geometry differs from the source image's");
    }
  }
  if (segments.empty() || segments.size() > 65535) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": 1 to 65535 segment descriptions are needed");
  }
  std::set<int> values;
  for (const auto& s : segments) {
    if (s.value <= 0 || !values.insert(s.value).second || s.label.empty()) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  fmt::format("{}: segment values must be positive and distinct, labels non-empty "
                              "(value {})",
                              path, s.value));
    }
  }
  const float* p = label_map.data();
  for (size_t i = 0; i < label_map.size(); ++i) {
    if (p[i] == 0.0f) continue;
    if (!(p[i] == std::floor(p[i])) || values.count(static_cast<int>(p[i])) == 0) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  fmt::format("{}: label map value {:f} has no segment description", path,
                              static_cast<double>(p[i])));
    }
  }
}

std::unique_ptr<DcmSegment> make_segment(const SegmentDescription& d, const DerivedInfo& info,
                                         const std::string& path) {
  // An empty code (e.g. from `{}` in an initialiser) falls back to the generic "Tissue".
  const Code fallback = SegmentDescription().category;
  const Code& category = d.category.value.empty() ? fallback : d.category;
  const Code& type = d.type.value.empty() ? fallback : d.type;
  DcmSegment* raw = nullptr;
  const std::string algo = info.model_name.empty() ? "medvision" : info.model_name;
  check(DcmSegment::create(
            raw, d.label.c_str(),
            CodeSequenceMacro(category.value.c_str(), category.scheme.c_str(),
                              category.meaning.c_str()),
            CodeSequenceMacro(type.value.c_str(), type.scheme.c_str(), type.meaning.c_str()),
            DcmSegTypes::SAT_AUTOMATIC, algo.c_str()),
        MV_ERR_INVALID_ARGUMENT, path + ": segment '" + d.label + "' is not valid DICOM");
  std::unique_ptr<DcmSegment> seg(raw);
  AlgorithmIdentificationMacro& id = seg->getSegmentationAlgorithmIdentification();
  // CID 7162 "Surface Processing Algorithm Families": (123110, DCM, "Artificial Intelligence").
  id.getAlgorithmFamilyCode().set("123110", "DCM", "Artificial Intelligence");
  id.setAlgorithmName(algo.c_str());
  id.setAlgorithmVersion(info.model_version.empty() ? "unknown" : info.model_version.c_str());
  double l = 0, a = 0, b = 0;
  IODCIELabUtil::rgb2DicomLab(l, a, b, d.rgb[0] / 255.0, d.rgb[1] / 255.0, d.rgb[2] / 255.0);
  seg->setRecommendedDisplayCIELabValue(static_cast<Uint16>(std::lround(l)),
                                        static_cast<Uint16>(std::lround(a)),
                                        static_cast<Uint16>(std::lround(b)));
  return seg;
}

// Plane orientation and pixel measures, the same for every frame.
void add_shared_groups(DcmSegmentation& seg, const Geometry& g, const std::string& path) {
  const auto& d = g.direction;  // column 0: along a row; column 1: down the columns
  FGPlaneOrientationPatient* orient = FGPlaneOrientationPatient::createMinimal(
      decimal_string(d[0]).c_str(), decimal_string(d[3]).c_str(), decimal_string(d[6]).c_str(),
      decimal_string(d[1]).c_str(), decimal_string(d[4]).c_str(), decimal_string(d[7]).c_str());
  std::unique_ptr<FGPlaneOrientationPatient> orient_owner(orient);
  if (orient == nullptr) throw Error(MV_ERR_INTERNAL, path + ": cannot build plane orientation");
  check(seg.addForAllFrames(*orient), MV_ERR_INTERNAL, path + ": plane orientation");
  FGPixelMeasures measures;
  const std::string spacing = decimal_string(g.spacing[1]) + "\\" + decimal_string(g.spacing[0]);
  check(measures.setPixelSpacing(spacing.c_str()), MV_ERR_INTERNAL, path + ": pixel spacing");
  check(measures.setSliceThickness(decimal_string(g.spacing[2]).c_str()), MV_ERR_INTERNAL,
        path + ": slice thickness");
  check(measures.setSpacingBetweenSlices(decimal_string(g.spacing[2]).c_str()), MV_ERR_INTERNAL,
        path + ": slice spacing");
  check(seg.addForAllFrames(measures), MV_ERR_INTERNAL, path + ": pixel measures");
}

}  // namespace

// Over 120 lines on purpose: one SEG instance built in the order of the IOD's
// modules (segments, shared and per-frame functional groups, dimensions, references); the parts
// share the DCMTK document and the source's geometry.
// NOLINTNEXTLINE(readability-function-size)
void write_dicom_seg(const Image& label_map, const Image& source,
                     const std::vector<SegmentDescription>& segments, const DerivedInfo& info,
                     const std::string& path) {
  const auto& sources = dicom::require_file_sources(source, kWhat);
  check_inputs(label_map, source, segments, path);
  if (label_map.height() > 65535 || label_map.width() > 65535) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": images wider than 65535 pixels");
  }
  auto first = dicom::reload_source(sources.front());
  DcmDataset& src = *first->getDataset();
  dicom::drop_invalid_optional_values(src);

  const std::string model = info.model_name.empty() ? "medvision" : info.model_name;
  IODGeneralEquipmentModule::EquipmentInfo equipment("medvision", model.substr(0, 64).c_str(),
                                                     "none", MV_VERSION_STRING);
  ContentIdentificationMacro content("1", "SEGMENTATION", info.notice.substr(0, 64).c_str(), "");
  DcmSegmentation* raw = nullptr;
  check(DcmSegmentation::createBinarySegmentation(raw, static_cast<Uint16>(label_map.height()),
                                                  static_cast<Uint16>(label_map.width()), equipment,
                                                  content),
        MV_ERR_INTERNAL, path + ": cannot create the segmentation");
  std::unique_ptr<DcmSegmentation> seg(raw);

  // Patient, study and frame of reference come from the source (importFromSourceImage copies
  // DCMTK's view of those modules; copy_patient_and_study below completes them verbatim).
  check(seg->importFromSourceImage(src), MV_ERR_INVALID_ARGUMENT,
        sources.front().path + ": cannot take over patient, study and frame of reference");
  OFString for_uid;
  seg->getFrameOfReference().getFrameOfReferenceUID(for_uid);
  if (for_uid.empty()) {
    // Projection images (CR, DX) have no Frame of Reference, but the Segmentation IOD needs one
    // to carry plane positions: the SEG gets its own, with positions in the image's pixel grid
    // as medvision describes it (an identity geometry for such images).
    check(seg->getFrameOfReference().setFrameOfReferenceUID(dicom::new_uid().c_str()),
          MV_ERR_INTERNAL, path + ": frame of reference");
  }
  const std::string series_uid = dicom::new_uid();
  seg->getSeries().setSeriesInstanceUID(series_uid.c_str());
  seg->getSeries().setSeriesDescription(dicom::series_description(info).c_str());
  seg->getSeries().setSeriesNumber("9001");
  seg->getSOPCommon().setSOPInstanceUID(dicom::new_uid().c_str());

  std::vector<Uint16> numbers;
  for (const auto& d : segments) {
    auto s = make_segment(d, info, path);
    Uint16 number = 0;
    check(seg->addSegment(s.get(), number), MV_ERR_INTERNAL, path + ": cannot add a segment");
    static_cast<void>(s.release());  // owned by the segmentation now
    numbers.push_back(number);
  }
  add_shared_groups(*seg, label_map.geometry, path);

  // Dimensions: segment number, then the slice position (as dcmqi and highdicom do).
  const std::string dim_uid = dicom::new_uid();
  check(seg->getDimensions().addDimensionIndex(DCM_ReferencedSegmentNumber, dim_uid.c_str(),
                                               DCM_SegmentIdentificationSequence,
                                               "ReferencedSegmentNumber"),
        MV_ERR_INTERNAL, path + ": dimension index");
  check(seg->getDimensions().addDimensionIndex(DCM_ImagePositionPatient, dim_uid.c_str(),
                                               DCM_PlanePositionSequence, "ImagePositionPatient"),
        MV_ERR_INTERNAL, path + ": dimension index");

  const Geometry& g = label_map.geometry;
  const size_t plane = label_map.plane_size();
  const std::string source_series = get(src, DCM_SeriesInstanceUID);
  std::vector<uint8_t> mask(plane);
  for (size_t s = 0; s < segments.size(); ++s) {
    const auto value = static_cast<float>(segments[s].value);
    int64_t frames = 0;
    for (int64_t k = 0; k < label_map.depth(); ++k) {
      const float* p = label_map.data() + static_cast<size_t>(k) * plane;
      size_t set = 0;
      for (size_t i = 0; i < plane; ++i) set += (mask[i] = p[i] == value ? 1 : 0);
      // A segment absent everywhere keeps one empty frame (its first slice) to stay declared.
      const bool last_chance = frames == 0 && k + 1 == label_map.depth();
      if (set == 0 && !last_chance) continue;
      if (set == 0) std::fill(mask.begin(), mask.end(), uint8_t{0});
      const int64_t slice = set == 0 ? 0 : k;
      const DicomSource& ref = sources[static_cast<size_t>(slice)];

      FGPlanePosPatient position;
      const geometry::Vec3 pos = geometry::vec(g.origin) + static_cast<double>(slice) *
                                                               g.spacing[2] *
                                                               geometry::direction(g).col(2);
      check(position.setImagePositionPatient(decimal_string(pos[0]).c_str(),
                                             decimal_string(pos[1]).c_str(),
                                             decimal_string(pos[2]).c_str()),
            MV_ERR_INTERNAL, path + ": plane position");
      FGFrameContent content_fg;
      check(content_fg.setDimensionIndexValues(numbers[s], 0), MV_ERR_INTERNAL, path);
      check(content_fg.setDimensionIndexValues(static_cast<Uint32>(slice + 1), 1), MV_ERR_INTERNAL,
            path);
      ImageSOPInstanceReferenceMacro image_ref;
      image_ref.setReferencedSOPClassUID(ref.sop_class_uid.c_str());
      image_ref.setReferencedSOPInstanceUID(ref.sop_instance_uid.c_str());
      if (ref.frame > 0) image_ref.addReferencedFrameNumber(static_cast<Uint16>(ref.frame));
      OFVector<ImageSOPInstanceReferenceMacro> derived_from;
      derived_from.push_back(image_ref);
      std::unique_ptr<FGDerivationImage> derivation(DcmSegmentation::createDerivationImageFG(
          derived_from, ("Segmentation by " + model).substr(0, 1024).c_str()));
      if (!derivation) throw Error(MV_ERR_INTERNAL, path + ": cannot build the derivation");
      OFVector<FGBase*> groups;
      groups.push_back(&position);
      groups.push_back(&content_fg);
      groups.push_back(derivation.get());
      check(seg->addFrame(mask.data(), numbers[s], groups), MV_ERR_INTERNAL,
            path + ": cannot add a frame");
      ++frames;
    }
  }

  // Referenced Series Sequence (Common Instance Reference module): every source instance.
  IODReferences refs;
  std::set<std::string> seen;
  for (const auto& ref : sources) {
    if (!seen.insert(ref.sop_instance_uid).second) continue;  // frames of one instance
    auto r = std::make_unique<IODImageReference>(
        get(src, DCM_PatientID).c_str(), get(src, DCM_StudyInstanceUID).c_str(),
        source_series.c_str(), ref.sop_instance_uid.c_str(), ref.sop_class_uid.c_str());
    if (refs.add(r.get())) static_cast<void>(r.release());  // taken over on success
  }
  seg->getCommonInstanceReference().addReferences(refs);

  DcmFileFormat out;
  check(seg->writeDataset(*out.getDataset()), MV_ERR_INVALID_ARGUMENT,
        path +
            ": the segmentation would not be valid DICOM (the source lacks an attribute "
            "the Segmentation IOD needs)");
  DcmDataset& ds = *out.getDataset();
  dicom::copy_patient_and_study(src, ds);
  if (!info.notice.empty()) ds.putAndInsertString(DCM_ImageComments, info.notice.c_str());
  check(out.saveFile(path.c_str(), EXS_LittleEndianExplicit), MV_ERR_IO, path + ": cannot write");
}

}  // namespace medvision::io
