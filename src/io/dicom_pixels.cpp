#include "io/dicom_pixels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/error.hpp"

namespace medvision::io::dicom {
namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // native data is little endian, like every host we build for
  return v;
}

}  // namespace

uint64_t PixelModule::native_frame_bits() const {
  const auto pixels = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  // PS3.3 C.7.6.3.1.2: YBR_FULL_422 shares Cb/Cr between two horizontal pixels.
  const uint64_t samples_stored = photometric == Photometric::kYbrFull422
                                      ? pixels * 2
                                      : pixels * static_cast<uint64_t>(samples);
  return samples_stored * static_cast<uint64_t>(bits_allocated);
}

ValueMapper::ValueMapper(const PixelModule& pm, const ModalityLut& lut, const PaletteLut* palette)
    : pm_(pm),
      lut_(lut),
      palette_(palette),
      monochrome_(pm.samples == 1 && pm.photometric != Photometric::kPalette),
      mask_(pm.bits_stored >= 64 ? ~uint64_t{0} : (uint64_t{1} << pm.bits_stored) - 1) {
  if (pm.is_float || pm.bits_stored > 16) return;
  // One table over every possible stored value: masking, sign extension and the Modality LUT
  // collapse into a single lookup per sample.
  table_.resize(size_t{1} << pm.bits_stored);
  for (size_t raw = 0; raw < table_.size(); ++raw) {
    const int64_t v = extend(raw);
    table_[raw] = monochrome_ ? map_value(v) : static_cast<float>(v);
  }
  // Unsigned data without a Modality LUT maps every value to itself: the per-sample lookup
  // (a 128 KiB table for 16 bits) can then become a masked conversion the compiler vectorises.
  identity_ = true;
  for (size_t raw = 0; raw < table_.size() && identity_; ++raw) {
    identity_ = table_[raw] == static_cast<float>(raw);
  }
}

int64_t ValueMapper::extend(uint64_t raw) const {
  raw &= mask_;
  if (pm_.is_signed && pm_.bits_stored < 64 && (raw >> (pm_.bits_stored - 1)) != 0) {
    return static_cast<int64_t>(raw | ~mask_);
  }
  return static_cast<int64_t>(raw);
}

float ValueMapper::map_value(int64_t v) const {
  if (!lut_.table.empty()) {
    // pydicom: values below first_mapped map to entry 0, above the table to the last entry.
    const int64_t last = static_cast<int64_t>(lut_.table.size()) - 1;
    const int64_t i = v >= lut_.first_mapped ? std::min(v - lut_.first_mapped, last) : 0;
    return static_cast<float>(lut_.table[static_cast<size_t>(i)]);
  }
  if (lut_.rescale) return static_cast<float>(static_cast<double>(v) * lut_.slope + lut_.intercept);
  return static_cast<float>(v);
}

void ValueMapper::convert(const FrameSamples& src, float* dst, size_t channel_stride) const {
  if (src.is_float) {
    if (src.bytes_per_sample == 8) {
      convert_float<double>(src, dst, channel_stride);
    } else {
      convert_float<float>(src, dst, channel_stride);
    }
    return;
  }
  switch (src.bytes_per_sample) {
    case 0:
      convert_bits(src, dst);
      break;
    case 1:
      convert_integer<uint8_t>(src, dst, channel_stride);
      break;
    case 2:
      convert_integer<uint16_t>(src, dst, channel_stride);
      break;
    case 4:
      convert_integer<uint32_t>(src, dst, channel_stride);
      break;
    default:
      throw Error(MV_ERR_INTERNAL, "dicom: unexpected sample size");
  }
  const auto count = static_cast<size_t>(pm_.pixels_per_frame());
  if (pm_.photometric == Photometric::kYbrFull || pm_.photometric == Photometric::kYbrFull422) {
    ybr_full_to_rgb(dst, channel_stride, count, pm_.bits_stored);
  } else if (pm_.photometric == Photometric::kPalette) {
    expand_palette(dst, channel_stride);
  }
}

template <typename T>
void ValueMapper::convert_integer(const FrameSamples& src, float* dst,
                                  size_t channel_stride) const {
  const auto count = static_cast<size_t>(pm_.pixels_per_frame());
  const auto samples = static_cast<size_t>(pm_.samples);
  const uint8_t* in = src.data;
  auto value = [&](size_t i) -> float {
    const auto raw = static_cast<uint64_t>(load<T>(in + i * sizeof(T)));
    if (!table_.empty()) return table_[raw & mask_];
    const int64_t v = extend(raw);
    return monochrome_ ? map_value(v) : static_cast<float>(v);
  };
  if (pm_.photometric == Photometric::kYbrFull422) {
    // Y0 Y1 Cb Cr for each horizontal pair (PS3.3 C.7.6.3.1.2); odd widths are rejected earlier.
    for (size_t p = 0; p < count; p += 2) {
      const size_t base = p * 2;
      dst[p] = value(base);
      dst[p + 1] = value(base + 1);
      dst[channel_stride + p] = dst[channel_stride + p + 1] = value(base + 2);
      dst[2 * channel_stride + p] = dst[2 * channel_stride + p + 1] = value(base + 3);
    }
    return;
  }
  if (samples == 1 || src.planar) {
    for (size_t s = 0; s < samples; ++s) {
      convert_run<T>(in + s * count * sizeof(T), count, dst + s * channel_stride);
    }
    return;
  }
  for (size_t p = 0; p < count; ++p) {
    for (size_t s = 0; s < samples; ++s) dst[s * channel_stride + p] = value(p * samples + s);
  }
}

// One plane's samples (or any run of them) of type T, in order.
template <typename T>
void ValueMapper::convert_run(const uint8_t* in, size_t count, float* dst) const {
  if (identity_) {
    const auto mask = static_cast<T>(mask_);
    for (size_t p = 0; p < count; ++p)
      dst[p] = static_cast<float>(load<T>(in + p * sizeof(T)) & mask);
    return;
  }
  if (!table_.empty()) {
    for (size_t p = 0; p < count; ++p) {
      dst[p] = table_[static_cast<uint64_t>(load<T>(in + p * sizeof(T))) & mask_];
    }
    return;
  }
  for (size_t p = 0; p < count; ++p) {
    const int64_t v = extend(static_cast<uint64_t>(load<T>(in + p * sizeof(T))));
    dst[p] = monochrome_ ? map_value(v) : static_cast<float>(v);
  }
}

void ValueMapper::convert_samples(const uint8_t* in, size_t count, float* dst) const {
  switch (pm_.bits_allocated) {
    case 8:
      convert_run<uint8_t>(in, count, dst);
      break;
    case 16:
      convert_run<uint16_t>(in, count, dst);
      break;
    case 32:
      convert_run<uint32_t>(in, count, dst);
      break;
    default:
      throw Error(MV_ERR_INTERNAL, "dicom: unexpected sample size");
  }
}

void ValueMapper::convert_bits(const FrameSamples& src, float* dst) const {
  // BitsAllocated 1 (segmentations): one sample, LSB first, frames packed back to back.
  const auto count = static_cast<uint64_t>(pm_.pixels_per_frame());
  for (uint64_t p = 0; p < count; ++p) {
    const uint64_t bit = src.bit_offset + p;
    const int v = (src.data[bit >> 3] >> (bit & 7)) & 1;
    dst[p] = table_.empty() ? map_value(v) : table_[static_cast<size_t>(v)];
  }
}

template <typename T>
void ValueMapper::convert_float(const FrameSamples& src, float* dst, size_t channel_stride) const {
  const auto count = static_cast<size_t>(pm_.pixels_per_frame());
  const auto samples = static_cast<size_t>(pm_.samples);
  const bool rescale = monochrome_ && lut_.rescale;
  for (size_t p = 0; p < count; ++p) {
    for (size_t s = 0; s < samples; ++s) {
      const size_t i = src.planar ? s * count + p : p * samples + s;
      const double v = static_cast<double>(load<T>(src.data + i * sizeof(T)));
      dst[s * channel_stride + p] =
          static_cast<float>(rescale ? v * lut_.slope + lut_.intercept : v);
    }
  }
}

void ValueMapper::expand_palette(float* dst, size_t channel_stride) const {
  const auto count = static_cast<size_t>(pm_.pixels_per_frame());
  const auto& r = palette_->rgb[0];
  const int64_t last = static_cast<int64_t>(r.size()) - 1;
  // The index plane is channel 0; read it before overwriting, so go channel 2, 1, then 0.
  for (size_t p = 0; p < count; ++p) {
    const auto v = static_cast<int64_t>(dst[p]);
    const int64_t i = v >= palette_->first_mapped ? std::min(v - palette_->first_mapped, last) : 0;
    const auto k = static_cast<size_t>(i);
    dst[2 * channel_stride + p] = palette_->rgb[2][k];
    dst[channel_stride + p] = palette_->rgb[1][k];
    dst[p] = palette_->rgb[0][k];
  }
}

void ybr_full_to_rgb(float* planes, size_t channel_stride, size_t count, int bits) {
  // The coefficients pydicom's convert_color_space uses, rounded to float32 the same way.
  const float g_cb = static_cast<float>(-0.114 * 1.772 / 0.587);
  const float g_cr = static_cast<float>(-0.299 * 1.402 / 0.587);
  const float r_cr = 1.402f, b_cb = 1.772f;
  const float offset = std::ldexp(1.0f, std::max(bits, 1) - 1);
  const float top = std::ldexp(1.0f, std::max(bits, 1)) - 1.0f;
  float* y = planes;
  float* cb = planes + channel_stride;
  float* cr = planes + 2 * channel_stride;
  for (size_t p = 0; p < count; ++p) {
    const float yy = y[p], b = cb[p] - offset, r = cr[p] - offset;
    const float rr = yy + r_cr * r;
    const float gg = yy + g_cb * b + g_cr * r;
    const float bb = yy + b_cb * b;
    y[p] = std::clamp(std::floor(rr + 0.5f), 0.0f, top);
    cb[p] = std::clamp(std::floor(gg + 0.5f), 0.0f, top);
    cr[p] = std::clamp(std::floor(bb + 0.5f), 0.0f, top);
  }
}

std::vector<uint16_t> expand_segmented_lut(const uint16_t* data, size_t count, size_t max_entries,
                                           const std::string& name) {
  std::vector<uint16_t> lut;
  auto bad = [&](const char* why) {
    return Error(MV_ERR_CORRUPT_DATA, name + ": segmented palette colour LUT " + why);
  };
  size_t i = 0;
  while (i + 1 < count) {
    const uint16_t opcode = data[i];
    const size_t length = data[i + 1];
    i += 2;
    if (lut.size() + length > max_entries) throw bad("expands past its descriptor");
    if (opcode == 0) {  // discrete segment
      if (i + length > count) throw bad("is truncated");
      lut.insert(lut.end(), data + i, data + i + length);
      i += length;
    } else if (opcode == 1) {  // linear segment from the previous value
      if (lut.empty() || i >= count) throw bad("starts with a linear segment");
      const double y0 = lut.back(), y1 = data[i++];
      const double step = (y1 - y0) / static_cast<double>(length);
      for (size_t k = 1; k <= length; ++k) {
        lut.push_back(static_cast<uint16_t>(std::nearbyint(y0 + step * static_cast<double>(k))));
      }
    } else {
      // Indirect segments (opcode 2) are not produced by any scanner we know of.
      throw bad("uses an unsupported segment type");
    }
  }
  return lut;
}

}  // namespace medvision::io::dicom
