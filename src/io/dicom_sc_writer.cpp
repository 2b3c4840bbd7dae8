// DICOM Secondary Capture Image (PS3.3 A.8.1) writing: an RGB rendering (e.g. a heat-map overlay)
// as a new series in the source's study.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <ctime>
#include <memory>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/dicom_derived.hpp"
#include "io/writers.hpp"

namespace medvision::io {
namespace {

using dicom::check;

void put(DcmItem& item, const DcmTagKey& tag, const std::string& value, const std::string& path) {
  check(item.putAndInsertString(tag, value.c_str()), MV_ERR_INTERNAL,
        path + ": cannot set an attribute");
}

}  // namespace

void write_dicom_secondary_capture(const uint8_t* rgb, int64_t height, int64_t width,
                                   const Image& source, const DerivedInfo& info,
                                   const std::string& path, int64_t slice) {
  const auto& sources = dicom::require_file_sources(source, "write_dicom_secondary_capture");
  if (rgb == nullptr || height <= 0 || width <= 0 || height > 65535 || width > 65535) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": the RGB buffer is empty or too large");
  }
  if (slice < 0 || slice >= source.depth()) {
    throw Error(
        MV_ERR_INVALID_ARGUMENT,
        fmt::format("{}: slice {} is outside the source's {} slices", path, slice, source.depth()));
  }
  // One source per slice (a series, or the frames of a multi-frame instance): reference the
  // slice shown; otherwise the one instance all slices came from.
  const DicomSource& ref = sources.size() == static_cast<size_t>(source.depth())
                               ? sources[static_cast<size_t>(slice)]
                               : sources.front();
  auto file = dicom::reload_source(ref);
  DcmDataset& src = *file->getDataset();
  dicom::drop_invalid_optional_values(src);

  DcmFileFormat out;
  DcmDataset& ds = *out.getDataset();
  dicom::copy_patient_and_study(src, ds);

  char date[16], time_of_day[16];
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(date, sizeof date, "%Y%m%d", &local);
  std::strftime(time_of_day, sizeof time_of_day, "%H%M%S", &local);

  // SOP Common, General Series, SC Equipment, General Image.
  put(ds, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage, path);
  put(ds, DCM_SOPInstanceUID, dicom::new_uid(), path);
  put(ds, DCM_InstanceCreationDate, date, path);
  put(ds, DCM_InstanceCreationTime, time_of_day, path);
  put(ds, DCM_Modality, "OT", path);
  put(ds, DCM_SeriesInstanceUID, dicom::new_uid(), path);
  put(ds, DCM_SeriesNumber, "9002", path);
  put(ds, DCM_SeriesDescription, dicom::series_description(info), path);
  put(ds, DCM_Manufacturer, "medvision", path);
  put(ds, DCM_SoftwareVersions, MV_VERSION_STRING, path);
  put(ds, DCM_ConversionType, "WSD", path);  // workstation
  put(ds, DCM_InstanceNumber, "1", path);
  put(ds, DCM_PatientOrientation, "", path);
  put(ds, DCM_ContentDate, date, path);
  put(ds, DCM_ContentTime, time_of_day, path);
  put(ds, DCM_ImageType, "DERIVED\\SECONDARY", path);
  put(ds, DCM_BurnedInAnnotation, "NO", path);
  std::string model = info.model_name.empty() ? "medvision" : info.model_name;
  if (!info.model_version.empty()) model += " " + info.model_version;
  std::string derivation = "Rendered by " + model;
  if (!info.notice.empty()) derivation += ". " + info.notice;
  put(ds, DCM_DerivationDescription, derivation.substr(0, 1024), path);
  if (!info.notice.empty()) put(ds, DCM_ImageComments, info.notice, path);

  // Source Image Sequence: the instance (and frame) the rendering shows.
  DcmItem* item = nullptr;
  check(ds.findOrCreateSequenceItem(DCM_SourceImageSequence, item, 0), MV_ERR_INTERNAL,
        path + ": cannot reference the source");
  put(*item, DCM_ReferencedSOPClassUID, ref.sop_class_uid, path);
  put(*item, DCM_ReferencedSOPInstanceUID, ref.sop_instance_uid, path);
  if (ref.frame > 0) put(*item, DCM_ReferencedFrameNumber, std::to_string(ref.frame), path);

  // Image Pixel: 8-bit RGB, interleaved.
  check(ds.putAndInsertUint16(DCM_SamplesPerPixel, 3), MV_ERR_INTERNAL, path);
  put(ds, DCM_PhotometricInterpretation, "RGB", path);
  check(ds.putAndInsertUint16(DCM_PlanarConfiguration, 0), MV_ERR_INTERNAL, path);
  check(ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(height)), MV_ERR_INTERNAL, path);
  check(ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(width)), MV_ERR_INTERNAL, path);
  check(ds.putAndInsertUint16(DCM_BitsAllocated, 8), MV_ERR_INTERNAL, path);
  check(ds.putAndInsertUint16(DCM_BitsStored, 8), MV_ERR_INTERNAL, path);
  check(ds.putAndInsertUint16(DCM_HighBit, 7), MV_ERR_INTERNAL, path);
  check(ds.putAndInsertUint16(DCM_PixelRepresentation, 0), MV_ERR_INTERNAL, path);
  const auto bytes = static_cast<unsigned long>(height * width * 3);
  check(ds.putAndInsertUint8Array(DCM_PixelData, rgb, bytes), MV_ERR_INTERNAL, path);

  check(out.saveFile(path.c_str(), EXS_LittleEndianExplicit), MV_ERR_IO, path + ": cannot write");
}

}  // namespace medvision::io
