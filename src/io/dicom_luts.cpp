// DICOM lookup tables (PS3.3 C.11): the Modality LUT (or rescale), Palette Color LUTs and the VOI
// presets (Window Center / Width and VOI LUT Sequence tables). Applying them is dicom_pixels.cpp's
// job (Modality, palette) and load.cpp's (VOI); here they are only read and checked.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <algorithm>
#include <cstddef>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/dicom_dataset.hpp"

namespace medvision::io::dicom {
namespace {

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

}  // namespace

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
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{}: (0028,3006) LUTData has {} entries, {} expected", name,
                              words.size(), desc[0]));
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

namespace {

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
    throw Error(MV_ERR_CORRUPT_DATA, fmt::format("{}: {} palette has {} entries, {} expected", name,
                                                 tag_name(plain), words.size(), n));
  }
  words.resize(n);
  return words;
}

}  // namespace

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

namespace {

mv_voi_function voi_function(DcmDataset& ds) {
  const std::string f = get_string(ds, DCM_VOILUTFunction);
  if (f == "LINEAR_EXACT") return MV_VOI_LINEAR_EXACT;
  if (f == "SIGMOID") return MV_VOI_SIGMOID;
  return MV_VOI_LINEAR;
}

}  // namespace

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

}  // namespace medvision::io::dicom
