#pragma once
// DCMTK-facing helpers shared by the files of the single-file DICOM reader: dicom_parse.cpp
// (bytes to a DcmFileFormat), dicom_reader.cpp (the header), dicom_luts.cpp (Modality, palette
// and VOI LUTs) and dicom_frames.cpp (pixel data to floats). Private to src/io.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dctagkey.h>

#include <string>
#include <vector>

#include "common/image.hpp"
#include "io/dicom_pixels.hpp"
#include "io/dicom_text.hpp"

namespace medvision::io::dicom {

// Which decoder a transfer syntax goes to.
enum class Codec { kNative, kDcmtk, kJ2k, kUnsupported };
Codec codec_for(const std::string& transfer_syntax_uid);

// ---- attribute access (dicom_dataset.cpp) ----------------------------------------------------

// The value as a string; empty when absent.
std::string get_string(DcmItem& item, const DcmTagKey& tag);
// A binary integer, or an IS string (NumberOfFrames and friends); `fallback` when absent.
long get_long(DcmItem& item, const DcmTagKey& tag, long fallback);
// The first `n` values as finite doubles; false when one is missing or not finite.
bool get_doubles(DcmItem& item, const DcmTagKey& tag, double* out, unsigned long n);
// Whether the element is present with a non-empty value.
bool has_values(DcmItem& item, const DcmTagKey& tag);
// "(GGGG,EEEE)" for messages.
std::string tag_name(const DcmTagKey& tag);
// The first item of sequence `seq` in `item`; null when `item` is null or has none.
DcmItem* sub_item(DcmItem* item, const DcmTagKey& seq);

// ---- LUTs (dicom_luts.cpp, PS3.3 C.11) -------------------------------------------------------

// Modality LUT Sequence, else Rescale Slope / Intercept (also from the Pixel Value Transformation
// functional group of enhanced objects).
ModalityLut read_modality_lut(DcmDataset& ds, const PixelModule& pm, const std::string& name);
// Red, green and blue Palette Color LUTs, segmented ones expanded.
PaletteLut read_palette(DcmDataset& ds, const std::string& name);
// Window Center / Width pairs and VOI LUT Sequence tables as presets, explanations decoded to
// UTF-8 with `text_decoder`.
void read_windows(DcmDataset& ds, const PixelModule& pm, Image& out, TextDecoder& text_decoder,
                  const std::string& name);

}  // namespace medvision::io::dicom
