// DICOM reading, single files: the header (Image Pixel module, geometry, window presets,
// allow-listed meta) and the readers behind load_file / load_memory. Parsing is dicom_parse.cpp,
// the LUTs dicom_luts.cpp, pixel decoding dicom_frames.cpp (DCMTK for JPEG / JPEG-LS / RLE,
// OpenJPEG for JPEG 2000 and HTJ2K) and the value mapping dicom_pixels.cpp.

#include "io/dicom_reader.hpp"

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/dicom_dataset.hpp"
#include "io/dicom_text.hpp"

namespace medvision::io::dicom {
namespace {

// ---- pixel module -----------------------------------------------------------------------------

Photometric parse_photometric(const std::string& p, Codec codec, const std::string& name) {
  if (p == "MONOCHROME1") return Photometric::kMonochrome1;
  if (p == "MONOCHROME2") return Photometric::kMonochrome2;
  if (p == "RGB") return Photometric::kRgb;
  // OpenJPEG undoes the JPEG 2000 multi-component transform, so ICT/RCT data comes out as RGB.
  if ((p == "YBR_ICT" || p == "YBR_RCT") && codec == Codec::kJ2k) return Photometric::kRgb;
  if (p == "YBR_FULL") return Photometric::kYbrFull;
  if (p == "YBR_FULL_422") return Photometric::kYbrFull422;
  if (p == "PALETTE COLOR") return Photometric::kPalette;
  throw Error(MV_ERR_UNSUPPORTED_FORMAT,
              name + ": (0028,0004) PhotometricInterpretation '" + p + "' is not supported");
}

void validate(const PixelModule& pm, const std::string& name) {
  auto bad = [&](const std::string& what) {
    return Error(MV_ERR_CORRUPT_DATA, name + ": " + what);
  };
  if (pm.rows <= 0 || pm.cols <= 0) {
    throw bad(fmt::format("(0028,0010) Rows / (0028,0011) Columns must be positive, got {}x{}",
                          pm.rows, pm.cols));
  }
  if (pm.frames <= 0) throw bad("(0028,0008) NumberOfFrames must be positive");
  if (pm.samples != 1 && pm.samples != 3) {
    throw Error(
        MV_ERR_UNSUPPORTED_FORMAT,
        fmt::format("{}: (0028,0002) SamplesPerPixel {} is not supported", name, pm.samples));
  }
  const bool ok_bits = pm.is_float ? (pm.bits_allocated == 32 || pm.bits_allocated == 64)
                                   : (pm.bits_allocated == 1 || pm.bits_allocated == 8 ||
                                      pm.bits_allocated == 16 || pm.bits_allocated == 32);
  if (!ok_bits) {
    throw Error(
        MV_ERR_UNSUPPORTED_FORMAT,
        fmt::format("{}: (0028,0100) BitsAllocated {} is not supported", name, pm.bits_allocated));
  }
  if (pm.bits_stored < 1 || pm.bits_stored > pm.bits_allocated) {
    throw bad(fmt::format("(0028,0101) BitsStored {} does not fit {} bits allocated",
                          pm.bits_stored, pm.bits_allocated));
  }
  const bool colour = pm.photometric == Photometric::kRgb ||
                      pm.photometric == Photometric::kYbrFull ||
                      pm.photometric == Photometric::kYbrFull422;
  if (colour != (pm.samples == 3)) {
    throw bad(fmt::format("(0028,0004) PhotometricInterpretation {} with {} samples per pixel",
                          pm.photometric_name, pm.samples));
  }
  if (pm.photometric == Photometric::kYbrFull422 && (pm.cols % 2 != 0 || pm.bits_allocated != 8)) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": YBR_FULL_422 needs 8 bits and an even width");
  }
}

PixelModule read_pixel_module(DcmDataset& ds, Codec codec, const std::string& name) {
  PixelModule pm;
  pm.rows = get_long(ds, DCM_Rows, 0);
  pm.cols = get_long(ds, DCM_Columns, 0);
  pm.frames = get_long(ds, DCM_NumberOfFrames, 1);
  pm.samples = get_long(ds, DCM_SamplesPerPixel, 1);
  pm.is_float = !ds.tagExists(DCM_PixelData) &&
                (ds.tagExists(DCM_FloatPixelData) || ds.tagExists(DCM_DoubleFloatPixelData));
  pm.bits_allocated = static_cast<int>(get_long(ds, DCM_BitsAllocated, 0));
  if (pm.is_float) pm.bits_allocated = ds.tagExists(DCM_FloatPixelData) ? 32 : 64;
  pm.bits_stored = static_cast<int>(get_long(ds, DCM_BitsStored, pm.bits_allocated));
  if (pm.is_float) pm.bits_stored = pm.bits_allocated;
  pm.is_signed = get_long(ds, DCM_PixelRepresentation, 0) == 1;
  pm.planar = get_long(ds, DCM_PlanarConfiguration, 0) == 1;
  pm.photometric_name = get_string(ds, DCM_PhotometricInterpretation);
  if (pm.photometric_name.empty()) pm.photometric_name = pm.samples == 3 ? "RGB" : "MONOCHROME2";
  pm.photometric = parse_photometric(pm.photometric_name, codec, name);
  validate(pm, name);
  return pm;
}

// ---- geometry ---------------------------------------------------------------------------------

Plane read_plane(DcmItem* position_item, DcmItem* orientation_item) {
  Plane p;
  if (position_item != nullptr) {
    p.has_position = get_doubles(*position_item, DCM_ImagePositionPatient, p.position.data(), 3);
  }
  if (orientation_item != nullptr) {
    p.has_orientation =
        get_doubles(*orientation_item, DCM_ImageOrientationPatient, p.orientation.data(), 6);
  }
  if (!p.has_orientation) p.orientation = {{1, 0, 0, 0, 1, 0}};
  return p;
}

// Enhanced multi-frame objects keep geometry in functional groups (PS3.3 C.7.6.16); a value in
// the per-frame item wins over the shared one.
DcmItem* group_item(DcmItem* shared, DcmItem* per_frame, const DcmTagKey& seq) {
  DcmItem* item = sub_item(per_frame, seq);
  return item != nullptr ? item : sub_item(shared, seq);
}

void read_geometry(DcmDataset& ds, Header& h) {
  DcmItem* shared = sub_item(&ds, DCM_SharedFunctionalGroupsSequence);
  DcmItem* first = sub_item(&ds, DCM_PerFrameFunctionalGroupsSequence);
  DcmItem* measures = group_item(shared, first, DCM_PixelMeasuresSequence);
  DcmItem* spacing_src = measures != nullptr ? measures : &ds;
  // The order PS3.3 C.7.6.2.1.1 / C.8.11.7 gives: the spacing in the patient (Pixel Spacing),
  // else at the detector (Imager Pixel Spacing: not corrected for geometric magnification),
  // else of a digitised film (Nominal Scanned Pixel Spacing, Secondary Capture).
  const auto positive = [&h] { return h.pixel_spacing[0] > 0 && h.pixel_spacing[1] > 0; };
  if (get_doubles(*spacing_src, DCM_PixelSpacing, h.pixel_spacing.data(), 2) && positive()) {
    h.spacing_source = "PixelSpacing";
  } else if (get_doubles(ds, DCM_ImagerPixelSpacing, h.pixel_spacing.data(), 2) && positive()) {
    h.spacing_source = "ImagerPixelSpacing";
  } else if (get_doubles(ds, DCM_NominalScannedPixelSpacing, h.pixel_spacing.data(), 2) &&
             positive()) {
    h.spacing_source = "NominalScannedPixelSpacing";
  }
  h.has_spacing = !h.spacing_source.empty();
  if (!h.has_spacing) h.pixel_spacing = {{1.0, 1.0}};
  double s = 0.0;
  if ((get_doubles(*spacing_src, DCM_SpacingBetweenSlices, &s, 1) ||
       get_doubles(*spacing_src, DCM_SliceThickness, &s, 1)) &&
      s > 0) {
    h.slice_spacing = s;
  }
  DcmSequenceOfItems* frames_seq = nullptr;
  if (first == nullptr ||
      ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, frames_seq).bad()) {
    h.planes.push_back(read_plane(&ds, &ds));
    return;
  }
  for (unsigned long i = 0; i < frames_seq->card(); ++i) {
    DcmItem* frame = frames_seq->getItem(i);
    h.planes.push_back(read_plane(group_item(shared, frame, DCM_PlanePositionSequence),
                                  group_item(shared, frame, DCM_PlaneOrientationSequence)));
  }
}

mv_dtype stored_dtype(const PixelModule& pm) {
  if (pm.is_float) return pm.bits_allocated == 64 ? MV_DTYPE_FLOAT64 : MV_DTYPE_FLOAT32;
  switch (pm.bits_allocated) {
    case 1:
    case 8:
      return pm.is_signed ? MV_DTYPE_INT8 : MV_DTYPE_UINT8;
    case 16:
      return pm.is_signed ? MV_DTYPE_INT16 : MV_DTYPE_UINT16;
    default:
      return pm.is_signed ? MV_DTYPE_INT32 : MV_DTYPE_UINT32;
  }
}

}  // namespace

Header read_header(DcmFileFormat& file, const std::string& name) {
  DcmDataset& ds = *file.getDataset();
  Header h;
  h.transfer_syntax = get_string(*file.getMetaInfo(), DCM_TransferSyntaxUID);
  if (h.transfer_syntax.empty()) h.transfer_syntax = DcmXfer(ds.getOriginalXfer()).getXferID();
  if (!ds.tagExists(DCM_PixelData) && !ds.tagExists(DCM_FloatPixelData) &&
      !ds.tagExists(DCM_DoubleFloatPixelData)) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": has no PixelData");
  }
  const Codec codec = codec_for(h.transfer_syntax);
  if (codec == Codec::kUnsupported) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                name + ": transfer syntax " + h.transfer_syntax + " is not supported");
  }
  h.pixels = read_pixel_module(ds, codec, name);
  h.series_uid = get_string(ds, DCM_SeriesInstanceUID);
  h.instance_number = get_long(ds, DCM_InstanceNumber, 0);
  read_geometry(ds, h);
  return h;
}

geometry::Mat3 direction_from(const Plane& plane) {
  return geometry::direction_from_orientation(plane.orientation);
}

// Patient's Age (AS, PS3.5 6.2: "nnnD", "nnnW", "nnnM" or "nnnY") in years; NaN when it is
// absent or malformed. Kept only for the population check (Image::patient_age_years).
static double age_in_years(const std::string& as) {
  if (as.size() != 4 || !std::isdigit(static_cast<unsigned char>(as[0])) ||
      !std::isdigit(static_cast<unsigned char>(as[1])) ||
      !std::isdigit(static_cast<unsigned char>(as[2]))) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const double n = std::stod(as.substr(0, 3));
  switch (as[3]) {
    case 'D':
      return n / 365.25;
    case 'W':
      return n * 7.0 / 365.25;
    case 'M':
      return n / 12.0;
    case 'Y':
      return n;
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

void describe(DcmFileFormat& file, const Header& h, Image& out, const std::string& name) {
  DcmDataset& ds = *file.getDataset();
  const PixelModule& pm = h.pixels;
  out.format = MV_FORMAT_DICOM;
  out.photometric = pm.channels() == 3                            ? MV_PHOTOMETRIC_RGB
                    : pm.photometric == Photometric::kMonochrome1 ? MV_PHOTOMETRIC_MONOCHROME1
                                                                  : MV_PHOTOMETRIC_MONOCHROME2;
  out.stored_dtype = stored_dtype(pm);
  out.bits_stored = pm.bits_stored;
  OFString charset;
  ds.findAndGetOFStringArray(DCM_SpecificCharacterSet, charset);
  TextDecoder text(charset.c_str(), out.warnings);
  read_windows(ds, pm, out, text, name);
  static const std::pair<const char*, DcmTagKey> kMeta[] = {
      {"Modality", DCM_Modality},
      {"BodyPartExamined", DCM_BodyPartExamined},
      {"ViewPosition", DCM_ViewPosition},
      {"Manufacturer", DCM_Manufacturer},
      {"StudyInstanceUID", DCM_StudyInstanceUID},
      {"SeriesInstanceUID", DCM_SeriesInstanceUID},
      {"SOPInstanceUID", DCM_SOPInstanceUID},
      {"SOPClassUID", DCM_SOPClassUID},
      {"PhotometricInterpretation", DCM_PhotometricInterpretation},
      {"ImageLaterality", DCM_ImageLaterality},
      {"SeriesDescription", DCM_SeriesDescription},
      {"NumberOfFrames", DCM_NumberOfFrames},
  };
  for (const auto& [key, tag] : kMeta) {
    const std::string v = get_string(ds, tag);
    if (!v.empty()) out.set_meta(key, text(v));
  }
  out.set_meta("TransferSyntaxUID", text(h.transfer_syntax));
  out.patient_age_years = age_in_years(get_string(ds, DCM_PatientAge));
}

void record_sources(DcmFileFormat& file, const std::string& path, int64_t first, int64_t count,
                    Image& out) {
  DcmDataset& ds = *file.getDataset();
  const bool multi_frame = ds.tagExists(DCM_NumberOfFrames);
  DicomSource s;
  s.path = path;
  s.sop_class_uid = get_string(ds, DCM_SOPClassUID);
  s.sop_instance_uid = get_string(ds, DCM_SOPInstanceUID);
  out.dicom_sources.clear();
  for (int64_t k = 0; k < count; ++k) {
    s.frame = multi_frame ? static_cast<int32_t>(first + k + 1) : 0;
    out.dicom_sources.push_back(s);
  }
  out.frame_of_reference_uid = get_string(ds, DCM_FrameOfReferenceUID);
}

}  // namespace medvision::io::dicom

namespace medvision::io {
namespace {

// Geometry of frames [first, first + count): the slice step comes from the first two frame
// positions when the functional groups give them, and the normal follows the frame order.
Geometry frame_geometry(const dicom::Header& h, int64_t first, int64_t count) {
  const auto k = static_cast<size_t>(first) < h.planes.size() ? static_cast<size_t>(first) : 0;
  Geometry g;
  g.spacing = {h.pixel_spacing[1], h.pixel_spacing[0], h.slice_spacing > 0 ? h.slice_spacing : 1.0};
  g.spacing_source = h.spacing_source;
  g.origin = h.planes[k].position;
  geometry::Mat3 dir = dicom::direction_from(h.planes[k]);
  geometry::set_direction(g, dir);
  if (count < 2 || k + 1 >= h.planes.size() || !h.planes[k].has_position ||
      !h.planes[k + 1].has_position) {
    return g;
  }
  const double step =
      (geometry::vec(h.planes[k + 1].position) - geometry::vec(h.planes[k].position))
          .dot(dir.col(2));
  if (std::abs(step) < 1e-6) return g;
  g.spacing[2] = std::abs(step);
  if (step < 0) {
    dir.col(2) = -dir.col(2);
    geometry::set_direction(g, dir);
  }
  return g;
}

// `path` is the file on disk, empty when decoding from memory; `name` is for messages.
std::unique_ptr<Image> read_parsed(DcmFileFormat& file, const LoadOptions& options,
                                   const std::string& name, const std::string& path) {
  const dicom::Header h = dicom::read_header(file, name);
  const dicom::PixelModule& pm = h.pixels;
  int64_t first = 0, count = pm.frames;
  if (options.frame >= 0) {
    if (options.frame >= pm.frames) {
      throw Error(MV_ERR_INVALID_ARGUMENT, fmt::format("{}: frame {} requested, the file has {}",
                                                       name, options.frame, pm.frames));
    }
    first = options.frame;
    count = 1;
  }
  // The Image constructor checks the size against max_values before allocating anything.
  auto image =
      std::make_unique<Image>(pm.channels(), count, pm.rows, pm.cols, options.max_values, name);
  dicom::decode_frames(file, h, first, count, *image, 0, name);
  dicom::describe(file, h, *image, name);
  image->geometry = frame_geometry(h, first, count);
  dicom::record_sources(file, path, first, count, *image);
  return image;
}

}  // namespace

std::unique_ptr<Image> read_dicom_file(const std::string& path, const LoadOptions& options) {
  auto file = dicom::parse_file(path);
  return read_parsed(*file, options, path, path);
}

std::unique_ptr<Image> read_dicom_memory(const uint8_t* data, size_t size,
                                         const LoadOptions& options, const std::string& name) {
  auto file = dicom::parse_memory(data, size, name);
  return read_parsed(*file, options, name, std::string());
}

}  // namespace medvision::io