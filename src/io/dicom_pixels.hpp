#pragma once
// DICOM pixel conversion: stored samples (native little endian bytes, or decoded JPEG 2000
// components) to float32 planes in physical units. Bit masking, sign extension, colour spaces,
// palettes and the Modality LUT happen here, in one pass per frame where possible.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace medvision::io::dicom {

enum class Photometric { kMonochrome1, kMonochrome2, kRgb, kYbrFull, kYbrFull422, kPalette };

// What the Image Pixel module says about the stored samples (PS3.3 C.7.6.3).
struct PixelModule {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t frames = 1;
  int64_t samples = 1;
  int bits_allocated = 0;
  int bits_stored = 0;
  bool is_signed = false;  // PixelRepresentation == 1
  bool planar = false;     // PlanarConfiguration == 1 (colour-by-plane)
  bool is_float = false;   // (7FE0,0008) Float / (7FE0,0009) Double Float Pixel Data
  Photometric photometric = Photometric::kMonochrome2;
  std::string photometric_name;

  int64_t pixels_per_frame() const { return rows * cols; }
  // Output channels: palette colour expands to RGB.
  int64_t channels() const { return photometric == Photometric::kPalette ? 3 : samples; }
  // Bytes of one native (uncompressed) frame; YBR_FULL_422 stores two samples per pixel.
  uint64_t native_frame_bits() const;
};

// Modality LUT (PS3.3 C.11.1), applied to monochrome data exactly as pydicom's
// apply_modality_lut: a LUT Sequence wins over Rescale Slope/Intercept.
struct ModalityLut {
  bool rescale = false;
  double slope = 1.0;
  double intercept = 0.0;
  std::vector<uint16_t> table;  // empty: no table
  int64_t first_mapped = 0;
};

// Palette Color LUTs (PS3.3 C.7.6.3.1.5), already expanded when segmented.
struct PaletteLut {
  std::array<std::vector<uint16_t>, 3> rgb;
  int64_t first_mapped = 0;
};

// One frame of stored samples. `bytes_per_sample` is 1, 2, 4 or 8; 0 means 1-bit packed
// (LSB first, frames not byte aligned, so `bit_offset` says where the frame starts).
struct FrameSamples {
  const uint8_t* data = nullptr;
  size_t size = 0;
  int bytes_per_sample = 0;
  bool planar = false;
  bool is_float = false;
  uint64_t bit_offset = 0;
};

// Converts stored values to output floats, built once per image (a table when BitsStored <= 16).
class ValueMapper {
 public:
  ValueMapper(const PixelModule& pm, const ModalityLut& lut, const PaletteLut* palette);

  // Writes one frame into `dst` planes [c * channel_stride + y * cols + x].
  void convert(const FrameSamples& src, float* dst, size_t channel_stride) const;

  // Converts `count` consecutive stored samples (little endian, BitsAllocated 8, 16 or 32) of a
  // one-sample, non-palette integer image, from any point in a frame: a native value read in
  // pieces (dicom_frames.cpp) is converted piece by piece.
  void convert_samples(const uint8_t* in, size_t count, float* dst) const;

 private:
  template <typename T>
  void convert_integer(const FrameSamples& src, float* dst, size_t channel_stride) const;
  template <typename T>
  void convert_run(const uint8_t* in, size_t count, float* dst) const;
  void convert_bits(const FrameSamples& src, float* dst) const;
  template <typename T>
  void convert_float(const FrameSamples& src, float* dst, size_t channel_stride) const;
  float map_value(int64_t stored) const;
  int64_t extend(uint64_t raw) const;
  void expand_palette(float* dst, size_t channel_stride) const;

  PixelModule pm_;
  ModalityLut lut_;
  const PaletteLut* palette_;
  bool monochrome_;
  uint64_t mask_;
  std::vector<float> table_;  // indexed by the masked stored value when BitsStored <= 16
  bool identity_ = false;     // table_[v] == v for every v: convert without the lookup
};

// YBR_FULL to RGB in place on three planes, as pydicom's convert_color_space (float32 maths,
// +0.5, floor, clip to [0, 255]).
void ybr_full_to_rgb(float* planes, size_t channel_stride, size_t count, int bits);

// Expands a segmented palette LUT (PS3.3 C.7.9.2) to plain entries; throws on malformed data.
std::vector<uint16_t> expand_segmented_lut(const uint16_t* data, size_t count, size_t max_entries,
                                           const std::string& name);

}  // namespace medvision::io::dicom
