// DICOM reading: DCMTK parses and decompresses JPEG / JPEG-LS / RLE, OpenJPEG decodes JPEG 2000
// and HTJ2K; the pixel work (masking, sign, colour, LUTs) is ours, in dicom_pixels.cpp.

#include "io/dicom_reader.hpp"

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "common/error.hpp"
#include "common/utf8.hpp"
#include "io/dicom_codecs.hpp"
#include "io/dicom_text.hpp"

namespace medvision::io::dicom {
namespace {

enum class Codec { kNative, kDcmtk, kJ2k, kUnsupported };

Codec codec_for(const std::string& uid) {
  static const char* const kNative[] = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                        "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"};
  // JPEG baseline, extended, spectral selection, progressive, lossless (14, SV1), JPEG-LS, RLE.
  static const char* const kDcmtk[] = {
      "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.53",
      "1.2.840.10008.1.2.4.55", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
      "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.5"};
  // JPEG 2000 (lossless, lossy) and HTJ2K (lossless, lossless RPCL, lossy).
  static const char* const kJ2k[] = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                                     "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                                     "1.2.840.10008.1.2.4.203"};
  auto in = [&](const auto& list) {
    return std::any_of(std::begin(list), std::end(list), [&](const char* u) { return uid == u; });
  };
  if (in(kNative)) return Codec::kNative;
  if (in(kDcmtk)) return Codec::kDcmtk;
  if (in(kJ2k)) return Codec::kJ2k;
  return Codec::kUnsupported;
}

Error parse_error(const OFCondition& cond, const std::string& name) {
  if (cond == EC_InvalidFilename) return Error(MV_ERR_IO, name + ": cannot open file");
  if (cond == EC_StreamNotifyClient) {
    return Error(MV_ERR_CORRUPT_DATA, name + ": file is truncated (ends inside a data element)");
  }
  return Error(MV_ERR_CORRUPT_DATA,
               name + ": not a readable DICOM file (" + std::string(cond.text()) + ")");
}

std::string get_string(DcmItem& item, const DcmTagKey& tag) {
  OFString s;
  if (item.findAndGetOFString(tag, s).bad()) return {};
  return std::string(s.c_str());
}

long get_long(DcmItem& item, const DcmTagKey& tag, long fallback) {
  long v = 0;
  if (item.findAndGetLongInt(tag, v).good()) return v;
  // NumberOfFrames and friends are IS strings; DCMTK's LongInt getter only covers binary VRs.
  const std::string s = get_string(item, tag);
  if (s.empty()) return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(s.c_str(), &end, 10);
  return end != s.c_str() ? parsed : fallback;
}

bool get_doubles(DcmItem& item, const DcmTagKey& tag, double* out, unsigned long n) {
  for (unsigned long i = 0; i < n; ++i) {
    if (item.findAndGetFloat64(tag, out[i], i).bad() || !std::isfinite(out[i])) return false;
  }
  return true;
}

bool has_values(DcmItem& item, const DcmTagKey& tag) {
  DcmElement* e = nullptr;
  return item.findAndGetElement(tag, e).good() && e != nullptr && e->getLength() > 0;
}

std::string tag_name(const DcmTagKey& tag) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "(%04X,%04X)", tag.getGroup(), tag.getElement());
  return buf;
}

// The first item of `seq` in `item`, or of its first-level functional group `group`.
DcmItem* sub_item(DcmItem* item, const DcmTagKey& seq) {
  DcmItem* out = nullptr;
  if (item == nullptr || item->findAndGetSequenceItem(seq, out, 0).bad()) return nullptr;
  return out;
}

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
    throw bad("(0028,0010) Rows / (0028,0011) Columns must be positive, got " +
              std::to_string(pm.rows) + "x" + std::to_string(pm.cols));
  }
  if (pm.frames <= 0) throw bad("(0028,0008) NumberOfFrames must be positive");
  if (pm.samples != 1 && pm.samples != 3) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": (0028,0002) SamplesPerPixel " +
                                               std::to_string(pm.samples) + " is not supported");
  }
  const bool ok_bits = pm.is_float ? (pm.bits_allocated == 32 || pm.bits_allocated == 64)
                                   : (pm.bits_allocated == 1 || pm.bits_allocated == 8 ||
                                      pm.bits_allocated == 16 || pm.bits_allocated == 32);
  if (!ok_bits) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": (0028,0100) BitsAllocated " +
                                               std::to_string(pm.bits_allocated) +
                                               " is not supported");
  }
  if (pm.bits_stored < 1 || pm.bits_stored > pm.bits_allocated) {
    throw bad("(0028,0101) BitsStored " + std::to_string(pm.bits_stored) + " does not fit " +
              std::to_string(pm.bits_allocated) + " bits allocated");
  }
  const bool colour = pm.photometric == Photometric::kRgb ||
                      pm.photometric == Photometric::kYbrFull ||
                      pm.photometric == Photometric::kYbrFull422;
  if (colour != (pm.samples == 3)) {
    throw bad("(0028,0004) PhotometricInterpretation " + pm.photometric_name + " with " +
              std::to_string(pm.samples) + " samples per pixel");
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

// ---- Modality LUT and palette -----------------------------------------------------------------

std::vector<uint16_t> lut_words(DcmItem& item, const DcmTagKey& tag, const std::string& name) {
  DcmElement* e = nullptr;
  Uint16* words = nullptr;
  if (item.findAndGetElement(tag, e).bad() || e == nullptr || e->getLength() == 0 ||
      e->getUint16Array(words).bad() || words == nullptr) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": " + tag_name(tag) + " LUT data is missing");
  }
  return std::vector<uint16_t>(words, words + e->getLength() / 2);
}

// LUT Descriptor (PS3.3 C.11.1.1.1): entries (0 means 65536), first mapped value, bits.
void read_descriptor(DcmItem& item, const DcmTagKey& tag, bool is_signed, long out[3],
                     const std::string& name) {
  for (unsigned long i = 0; i < 3; ++i) {
    // US or SS (PS3.3 C.11.1.1.1); implicit VR files leave DCMTK to guess either.
    Uint16 u = 0;
    Sint16 s = 0;
    if (item.findAndGetUint16(tag, u, i).good()) {
      out[i] = u;
    } else if (item.findAndGetSint16(tag, s, i).good()) {
      out[i] = static_cast<uint16_t>(s);
    } else {
      throw Error(MV_ERR_CORRUPT_DATA, name + ": " + tag_name(tag) + " LUT descriptor is invalid");
    }
  }
  if (out[0] == 0) out[0] = 65536;
  if (is_signed && out[1] >= 32768) out[1] -= 65536;  // first mapped value is SS for signed data
}

ModalityLut read_modality_lut(DcmDataset& ds, const PixelModule& pm, const std::string& name) {
  ModalityLut lut;
  DcmItem* item = sub_item(&ds, DCM_ModalityLUTSequence);
  // An item with an empty descriptor (seen in pylibjpeg-data JPEGLosslessP14SV1_1s_1f_u_16_16,
  // written by an unknown encoder) holds no table: fall back to rescale as if it were absent.
  if (item != nullptr && has_values(*item, DCM_LUTDescriptor)) {
    long desc[3];
    read_descriptor(*item, DCM_LUTDescriptor, pm.is_signed, desc, name);
    auto words = lut_words(*item, DCM_LUTData, name);
    if (words.size() < static_cast<size_t>(desc[0])) {
      throw Error(MV_ERR_CORRUPT_DATA, name + ": (0028,3006) LUTData has " +
                                           std::to_string(words.size()) + " entries, " +
                                           std::to_string(desc[0]) + " expected");
    }
    words.resize(static_cast<size_t>(desc[0]));
    // pydicom casts the table to uint<bits>; an 8-bit table keeps the low byte of each word.
    if (desc[2] == 8) {
      for (auto& w : words) w &= 0xff;
    }
    lut.table = std::move(words);
    lut.first_mapped = desc[1];
    return lut;
  }
  // Enhanced objects carry rescale in the Pixel Value Transformation functional group.
  DcmItem* src = &ds;
  if (!ds.tagExists(DCM_RescaleSlope)) {
    DcmItem* shared = sub_item(&ds, DCM_SharedFunctionalGroupsSequence);
    if (DcmItem* t = sub_item(shared, DCM_PixelValueTransformationSequence)) src = t;
  }
  lut.rescale = get_doubles(*src, DCM_RescaleSlope, &lut.slope, 1) &&
                get_doubles(*src, DCM_RescaleIntercept, &lut.intercept, 1);
  if (!lut.rescale) lut.slope = 1.0, lut.intercept = 0.0;
  return lut;
}

std::vector<uint16_t> palette_channel(DcmDataset& ds, const DcmTagKey& plain,
                                      const DcmTagKey& segmented, long entries, long bits,
                                      const std::string& name) {
  if (ds.tagExists(segmented)) {
    const auto words = lut_words(ds, segmented, name);
    if (bits == 8) {  // 8-bit segmented data: two bytes per word, low byte first
      std::vector<uint16_t> bytes;
      for (uint16_t w : words) bytes.push_back(w & 0xff), bytes.push_back(w >> 8);
      return expand_segmented_lut(bytes.data(), bytes.size(), static_cast<size_t>(entries), name);
    }
    return expand_segmented_lut(words.data(), words.size(), static_cast<size_t>(entries), name);
  }
  auto words = lut_words(ds, plain, name);
  const auto n = static_cast<size_t>(entries);
  if (words.size() * 2 == n) {  // 8-bit entries packed two per word (pydicom: bytes == entries)
    std::vector<uint16_t> out;
    for (uint16_t w : words) out.push_back(w & 0xff), out.push_back(w >> 8);
    return out;
  }
  if (words.size() < n) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": " + tag_name(plain) + " palette has " +
                                         std::to_string(words.size()) + " entries, " +
                                         std::to_string(n) + " expected");
  }
  words.resize(n);
  return words;
}

PaletteLut read_palette(DcmDataset& ds, const std::string& name) {
  long desc[3];
  read_descriptor(ds, DCM_RedPaletteColorLookupTableDescriptor, false, desc, name);
  PaletteLut p;
  p.first_mapped = desc[1];
  p.rgb[0] = palette_channel(ds, DCM_RedPaletteColorLookupTableData,
                             DCM_SegmentedRedPaletteColorLookupTableData, desc[0], desc[2], name);
  p.rgb[1] = palette_channel(ds, DCM_GreenPaletteColorLookupTableData,
                             DCM_SegmentedGreenPaletteColorLookupTableData, desc[0], desc[2], name);
  p.rgb[2] = palette_channel(ds, DCM_BluePaletteColorLookupTableData,
                             DCM_SegmentedBluePaletteColorLookupTableData, desc[0], desc[2], name);
  if (p.rgb[0].empty() || p.rgb[0].size() != p.rgb[1].size() ||
      p.rgb[0].size() != p.rgb[2].size()) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": palette colour LUTs differ in length");
  }
  return p;
}

// ---- pixel data access ------------------------------------------------------------------------

DcmTagKey pixel_tag(const PixelModule& pm, DcmDataset& ds) {
  if (!pm.is_float) return DCM_PixelData;
  return ds.tagExists(DCM_FloatPixelData) ? DCM_FloatPixelData : DCM_DoubleFloatPixelData;
}

const char* pixel_tag_label(const DcmTagKey& tag) {
  if (tag == DCM_FloatPixelData) return "(7FE0,0008) FloatPixelData";
  if (tag == DCM_DoubleFloatPixelData) return "(7FE0,0009) DoubleFloatPixelData";
  return "(7FE0,0010) PixelData";
}

// The value as bytes in host (little endian) order, whatever its VR (OB/OW/OF/OD).
OFCondition raw_bytes(DcmElement& e, Uint8*& bytes) {
  if (e.getVR() == EVR_OF) {
    Float32* f = nullptr;
    const OFCondition c = e.getFloat32Array(f);
    bytes = reinterpret_cast<Uint8*>(f);
    return c;
  }
  if (e.getVR() == EVR_OD) {
    Float64* d = nullptr;
    const OFCondition c = e.getFloat64Array(d);
    bytes = reinterpret_cast<Uint8*>(d);
    return c;
  }
  return e.getUint8Array(bytes);
}

// DCMTK swaps big endian OW data in 16-bit words, which is right for 8- and 16-bit samples (an OW
// value is a sequence of words) but leaves each 32-bit sample with its halves exchanged.
// An OB value is a byte stream: DCMTK leaves it in file order, so 16- and 32-bit samples stored
// as OB in a big endian file (pydicom-data SC_rgb_expb_16bit.dcm) are still big endian here.
// Found by tests/fuzz/dicom_differential.py: that file's samples are all 0000 or FFFF, so only a
// mutated copy showed the byte order was never fixed.
void fix_big_endian(uint8_t* bytes, size_t size, const PixelModule& pm, DcmElement& e) {
  if (e.getVR() == EVR_OB && pm.bits_allocated >= 16 && !pm.is_float) {
    const size_t w = static_cast<size_t>(pm.bits_allocated / 8);
    for (size_t i = 0; i + w <= size; i += w) std::reverse(bytes + i, bytes + i + w);
    return;
  }
  if (e.getVR() != EVR_OW || pm.bits_allocated != 32) return;
  for (size_t i = 0; i + 3 < size; i += 4) {
    std::swap(bytes[i], bytes[i + 2]);
    std::swap(bytes[i + 1], bytes[i + 3]);
  }
}

void decode_native(DcmDataset& ds, const Header& h, int64_t first, int64_t count, Image& out,
                   int64_t depth_offset, const std::string& name) {
  const PixelModule& pm = h.pixels;
  const DcmTagKey tag = pixel_tag(pm, ds);
  DcmElement* e = nullptr;
  if (ds.findAndGetElement(tag, e).bad() || e == nullptr) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": has no PixelData");
  }
  const uint64_t frame_bits = pm.native_frame_bits();
  const uint64_t expected = (frame_bits * static_cast<uint64_t>(pm.frames) + 7) / 8;
  // Checked against the length field before DCMTK loads the value from disk.
  if (e->getLength() < expected) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": " + pixel_tag_label(tag) + " has " +
                                         std::to_string(e->getLength()) + " bytes, " +
                                         std::to_string(expected) + " expected");
  }
  Uint8* bytes = nullptr;
  const OFCondition cond = raw_bytes(*e, bytes);
  if (cond.bad() || bytes == nullptr) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": " + pixel_tag_label(tag) + " cannot be read (" +
                                         std::string(cond.text()) + ")");
  }
  if (ds.getOriginalXfer() == EXS_BigEndianExplicit) {
    fix_big_endian(bytes, static_cast<size_t>(expected), pm, *e);
  }
  const PaletteLut palette =
      pm.photometric == Photometric::kPalette ? read_palette(ds, name) : PaletteLut{};
  const ValueMapper mapper(pm, read_modality_lut(ds, pm, name), &palette);
  for (int64_t k = 0; k < count; ++k) {
    FrameSamples src;
    src.data = bytes;
    src.size = static_cast<size_t>(expected);
    src.is_float = pm.is_float;
    src.planar = pm.planar;
    src.bytes_per_sample = pm.bits_allocated / 8;
    const uint64_t start_bit = frame_bits * static_cast<uint64_t>(first + k);
    if (pm.bits_allocated == 1) {
      src.bit_offset = start_bit;
    } else {
      src.data += start_bit / 8;
    }
    mapper.convert(src, out.data() + static_cast<size_t>(depth_offset + k) * out.plane_size(),
                   out.channel_size());
  }
}

// The encapsulated pixel sequence of `ds` and its frame index.
struct Encapsulated {
  DcmPixelData* pixel_data = nullptr;
  E_TransferSyntax xfer = EXS_Unknown;
  const DcmRepresentationParameter* param = nullptr;
  DcmPixelSequence* sequence = nullptr;
};

Encapsulated encapsulated(DcmDataset& ds, const std::string& name) {
  Encapsulated out;
  DcmElement* e = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, e).bad() || e == nullptr) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": has no PixelData");
  }
  out.pixel_data = static_cast<DcmPixelData*>(e);
  out.pixel_data->getOriginalRepresentationKey(out.xfer, out.param);
  if (out.pixel_data->getEncapsulatedRepresentation(out.xfer, out.param, out.sequence).bad() ||
      out.sequence == nullptr) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": (7FE0,0010) PixelData is not encapsulated");
  }
  return out;
}

// The attributes DCMTK's decoders read (image pixel module), copied into an item that describes
// a single frame.
void copy_pixel_module(DcmDataset& ds, DcmItem& out) {
  static const DcmTagKey kTags[] = {DCM_SamplesPerPixel,
                                    DCM_PhotometricInterpretation,
                                    DCM_PlanarConfiguration,
                                    DCM_Rows,
                                    DCM_Columns,
                                    DCM_BitsAllocated,
                                    DCM_BitsStored,
                                    DCM_HighBit,
                                    DCM_PixelRepresentation};
  for (const DcmTagKey& tag : kTags) {
    DcmElement* e = nullptr;
    if (ds.findAndGetElement(tag, e).good() && e != nullptr) {
      out.insert(static_cast<DcmElement*>(e->clone()), true);
    }
  }
  out.putAndInsertString(DCM_NumberOfFrames, "1");
}

// DCMTK decompresses JPEG / JPEG-LS / RLE one frame at a time into our buffer. We find the frame's
// fragments ourselves (FrameIndex) and hand DCMTK a one-frame pixel sequence holding exactly that
// frame's codestream: DCMTK 3.6.7's own fragment grouping decodes an RLE frame split over several
// fragments to wrong pixels without an error (issue 19), and guesses at frame boundaries. Its
// decoders update the item's planar configuration and report the colour model they produced.
void decode_with_dcmtk(DcmDataset& ds, const Header& h, int64_t first, int64_t count, Image& out,
                       int64_t depth_offset, const std::string& name) {
  const Encapsulated enc = encapsulated(ds, name);
  CodecFamily family = CodecFamily::kJpeg;
  codec_family(h.transfer_syntax, family);
  const FrameIndex index(ds, *enc.sequence, h.pixels.frames, family, h.transfer_syntax, name);
  Uint32 frame_size = 0;
  if (enc.pixel_data->getUncompressedFrameSize(&ds, frame_size).bad()) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": (7FE0,0010) PixelData frame size is invalid");
  }
  const auto native = static_cast<size_t>((h.pixels.native_frame_bits() + 7) / 8);
  // DCMTK refuses odd buffer sizes (its frames are padded to even length).
  std::vector<uint8_t> buffer((std::max<size_t>(frame_size, native) + 1) & ~size_t{1});
  const ModalityLut lut = read_modality_lut(ds, h.pixels, name);
  const PaletteLut palette =
      h.pixels.photometric == Photometric::kPalette ? read_palette(ds, name) : PaletteLut{};
  const DcmXfer xfer(enc.xfer);
  for (int64_t k = 0; k < count; ++k) {
    const FrameBytes bytes = index.frame(first + k);
    check_codestream_size(bytes, family, h.pixels.rows, h.pixels.cols, h.pixels.samples, first + k,
                          h.transfer_syntax, name);
    DcmItem item;
    copy_pixel_module(ds, item);
    DcmPixelSequence one(DcmTag(DCM_PixelSequenceTag));
    one.insert(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB)));  // empty Basic Offset Table
    auto* fragment = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
    one.insert(fragment);
    if (fragment->putUint8Array(bytes.data, static_cast<Uint32>(bytes.size)).bad()) {
      throw Error(MV_ERR_OUT_OF_MEMORY,
                  name + ": cannot copy frame " + std::to_string(first + k) + " for decoding");
    }
    Uint32 start_fragment = 1;
    OFString colour;
    std::string damaged;
    const JpegProblemScope watch(&damaged);
    const OFCondition cond =
        DcmCodecList::decodeFrame(xfer, enc.param, &one, &item, 0, start_fragment, buffer.data(),
                                  static_cast<Uint32>(buffer.size()), colour);
    if (cond.bad()) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  name + ": (7FE0,0010) PixelData frame " + std::to_string(first + k) +
                      " is not a valid " + transfer_syntax_label(h.transfer_syntax) +
                      " codestream (the decoder reports: " + std::string(cond.text()) + ")");
    }
    if (!damaged.empty()) {
      throw Error(MV_ERR_CORRUPT_DATA, name + ": (7FE0,0010) PixelData frame " +
                                           std::to_string(first + k) + " (" +
                                           transfer_syntax_label(h.transfer_syntax) +
                                           ") holds damaged data: " + damaged);
    }
    PixelModule pm = h.pixels;
    pm.planar = get_long(item, DCM_PlanarConfiguration, 0) == 1;
    if (pm.samples == 3) {
      // Decompressed YBR_FULL_422 is no longer subsampled (PS3.5 8.2.1).
      pm.photometric =
          std::string(colour.c_str()) == "RGB" ? Photometric::kRgb : Photometric::kYbrFull;
    }
    const ValueMapper mapper(pm, lut, &palette);
    FrameSamples src{buffer.data(), frame_size, pm.bits_allocated / 8, pm.planar, false, 0};
    mapper.convert(src, out.data() + static_cast<size_t>(depth_offset + k) * out.plane_size(),
                   out.channel_size());
  }
}

void decode_j2k_frames(DcmDataset& ds, const Header& h, int64_t first, int64_t count, Image& out,
                       int64_t depth_offset, const std::string& name) {
  const Encapsulated enc = encapsulated(ds, name);
  const PixelModule& pm = h.pixels;
  const FrameIndex index(ds, *enc.sequence, pm.frames, CodecFamily::kJ2k, h.transfer_syntax, name);
  const ValueMapper mapper(pm, read_modality_lut(ds, pm, name), nullptr);
  for (int64_t k = 0; k < count; ++k) {
    const FrameBytes bytes = index.frame(first + k);
    const J2kFrame frame = decode_j2k(bytes.data, bytes.size, pm.rows, pm.cols, pm.samples, name);
    FrameSamples src{reinterpret_cast<const uint8_t*>(frame.planes.data()),
                     frame.planes.size() * sizeof(int32_t),
                     4,
                     true,
                     false,
                     0};
    mapper.convert(src, out.data() + static_cast<size_t>(depth_offset + k) * out.plane_size(),
                   out.channel_size());
  }
}

// ---- VOI presets and meta ---------------------------------------------------------------------

mv_voi_function voi_function(DcmDataset& ds) {
  const std::string f = get_string(ds, DCM_VOILUTFunction);
  if (f == "LINEAR_EXACT") return MV_VOI_LINEAR_EXACT;
  if (f == "SIGMOID") return MV_VOI_SIGMOID;
  return MV_VOI_LINEAR;
}

void read_windows(DcmDataset& ds, const PixelModule& pm, Image& out, TextDecoder& text_decoder,
                  const std::string& name) {
  const mv_voi_function function = voi_function(ds);
  for (unsigned long i = 0;; ++i) {
    WindowPreset w;
    if (ds.findAndGetFloat64(DCM_WindowCenter, w.center, i).bad() ||
        ds.findAndGetFloat64(DCM_WindowWidth, w.width, i).bad()) {
      break;
    }
    w.function = function;
    OFString text;
    if (ds.findAndGetOFString(DCM_WindowCenterWidthExplanation, text, i).good()) {
      w.explanation = text_decoder(text.c_str());
    }
    out.windows.push_back(std::move(w));
  }
  DcmSequenceOfItems* seq = nullptr;
  if (ds.findAndGetSequence(DCM_VOILUTSequence, seq).bad() || seq == nullptr) return;
  for (unsigned long i = 0; i < seq->card(); ++i) {
    DcmItem& item = *seq->getItem(i);
    if (!has_values(item, DCM_LUTDescriptor)) continue;  // an empty item describes no table
    long desc[3];
    read_descriptor(item, DCM_LUTDescriptor, pm.is_signed, desc, name);
    const auto words = lut_words(item, DCM_LUTData, name);
    WindowPreset w;
    w.function = MV_VOI_TABLE;
    w.first_mapped = static_cast<double>(desc[1]);
    w.table_bits = static_cast<int>(desc[2]);
    const size_t n = std::min(words.size(), static_cast<size_t>(desc[0]));
    w.table.assign(words.begin(), words.begin() + static_cast<std::ptrdiff_t>(n));
    w.center = w.first_mapped + static_cast<double>(n) / 2.0;
    w.width = static_cast<double>(n);
    OFString text;
    if (item.findAndGetOFString(DCM_LUTExplanation, text).good()) {
      w.explanation = text_decoder(text.c_str());
    }
    if (!w.table.empty()) out.windows.push_back(std::move(w));
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

// ---- public internals -------------------------------------------------------------------------

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// An anonymous in-memory file holding `data` (Linux memfd; nothing touches the disk), or -1.
int memory_file(const uint8_t* data, size_t size) {
#ifdef __linux__
  const int fd = memfd_create("medvision-dicom", MFD_CLOEXEC);
  if (fd < 0) return -1;
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    done += static_cast<size_t>(n);
  }
  return fd;
#else
  (void)data, (void)size;
  return -1;
#endif
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// Deflated Explicit VR Little Endian: DCMTK reads the data set through zlib, a stream it cannot
// skip in, so an element's declared length is allocated before DCMTK finds the data shorter (a
// mutated 26 KiB file made it allocate 1.3 GB; found by fuzz_load_dicom, issue 19). We inflate
// the data set ourselves (at most kMaxInflated bytes, as real output, never a declared size) and
// let DCMTK read it as a plain explicit little endian file, where long values are skipped and
// checked against the file size. The meta header, transfer syntax included, is kept as it was.
constexpr size_t kMaxInflated = size_t{1} << 30;

std::unique_ptr<DcmFileFormat> load_deflated(const std::string& path, DcmFileFormat& meta_only,
                                             const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> raw((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
  const auto meta_length = static_cast<size_t>(
      meta_only.getMetaInfo()->getLength(EXS_LittleEndianExplicit, EET_ExplicitLength));
  size_t offset = 0;
  if (raw.size() >= 132 && std::memcmp(raw.data() + 128, "DICM", 4) == 0) {
    offset = 132 + meta_length;
  } else if (raw.size() >= 4 && std::memcmp(raw.data(), "DICM", 4) == 0) {
    offset = 4 + meta_length;
  } else {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": deflated data set without a DICM prefix");
  }
  if (offset > raw.size()) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": file is truncated (ends inside the meta header)");
  }
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
    throw Error(MV_ERR_OUT_OF_MEMORY, name + ": cannot start zlib");
  }
  std::vector<uint8_t> inflated;
  z.next_in = const_cast<Bytef*>(raw.data() + offset);
  z.avail_in = static_cast<uInt>(raw.size() - offset);
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (inflated.size() >= kMaxInflated) {
      inflateEnd(&z);
      throw Error(MV_ERR_OUT_OF_MEMORY, name + ": deflated data set inflates to more than " +
                                            std::to_string(kMaxInflated) + " bytes");
    }
    const size_t have = inflated.size();
    inflated.resize(std::min(kMaxInflated, std::max<size_t>(have * 2, 1 << 16)));
    z.next_out = inflated.data() + have;
    z.avail_out = static_cast<uInt>(inflated.size() - have);
    rc = inflate(&z, Z_NO_FLUSH);
    inflated.resize(inflated.size() - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // input ended without a final block
    if (rc == Z_BUF_ERROR) rc = Z_OK;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
    throw Error(MV_ERR_CORRUPT_DATA,
                name + ": deflated data set is corrupt (zlib error " + std::to_string(rc) + ")");
  }
  FdCloser fd{memory_file(inflated.data(), inflated.size())};
  if (fd.fd < 0) return nullptr;
  auto dataset = std::make_unique<DcmDataset>();
  const OFCondition cond = dataset->loadFile(fd_path(fd.fd).c_str(), EXS_LittleEndianExplicit,
                                             EGL_noChange, DCM_MaxReadLength);
  if (cond.bad()) throw parse_error(cond, name);
  const OFCondition load = dataset->loadAllDataIntoMemory();
  if (load.bad()) throw parse_error(load, name);
  auto file = std::make_unique<DcmFileFormat>(dataset.get(), OFFalse);
  dataset.release();  // owned by `file` now (no deep copy)
  DcmMetaInfo* meta = file->getMetaInfo();
  meta->clear();
  DcmMetaInfo* source = meta_only.getMetaInfo();
  for (unsigned long i = 0; i < source->card(); ++i) {
    meta->insert(static_cast<DcmElement*>(source->getElement(i)->clone()), true);
  }
  return file;
}

// DCMTK's loadFile, or load_deflated for the deflated transfer syntax. `name` for messages.
std::unique_ptr<DcmFileFormat> load_path(const std::string& path, const std::string& name) {
  auto file = std::make_unique<DcmFileFormat>();
  DcmFileFormat meta_only;
  if (meta_only.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_metaOnly)
          .good() &&
      get_string(*meta_only.getMetaInfo(), DCM_TransferSyntaxUID) == "1.2.840.10008.1.2.1.99") {
    if (auto inflated = load_deflated(path, meta_only, name)) return inflated;
  }
  // EXS_Unknown + autodetect: files without preamble or meta header parse too.
  const OFCondition cond =
      file->loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  if (cond.bad()) throw parse_error(cond, name);
  return file;
}

}  // namespace

std::unique_ptr<DcmFileFormat> parse_file(const std::string& path) {
  ensure_dcmtk_ready();
  return load_path(path, path);
}

namespace {

// DCMTK reading a DcmInputBufferStream allocates each element's declared length before it finds
// the data shorter: 4 KiB of pydicom's SC_rgb_jpeg.dcm made it allocate 1.3 GB (found by
// fuzz_load_dicom, issue 19). Reading a file, it skips long values, checks them against the file
// size, and loads them later. So bytes in memory are handed to DCMTK as a file: an anonymous
// memfd (Linux; nothing touches the disk). Null when that is not possible.
std::unique_ptr<DcmFileFormat> parse_memory_as_file(const uint8_t* data, size_t size,
                                                    const std::string& name) {
  FdCloser fd{memory_file(data, size)};
  if (fd.fd < 0 || ::access(fd_path(fd.fd).c_str(), R_OK) != 0) return nullptr;
  auto file = load_path(fd_path(fd.fd), name);
  // The memfd is closed on return: make sure every value is in memory now.
  const OFCondition load = file->loadAllDataIntoMemory();
  if (load.bad()) throw parse_error(load, name);
  return file;
}

}  // namespace

std::unique_ptr<DcmFileFormat> parse_memory(const uint8_t* data, size_t size,
                                            const std::string& name) {
  ensure_dcmtk_ready();
  if (auto parsed = parse_memory_as_file(data, size, name)) return parsed;
  auto file = std::make_unique<DcmFileFormat>();
  DcmInputBufferStream stream;
  stream.setBuffer(data, static_cast<offile_off_t>(size));
  stream.setEos();
  file->transferInit();
  const OFCondition cond = file->read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
  file->transferEnd();
  if (cond.bad()) throw parse_error(cond, name);
  // The stream does not outlive this call: make sure every value is in memory now.
  const OFCondition load = file->loadAllDataIntoMemory();
  if (load.bad()) throw parse_error(load, name);
  return file;
}

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

void decode_frames(DcmFileFormat& file, const Header& header, int64_t first, int64_t count,
                   Image& out, int64_t depth_offset, const std::string& name) {
  DcmDataset& ds = *file.getDataset();
  switch (codec_for(header.transfer_syntax)) {
    case Codec::kNative:
      decode_native(ds, header, first, count, out, depth_offset, name);
      break;
    case Codec::kDcmtk:
      decode_with_dcmtk(ds, header, first, count, out, depth_offset, name);
      break;
    case Codec::kJ2k:
      decode_j2k_frames(ds, header, first, count, out, depth_offset, name);
      break;
    case Codec::kUnsupported:
      break;  // refused by read_header
  }
}

std::array<double, 9> direction_from(const Plane& plane) {
  const auto& o = plane.orientation;
  const std::array<double, 3> n = {o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5],
                                   o[0] * o[4] - o[1] * o[3]};
  // Row-major with one axis per column: x along a row, y down the columns, z the normal.
  return {o[0], o[3], n[0], o[1], o[4], n[1], o[2], o[5], n[2]};
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
  g.direction = dicom::direction_from(h.planes[k]);
  if (count < 2 || k + 1 >= h.planes.size() || !h.planes[k].has_position ||
      !h.planes[k + 1].has_position) {
    return g;
  }
  double step = 0;
  for (size_t i = 0; i < 3; ++i) {
    step += (h.planes[k + 1].position[i] - h.planes[k].position[i]) * g.direction[i * 3 + 2];
  }
  if (std::abs(step) < 1e-6) return g;
  g.spacing[2] = std::abs(step);
  if (step < 0) {
    for (size_t i = 0; i < 3; ++i) g.direction[i * 3 + 2] = -g.direction[i * 3 + 2];
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
      throw Error(MV_ERR_INVALID_ARGUMENT, name + ": frame " + std::to_string(options.frame) +
                                               " requested, the file has " +
                                               std::to_string(pm.frames));
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
