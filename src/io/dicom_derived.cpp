#include "io/dicom_derived.hpp"

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/dicom_codecs.hpp"
#include "io/dicom_reader.hpp"

namespace medvision::io::dicom {
namespace {

// General Study module (PS3.3 C.7.2.1), by tag so that the list does not depend on the names in
// the installed DCMTK dictionary.
const DcmTagKey kStudyTags[] = {
    {0x0008, 0x0020},  // StudyDate
    {0x0008, 0x0030},  // StudyTime
    {0x0008, 0x0050},  // AccessionNumber
    {0x0008, 0x0051},  // IssuerOfAccessionNumberSequence
    {0x0008, 0x0090},  // ReferringPhysicianName
    {0x0008, 0x0096},  // ReferringPhysicianIdentificationSequence
    {0x0008, 0x009C},  // ConsultingPhysicianName
    {0x0008, 0x009D},  // ConsultingPhysicianIdentificationSequence
    {0x0008, 0x1030},  // StudyDescription
    {0x0008, 0x1032},  // ProcedureCodeSequence
    {0x0008, 0x1048},  // PhysiciansOfRecord
    {0x0008, 0x1049},  // PhysiciansOfRecordIdentificationSequence
    {0x0008, 0x1060},  // NameOfPhysiciansReadingStudy
    {0x0008, 0x1062},  // PhysiciansReadingStudyIdentificationSequence
    {0x0008, 0x1110},  // ReferencedStudySequence
    {0x0008, 0x1120},  // ReferencedPatientSequence (Patient module)
    {0x0020, 0x000D},  // StudyInstanceUID
    {0x0020, 0x0010},  // StudyID
    {0x0032, 0x1034},  // RequestingServiceCodeSequence
    {0x0040, 0x1012},  // ReasonForPerformedProcedureCodeSequence
    {0x0012, 0x0062},  // PatientIdentityRemoved
    {0x0012, 0x0063},  // DeidentificationMethod
    {0x0012, 0x0064},  // DeidentificationMethodCodeSequence
    {0x0008, 0x0005},  // SpecificCharacterSet: the copied names must decode as in the source
};

bool copied(const DcmTagKey& tag) {
  if (tag.getGroup() == 0x0010) return true;  // Patient and Patient Study modules
  return std::find(std::begin(kStudyTags), std::end(kStudyTags), tag) != std::end(kStudyTags);
}

}  // namespace

const std::vector<DicomSource>& require_file_sources(const Image& source, const std::string& what) {
  if (source.format != MV_FORMAT_DICOM || source.dicom_sources.empty()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                what +
                    ": the source image was not read from DICOM, so the output has no study "
                    "to belong to");
  }
  const auto& s = source.dicom_sources;
  if (static_cast<int64_t>(s.size()) != source.depth()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                fmt::format("{}: the source image has {} DICOM records for {} slices", what,
                            s.size(), source.depth()));
  }
  if (std::any_of(s.begin(), s.end(), [](const DicomSource& d) { return d.path.empty(); })) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                what +
                    ": the source image was decoded from memory; load it from a file "
                    "(mv_image_load / mv_image_load_series) so that its patient and study "
                    "can be copied from there");
  }
  return s;
}

std::unique_ptr<DcmFileFormat> reload_source(const DicomSource& source) {
  ensure_dcmtk_ready();
  auto file = parse_file(source.path);
  OFString uid;
  file->getDataset()->findAndGetOFString(DCM_SOPInstanceUID, uid);
  if (source.sop_instance_uid != uid.c_str()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                source.path + ": no longer holds the instance the image was read from");
  }
  return file;
}

void copy_patient_and_study(DcmItem& from, DcmItem& to) {
  for (unsigned long i = 0; i < from.card(); ++i) {
    DcmElement* e = from.getElement(i);
    if (e == nullptr || !copied(e->getTag())) continue;
    auto* clone = static_cast<DcmElement*>(e->clone());
    if (clone == nullptr) throw Error(MV_ERR_OUT_OF_MEMORY, "DICOM writer: cannot copy an element");
    if (to.insert(clone, /*replaceOld=*/OFTrue).bad()) {
      delete clone;
      throw Error(MV_ERR_INTERNAL, "DICOM writer: cannot insert a copied element");
    }
  }
}

void drop_invalid_optional_values(DcmItem& ds) {
  static const DcmTagKey kKeep[] = {DCM_PatientName, DCM_PatientID, DCM_PatientBirthDate,
                                    DCM_PatientSex, DCM_StudyDate, DCM_StudyTime,
                                    DCM_AccessionNumber, DCM_StudyID, DCM_StudyInstanceUID,
                                    DCM_ReferringPhysicianName, DCM_SpecificCharacterSet,
                                    // The instance's identity is never dropped: with DCMTK's
                                    // input correction off (see trimmed_uid()), a UID keeps its
                                    // NUL padding and fails checkValue() though it is valid.
                                    DCM_SOPClassUID, DCM_SOPInstanceUID, DCM_SeriesInstanceUID};
  std::vector<DcmTagKey> bad;
  for (unsigned long i = 0; i < ds.card(); ++i) {
    DcmElement* e = ds.getElement(i);
    if (e == nullptr || e->isLeaf() == OFFalse) continue;  // sequences: left as they are
    // NOLINTNEXTLINE(cppcoreguidelines-slicing): only the (group, element) key is compared
    const DcmTagKey tag = e->getTag();
    if (std::find(std::begin(kKeep), std::end(kKeep), tag) != std::end(kKeep)) continue;
    if (tag.getGroup() != 0x0010 && tag.getGroup() != 0x0008 && tag.getGroup() != 0x0020) continue;
    if (e->getLength() > 0 && e->checkValue().bad()) bad.push_back(tag);
  }
  for (const auto& tag : bad) ds.findAndDeleteElement(tag);
}

std::string new_uid() {
  static std::mutex mutex;
  static std::random_device device;
  uint32_t w[4];
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& x : w) x = device();
  }
  w[1] = (w[1] & 0xFFFF0FFFu) | 0x00004000u;  // UUID version 4 (random)
  w[2] = (w[2] & 0x3FFFFFFFu) | 0x80000000u;  // RFC 4122 variant
  std::string digits;
  while (w[0] != 0 || w[1] != 0 || w[2] != 0 || w[3] != 0) {  // 128-bit value in base 10
    uint64_t rem = 0;
    for (auto& x : w) {
      const uint64_t cur = (rem << 32) | x;
      x = static_cast<uint32_t>(cur / 10);
      rem = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rem));
  }
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;
}

std::string series_description(const DerivedInfo& info) {
  std::string s = info.series_description;
  if (s.empty()) {
    s = info.model_name.empty() ? "medvision" : info.model_name;
    if (!info.model_version.empty()) s += " " + info.model_version;
  }
  return s.substr(0, 64);  // LO
}

std::string decimal_string(double v) {
  char buf[32];
  for (int precision = 15; precision > 1; --precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v + 0.0);
    if (std::string(buf).size() <= 16) break;
  }
  return buf;
}

void check(const OFCondition& cond, mv_status status, const std::string& message) {
  if (cond.bad()) throw Error(status, message + " (" + cond.text() + ")");
}

}  // namespace medvision::io::dicom
