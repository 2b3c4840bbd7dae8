#pragma once
// Shared by the writers of derived DICOM objects (dicom_seg_writer.cpp, dicom_sc_writer.cpp):
// finding and re-reading the source file, copying its Patient and Study modules, new UIDs.

#include <memory>
#include <string>
#include <vector>

#include "common/image.hpp"
#include "io/writers.hpp"

class DcmFileFormat;
class DcmItem;
class OFCondition;

namespace medvision::io::dicom {

// The source records of `source`, checked: it came from DICOM files on disk and has one record
// per slice. Throws MV_ERR_INVALID_ARGUMENT naming `what` (the writer) otherwise.
const std::vector<DicomSource>& require_file_sources(const Image& source, const std::string& what);

// Re-reads a source file's header (pixel data stays on disk) and checks that it still holds the
// instance the image was decoded from. Throws MV_ERR_IO / MV_ERR_INVALID_ARGUMENT.
std::unique_ptr<DcmFileFormat> reload_source(const DicomSource& source);

// Copies the source's Patient and Patient Study modules (all of group 0010, plus the
// de-identification attributes of group 0012), its General Study module and its Specific
// Character Set into `to`, replacing what `to` held. Nothing else about the patient is copied.
void copy_patient_and_study(DcmItem& from, DcmItem& to);

// Removes the source's Patient / Study values (groups 0008, 0010, 0020; sequences untouched) that
// are not valid for their VR, e.g. a PatientAge of "81" where AS needs "081Y" (the NIH
// ChestX-ray14 files as Google's DICOM conversion has them; 2026-12, cxr-dicom/nccid-nhsx and
// torchxrayvision in the test data), when the attribute is optional: DCMTK's IOD classes refuse
// such a source and dciodvfy flags the copy, while the Type 1 and 2 attributes that identify the
// patient and study stay exactly as the source has them. Call it on the re-read source.
void drop_invalid_optional_values(DcmItem& ds);

// A new UID under the 2.25 root: a random (version 4) UUID as a decimal integer (PS3.5 B.2).
std::string new_uid();

// info.series_description, else "<model_name> <model_version>" (trimmed to 64 characters).
std::string series_description(const DerivedInfo& info);

// A DICOM decimal string (at most 16 characters) for `v`.
std::string decimal_string(double v);

// Throws Error(status, "<message> (<DCMTK's reason>)") when `cond` is bad.
void check(const OFCondition& cond, mv_status status, const std::string& message);

}  // namespace medvision::io::dicom
