// Header attributes for routing (see dicom_header.hpp).

#include "dicom_header.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>

#include <stdexcept>

namespace mvnode {

namespace {

std::string get(DcmItem& ds, const DcmTagKey& tag) {
  OFString v;
  if (ds.findAndGetOFStringArray(tag, v).good()) return std::string(v.c_str());
  return {};
}

}  // namespace

Header read_header(DcmItem& ds) {
  Header h;
  h.study_uid = get(ds, DCM_StudyInstanceUID);
  h.series_uid = get(ds, DCM_SeriesInstanceUID);
  h.sop_uid = get(ds, DCM_SOPInstanceUID);
  h.sop_class = get(ds, DCM_SOPClassUID);
  h.modality = get(ds, DCM_Modality);
  h.body_part = get(ds, DCM_BodyPartExamined);
  h.series_description = get(ds, DCM_SeriesDescription);
  h.manufacturer = get(ds, DCM_Manufacturer);
  Sint32 n = 0;
  if (ds.findAndGetSint32(DCM_InstanceNumber, n).good()) h.instance_number = n;
  return h;
}

Header read_header(const std::filesystem::path& file) {
  DcmFileFormat ff;
  // Stop before the pixel data: only the header is needed.
  const OFCondition c = ff.loadFileUntilTag(file.c_str(), EXS_Unknown, EGL_noChange,
                                            DCM_MaxReadLength, ERM_autoDetect, DCM_PixelData);
  if (c.bad()) throw std::runtime_error(file.string() + ": not readable as DICOM: " + c.text());
  return read_header(*ff.getDataset());
}

}  // namespace mvnode
