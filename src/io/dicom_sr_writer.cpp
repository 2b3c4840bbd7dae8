// DICOM Comprehensive 3D SR (PS3.3 A.35.13) of a result, following TID 1500 (Measurement Report)
// as IHE AI Results (AIR) profiles it, through DCMTK's dcmsr/cmr template classes.
//
// The tree (docs/writers.md has it with the codes):
//   Imaging Measurement Report
//     Language, Observer (device: medvision / the model), Procedure reported, Image Library
//     Imaging Measurements
//       Measurement Group (TID 1501) per classification label: Tracking Identifier (the label),
//         Tracking UID, Finding (the manifest's code), Probability and calibrated Probability
//         (UCUM "1", each with Algorithm Name / Version), evaluations: the finding present /
//         absent (the decision), Refer to a human reader (yes / no), the conformal set
//       Measurement Group (TID 1411 with a SEG, else TID 1501) per segmentation region: Tracking
//         Identifier, Tracking UID, [Referenced Segment, Source series for segmentation],
//         Finding, Volume (ml) / Area (mm2) / Pixel count ({pixels}), Algorithm Name / Version

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/cmr/init.h>
#include <dcmtk/dcmsr/cmr/tid1500.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "common/error.hpp"
#include "common/sha256.hpp"
#include "io/dicom_codecs.hpp"
#include "io/dicom_derived.hpp"
#include "io/writers.hpp"

namespace medvision::io {
namespace {

using dicom::check;
using dicom::decimal_string;

constexpr const char* kWhat = "write_dicom_sr";
// Concepts DICOM does not code (yet) get codes of a local scheme (PS3.16 8.2: "99" prefix),
// declared in the Coding Scheme Identification Sequence.
constexpr const char* kLocal = "99MEDVISION";

// A code as plain text: the constants below need no static initialisation of DCMTK objects.
struct CodeText {
  const char* value;
  const char* scheme;
  const char* meaning;
};

DSRCodedEntryValue code(const std::string& value, const std::string& scheme,
                        const std::string& meaning) {
  return DSRCodedEntryValue(value.c_str(), scheme.c_str(), meaning.substr(0, 64).c_str());
}

// Codes (PS3.16): DCM 122157 "Probability"; SCT 52101004 / 272519000 "Present" / "Absent"
// (CID 240 / 241 style presence values); SCT 373066001 / 373067005 "Yes" / "No"; SCT 118565006
// "Volume" and 42798000 "Area" (CID 7469); DCM 126000 "Imaging Measurement Report"; SCT
// 363679005 "Imaging procedure" (CID 100).
constexpr CodeText kProbability{"122157", "DCM", "Probability"};
constexpr CodeText kPresent{"52101004", "SCT", "Present"};
constexpr CodeText kAbsent{"272519000", "SCT", "Absent"};
constexpr CodeText kYes{"373066001", "SCT", "Yes"};
constexpr CodeText kNo{"373067005", "SCT", "No"};
constexpr CodeText kVolume{"118565006", "SCT", "Volume"};
constexpr CodeText kArea{"42798000", "SCT", "Area"};
constexpr CodeText kImagingProcedure{"363679005", "SCT", "Imaging procedure"};
constexpr CodeText kUnitOne{"1", "UCUM", "no units"};
constexpr CodeText kUnitMl{"ml", "UCUM", "milliliter"};
constexpr CodeText kUnitMm2{"mm2", "UCUM", "square millimeter"};
constexpr CodeText kUnitPixels{"{pixels}", "UCUM", "pixels"};
constexpr CodeText kCalibrated{"CALIBRATED", kLocal, "Calibrated probability"};
constexpr CodeText kRefer{"REFER", kLocal, "Refer to a human reader"};
constexpr CodeText kConformalSet{"CONFORMALSET", kLocal, "Conformal prediction set"};
constexpr CodeText kConformalAlpha{"CONFORMALALPHA", kLocal, "Conformal miscoverage level"};
constexpr CodeText kPixelCount{"PIXELCOUNT", kLocal, "Pixel count"};

DSRCodedEntryValue code(const CodeText& c) { return code(c.value, c.scheme, c.meaning); }

std::string get(DcmItem& item, const DcmTagKey& tag) {
  OFString s;
  item.findAndGetOFString(tag, s);
  return s.c_str();
}

// A stable UID for the device observer "medvision running <model> <version>": 2.25 and the
// first 128 bits of a SHA-256 of the name, as a decimal integer.
std::string device_uid(const DerivedInfo& info) {
  Sha256 h;
  const std::string id = "medvision\n" + info.model_name + "\n" + info.model_version;
  h.update(id.data(), id.size());
  const std::string hex = h.hex_digest().substr(0, 32);
  uint32_t w[4];
  for (size_t i = 0; i < 4; ++i)
    w[i] = static_cast<uint32_t>(std::stoul(hex.substr(i * 8, 8), nullptr, 16));
  std::string digits;
  while (w[0] != 0 || w[1] != 0 || w[2] != 0 || w[3] != 0) {
    uint64_t rem = 0;
    for (auto& x : w) {
      const uint64_t cur = (rem << 32) | x;
      x = static_cast<uint32_t>(cur / 10);
      rem = cur % 10;
    }
    digits.insert(digits.begin(), static_cast<char>('0' + rem));
  }
  return "2.25." + (digits.empty() ? std::string("0") : digits);
}

template <class Units>
CMR_SRNumericMeasurementValueWithUnits<Units> number(double v, const DSRCodedEntryValue& unit,
                                                     const std::string& path) {
  CMR_SRNumericMeasurementValueWithUnits<Units> value(decimal_string(v).c_str(), Units(unit),
                                                      OFFalse);
  // The exact binary value too (Floating Point Value), so that readers need not parse the DS.
  check(value.setFloatingPointRepresentation(v), MV_ERR_INTERNAL, path + ": numeric value");
  return value;
}

// Algorithm Name / Version (TID 4019) under the measurement that the cursor of `t` is in.
void add_algorithm(DSRSubTemplate& t, const DerivedInfo& info, const std::string& path) {
  t.gotoRoot();
  check(t.addExtraContentItem(DSRTypes::RT_hasConceptMod, DSRTypes::VT_Text,
                              DSRTypes::AM_belowCurrent),
        MV_ERR_INTERNAL, path + ": algorithm name");
  check(t.getCurrentContentItem().setConceptName(CODE_DCM_AlgorithmName), MV_ERR_INTERNAL, path);
  check(t.getCurrentContentItem().setStringValue(info.model_name.c_str()), MV_ERR_INTERNAL, path);
  check(t.addExtraContentItem(DSRTypes::RT_hasConceptMod, DSRTypes::VT_Text,
                              DSRTypes::AM_afterCurrent),
        MV_ERR_INTERNAL, path + ": algorithm version");
  check(t.getCurrentContentItem().setConceptName(CODE_DCM_AlgorithmVersion), MV_ERR_INTERNAL, path);
  check(t.getCurrentContentItem().setStringValue(info.model_version.c_str()), MV_ERR_INTERNAL,
        path);
}

DSRCodedEntryValue finding_code(const SrFinding& f) {
  if (!f.finding.value.empty()) return code(f.finding.value, f.finding.scheme, f.finding.meaning);
  return code(f.label, kLocal, f.label);  // a package that codes nothing: the label, locally
}

std::string conformal_text(const SrFinding& f, bool softmax) {
  if (softmax) return (f.conformal & MV_CONFORMAL_IN_SET) ? "in set" : "not in set";
  std::string s;
  if (f.conformal & MV_CONFORMAL_NEGATIVE) s = "negative";
  if (f.conformal & MV_CONFORMAL_POSITIVE) s += s.empty() ? "positive" : ", positive";
  return s.empty() ? "empty" : s;
}

// TID 1501: a classification label.
void add_classification_group(TID1500_MeasurementReport& report, const SrFinding& f,
                              const SrContent& c, const std::string& path) {
  using Group = CMR_TID1501_in_TID1500;
  using Units = CID7181_AbstractMultiDimensionalImageModelComponentUnits;
  // A new TID 1501 instance for each group (the report starts with one, empty).
  if (!report.getIndividualMeasurements().isEmpty()) {
    check(report.addIndividualMeasurements(), MV_ERR_INTERNAL, path + ": measurement group");
  }
  Group& g = report.getIndividualMeasurements();
  const std::string where = path + ": measurement group '" + f.label + "'";
  check(g.setTrackingIdentifier(f.label.substr(0, 64).c_str()), MV_ERR_INTERNAL, where);
  check(g.setTrackingUniqueIdentifier(dicom::new_uid().c_str()), MV_ERR_INTERNAL, where);
  const DSRCodedEntryValue finding = finding_code(f);
  check(g.setFinding(finding, OFFalse), MV_ERR_INTERNAL, where + ": finding");
  check(g.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements(code(kProbability)),
                         number<Units>(f.probability, code(kUnitOne), path), OFTrue, OFFalse),
        MV_ERR_INTERNAL, where + ": probability");
  add_algorithm(g.getMeasurement(), c.info, where);
  if (!std::isnan(f.calibrated)) {
    check(g.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements(code(kProbability)),
                           number<Units>(f.calibrated, code(kUnitOne), path), OFFalse, OFFalse),
          MV_ERR_INTERNAL, where + ": calibrated probability");
    check(g.getMeasurement().setMeasurementMethod(CID6147_ResponseCriteria(code(kCalibrated)),
                                                  OFFalse),
          MV_ERR_INTERNAL, where + ": calibrated probability");
    add_algorithm(g.getMeasurement(), c.info, where);
  }
  if (f.decision >= 0) {
    check(g.addQualitativeEvaluation(finding, f.decision == 1 ? code(kPresent) : code(kAbsent),
                                     OFFalse),
          MV_ERR_INTERNAL, where + ": evaluation");
  }
  check(g.addQualitativeEvaluation(code(kRefer), f.refer ? code(kYes) : code(kNo), OFFalse),
        MV_ERR_INTERNAL, where + ": refer");
  if (f.conformal >= 0) {
    check(g.addQualitativeEvaluation(code(kConformalSet), conformal_text(f, c.softmax).c_str(),
                                     OFFalse),
          MV_ERR_INTERNAL, where + ": conformal set");
    check(g.addQualitativeEvaluation(code(kConformalAlpha),
                                     decimal_string(c.conformal_alpha).c_str(), OFFalse),
          MV_ERR_INTERNAL, where + ": conformal alpha");
  }
}

struct RegionSize {
  DSRCodedEntryValue concept;
  DSRCodedEntryValue unit;
  double value;
};

RegionSize region_size(const SrFinding& f, bool volume, bool spacing) {
  if (!spacing) return {code(kPixelCount), code(kUnitPixels), static_cast<double>(f.voxels)};
  if (volume) return {code(kVolume), code(kUnitMl), f.volume_ml};
  return {code(kArea), code(kUnitMm2), f.area_mm2};
}

// TID 1411 (with the SEG's segment) or TID 1501 (without): a segmentation region.
void add_region_group(TID1500_MeasurementReport& report, const SrFinding& f, const SrContent& c,
                      DcmItem* seg, Uint16 segment, const std::string& source_series, bool volume,
                      bool spacing, const std::string& path) {
  const std::string where = path + ": measurement group '" + f.label + "'";
  const RegionSize size = region_size(f, volume, spacing);
  const DSRCodedEntryValue finding = finding_code(f);
  if (seg != nullptr && segment > 0) {
    using Units = CID7181_AbstractMultiDimensionalImageModelComponentUnits;
    if (!report.getVolumetricROIMeasurements().isEmpty()) {
      check(report.addVolumetricROIMeasurements(), MV_ERR_INTERNAL, where);
    }
    CMR_TID1411_in_TID1500& g = report.getVolumetricROIMeasurements();
    check(g.setTrackingIdentifier(f.label.substr(0, 64).c_str()), MV_ERR_INTERNAL, where);
    check(g.setTrackingUniqueIdentifier(dicom::new_uid().c_str()), MV_ERR_INTERNAL, where);
    check(g.setReferencedSegment(*seg, segment, OFFalse), MV_ERR_INTERNAL,
          where + ": referenced segment");
    check(g.setSourceSeriesForSegmentation(source_series.c_str()), MV_ERR_INTERNAL,
          where + ": source series");
    check(g.setFinding(finding, OFFalse), MV_ERR_INTERNAL, where + ": finding");
    check(g.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements(size.concept),
                           number<Units>(size.value, size.unit, path), OFTrue, OFFalse),
          MV_ERR_INTERNAL, where + ": size");
    check(g.getMeasurement().setAlgorithmIdentification(c.info.model_name.c_str(),
                                                        c.info.model_version.c_str()),
          MV_ERR_INTERNAL, where + ": algorithm");
    return;
  }
  using Units = CID7181_AbstractMultiDimensionalImageModelComponentUnits;
  if (!report.getIndividualMeasurements().isEmpty()) {
    check(report.addIndividualMeasurements(), MV_ERR_INTERNAL, where);
  }
  CMR_TID1501_in_TID1500& g = report.getIndividualMeasurements();
  check(g.setTrackingIdentifier(f.label.substr(0, 64).c_str()), MV_ERR_INTERNAL, where);
  check(g.setTrackingUniqueIdentifier(dicom::new_uid().c_str()), MV_ERR_INTERNAL, where);
  check(g.setFinding(finding, OFFalse), MV_ERR_INTERNAL, where + ": finding");
  check(g.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements(size.concept),
                         number<Units>(size.value, size.unit, path), OFTrue, OFFalse),
        MV_ERR_INTERNAL, where + ": size");
  add_algorithm(g.getMeasurement(), c.info, where);
}

// The SEG's segment numbers by segment label, after checking that it segments this source.
std::map<std::string, Uint16> seg_segments(DcmItem& seg, const std::string& seg_path,
                                           const std::string& study_uid) {
  if (get(seg, DCM_SOPClassUID) != UID_SegmentationStorage) {
    throw Error(MV_ERR_INVALID_ARGUMENT, seg_path + ": not a DICOM Segmentation object");
  }
  if (get(seg, DCM_StudyInstanceUID) != study_uid) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                seg_path + ": the SEG belongs to another study than the source image");
  }
  std::map<std::string, Uint16> out;
  DcmSequenceOfItems* segments = nullptr;
  if (seg.findAndGetSequence(DCM_SegmentSequence, segments).bad() || segments == nullptr) {
    throw Error(MV_ERR_INVALID_ARGUMENT, seg_path + ": the SEG has no SegmentSequence");
  }
  for (unsigned long i = 0; i < segments->card(); ++i) {
    DcmItem* item = segments->getItem(i);
    Uint16 number = 0;
    OFString label;
    if (item->findAndGetUint16(DCM_SegmentNumber, number).good() &&
        item->findAndGetOFString(DCM_SegmentLabel, label).good()) {
      out[label.c_str()] = number;
    }
  }
  return out;
}

void put(DcmItem& item, const DcmTagKey& tag, const std::string& value, const std::string& path) {
  check(item.putAndInsertString(tag, value.c_str()), MV_ERR_INTERNAL,
        path + ": cannot set an attribute");
}

// Contributing Equipment Sequence (PS3.3 C.12.1): medvision, processing with the model.
void add_contributing_equipment(DcmItem& ds, const DerivedInfo& info, const std::string& now,
                                const std::string& path) {
  DcmItem* item = nullptr;
  check(ds.findOrCreateSequenceItem(DCM_ContributingEquipmentSequence, item, 0), MV_ERR_INTERNAL,
        path + ": contributing equipment");
  put(*item, DCM_Manufacturer, "medvision", path);
  put(*item, DCM_ManufacturerModelName, (info.model_name + " " + info.model_version).substr(0, 64),
      path);
  put(*item, DCM_SoftwareVersions,
      std::string("medvision ") + MV_VERSION_STRING + "\\" + info.model_name + " " +
          info.model_version,
      path);
  put(*item, DCM_ContributionDateTime, now, path);
  std::string description = "AI analysis by " + info.model_name + " " + info.model_version;
  if (!info.notice.empty()) description += ". " + info.notice;
  put(*item, DCM_ContributionDescription, description.substr(0, 64), path);
  DcmItem* purpose = nullptr;
  check(item->findOrCreateSequenceItem(DCM_PurposeOfReferenceCodeSequence, purpose, 0),
        MV_ERR_INTERNAL, path + ": contributing equipment");
  // CID 7005 "Contributing Equipment Purposes of Reference": (109103, DCM, "Modifying Equipment")
  // would claim the source was changed; the report is new content: "Processing Equipment".
  put(*purpose, DCM_CodeValue, "109102", path);
  put(*purpose, DCM_CodingSchemeDesignator, "DCM", path);
  put(*purpose, DCM_CodeMeaning, "Processing Equipment", path);
}

// A UID as it should be referenced: DCMTK's automatic input data correction (a process-wide flag,
// on by default) strips the NUL/space padding of UI values as files are read, but a host program
// may turn it off (DcmSCP::openListenPort() does, DCMTK 3.6.7), and DSRSOPInstanceReferenceList's
// addItem(DcmItem&) then refuses the padded values ("Invalid Value"). The writer trims them
// itself, so that it does not depend on that global (found by examples/dicom-node, 2026-12).
OFString trimmed_uid(DcmItem& ds, const DcmTagKey& tag) {
  OFString v;
  ds.findAndGetOFString(tag, v);
  size_t end = v.size();
  while (end > 0 && (v[end - 1] == '\0' || v[end - 1] == ' ')) --end;
  return v.substr(0, end);
}

OFCondition add_evidence(DSRSOPInstanceReferenceList& list, DcmItem& ds) {
  return list.addItem(trimmed_uid(ds, DCM_StudyInstanceUID), trimmed_uid(ds, DCM_SeriesInstanceUID),
                      trimmed_uid(ds, DCM_SOPClassUID), trimmed_uid(ds, DCM_SOPInstanceUID));
}

}  // namespace

// Over 120 lines on purpose: one SR document built top to bottom in the
// order of TID 1500 and the IOD (content tree, then the document modules); its parts share the
// DCMTK report object and the source's attributes, and read best in one place.
// NOLINTNEXTLINE(readability-function-size)
void write_dicom_sr(const SrContent& content, const Image& source, const std::string& seg_path,
                    const std::string& path) {
  // DCMTK's context groups fill their code lists lazily, which is not thread-safe (cmr/init.h):
  // fill them once before any writer uses them.
  static std::once_flag context_groups;
  std::call_once(context_groups, [] { CMR_ContentMappingResource::initializeAllContextGroups(); });
  dicom::ensure_dcmtk_ready();
  const auto& sources = dicom::require_file_sources(source, kWhat);
  if (content.findings.empty()) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": the result has nothing to report");
  }
  auto first = dicom::reload_source(sources.front());
  DcmDataset& src = *first->getDataset();
  dicom::drop_invalid_optional_values(src);
  const std::string study_uid = get(src, DCM_StudyInstanceUID);
  const std::string source_series = get(src, DCM_SeriesInstanceUID);
  // One rule with mv_region_stats.spacing_known: sizes in mm only where the image's spacing has
  // a source (a DICOM attribute, or the user's via mv_image_load_options.pixel_spacing).
  const bool spacing = !source.geometry.spacing_source.empty();
  const bool volume = source.depth() > 1;
  const DerivedInfo& info = content.info;

  std::unique_ptr<DcmFileFormat> seg_file;
  std::map<std::string, Uint16> segment_numbers;
  if (!seg_path.empty()) {
    seg_file = std::make_unique<DcmFileFormat>();
    dicom::ensure_dcmtk_ready();
    const OFCondition st = seg_file->loadFile(seg_path.c_str());
    if (st.bad()) {
      throw Error(MV_ERR_IO, seg_path + ": cannot read the DICOM SEG (" + st.text() + ")");
    }
    segment_numbers = seg_segments(*seg_file->getDataset(), seg_path, study_uid);
    for (const auto& f : content.findings) {
      if (!f.segment_label.empty() && segment_numbers.count(f.segment_label) == 0) {
        throw Error(MV_ERR_INVALID_ARGUMENT, seg_path + ": has no segment '" + f.segment_label +
                                                 "' (not the SEG of this result?)");
      }
    }
  }

  // ---- the content tree (TID 1500) ----
  TID1500_MeasurementReport report(CMR_CID7021::ImagingMeasurementReport);
  check(report.setLanguage(CID5000_Languages::English), MV_ERR_INTERNAL, path + ": language");
  const std::string model = info.model_name + " " + info.model_version;
  check(report.getObservationContext().addDeviceObserver(device_uid(info).c_str(), "medvision",
                                                         "medvision", model.substr(0, 64).c_str()),
        MV_ERR_INTERNAL, path + ": observer");
  DSRCodedEntryValue procedure = code(kImagingProcedure);
  DcmItem* proc = nullptr;
  if (src.findAndGetSequenceItem(DCM_ProcedureCodeSequence, proc, 0).good() && proc != nullptr) {
    DSRCodedEntryValue from_source;
    if (from_source.readSequence(src, DCM_ProcedureCodeSequence, "1").good() &&
        from_source.isComplete()) {
      procedure = from_source;
    }
  }
  check(report.addProcedureReported(CID100_QuantitativeDiagnosticImagingProcedures(procedure),
                                    OFFalse),
        MV_ERR_INTERNAL, path + ": procedure reported");

  TID1600_ImageLibrary& library = report.getImageLibrary();
  check(library.createNewImageLibrary(), MV_ERR_INTERNAL, path + ": image library");
  check(library.addImageGroup(), MV_ERR_INTERNAL, path + ": image library");
  std::set<std::string> seen;
  DSRDocument doc(DSRTypes::DT_Comprehensive3DSR);
  for (size_t i = 0; i < sources.size(); ++i) {
    if (!seen.insert(sources[i].sop_instance_uid).second) continue;  // frames of one instance
    std::unique_ptr<DcmFileFormat> other;
    DcmDataset* ds = &src;
    if (i > 0) {
      other = dicom::reload_source(sources[i]);
      ds = other->getDataset();
    }
    OFCondition st = library.addImageEntry(*ds, TID1600_ImageLibrary::withAllDescriptors);
    if (st.bad() && st != CMR_EC_NoImageLibraryEntryDescriptorsToBeAdded) {
      st = library.addImageEntry(*ds, TID1600_ImageLibrary::withoutDescriptors);
    }
    if (st.bad() && st != CMR_EC_NoImageLibraryEntryDescriptorsToBeAdded) {
      check(st, MV_ERR_INVALID_ARGUMENT, sources[i].path + ": cannot list it in the image library");
    }
    check(add_evidence(doc.getCurrentRequestedProcedureEvidence(), *ds), MV_ERR_INVALID_ARGUMENT,
          sources[i].path + ": cannot reference it as evidence");
  }

  for (const auto& f : content.findings) {
    if (f.has_scores) {
      add_classification_group(report, f, content, path);
    } else if (f.has_region) {
      const auto number = segment_numbers.find(f.segment_label);
      const Uint16 segment = number == segment_numbers.end() ? 0 : number->second;
      add_region_group(report, f, content, seg_file ? seg_file->getDataset() : nullptr, segment,
                       source_series, volume, spacing, path);
    }
  }
  if (!report.isValid()) {
    throw Error(MV_ERR_INTERNAL, path + ": the measurement report is not a valid TID 1500");
  }

  // ---- the document ----
  check(doc.setTreeFromRootTemplate(report, OFTrue /*expand included templates*/), MV_ERR_INTERNAL,
        path + ": cannot build the SR document");
  // DCMTK's TID 1500 class makes an Enhanced SR; IHE AIR asks for Comprehensive 3D SR (which
  // also allows SCOORD3D regions later). The tree satisfies both IODs' constraints.
  check(doc.changeDocumentType(DSRTypes::DT_Comprehensive3DSR), MV_ERR_INTERNAL,
        path + ": Comprehensive 3D SR");
  check(doc.createNewSeriesInStudy(study_uid.c_str()), MV_ERR_INTERNAL, path + ": new series");
  std::string description = dicom::series_description(info);
  const std::string kNotice = " NOT FOR DIAGNOSTIC USE";
  description = description.substr(0, 64 - kNotice.size()) + kNotice;
  check(doc.setSeriesDescription(description.c_str()), MV_ERR_INTERNAL, path);
  check(doc.setSeriesNumber("9003"), MV_ERR_INTERNAL, path);
  check(doc.setInstanceNumber("1"), MV_ERR_INTERNAL, path);
  check(doc.setManufacturer("medvision"), MV_ERR_INTERNAL, path);
  check(doc.setManufacturerModelName(model.substr(0, 64).c_str()), MV_ERR_INTERNAL, path);
  check(doc.setSoftwareVersions(MV_VERSION_STRING), MV_ERR_INTERNAL, path);
  check(doc.setDeviceSerialNumber(device_uid(info).substr(0, 64).c_str()), MV_ERR_INTERNAL, path);
  check(doc.setPreliminaryFlag(DSRTypes::PF_Preliminary), MV_ERR_INTERNAL, path);
  DSRCodingSchemeIdentificationList& schemes = doc.getCodingSchemeIdentification();
  check(schemes.addItem(kLocal), MV_ERR_INTERNAL, path);
  check(schemes.setCodingSchemeName("medvision local codes"), MV_ERR_INTERNAL, path);
  check(schemes.setCodingSchemeResponsibleOrganization("medvision"), MV_ERR_INTERNAL, path);
  if (seg_file) {
    check(add_evidence(doc.getPertinentOtherEvidence(), *seg_file->getDataset()),
          MV_ERR_INVALID_ARGUMENT, seg_path + ": cannot reference it as evidence");
  }

  DcmFileFormat out;
  DcmDataset& ds = *out.getDataset();
  check(doc.write(ds), MV_ERR_INTERNAL, path + ": the SR document would not be valid DICOM");
  dicom::copy_patient_and_study(src, ds);
  // No Frame of Reference module: the Comprehensive 3D SR IOD includes it only when the tree
  // holds SCOORD3D coordinates (PS3.3 A.35.13), which these reports do not (regions are
  // referenced as SEG segments, whose frame of reference the SEG carries); dciodvfy flags it
  // otherwise.
  char now[32];
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  std::strftime(now, sizeof now, "%Y%m%d%H%M%S", &local);
  add_contributing_equipment(ds, info, now, path);
  check(out.saveFile(path.c_str(), EXS_LittleEndianExplicit), MV_ERR_IO, path + ": cannot write");
}

}  // namespace medvision::io
