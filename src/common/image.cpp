#include "common/image.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <new>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/utf8.hpp"

namespace medvision {
namespace {

constexpr std::array<const char*, 14> kAllowedMetaKeys = {{
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "Manufacturer",
    "ManufacturerModelName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "TransferSyntaxUID",
    "PhotometricInterpretation",
    "ImageLaterality",
    "SeriesDescription",
    "NumberOfFrames",
}};

}  // namespace

bool is_allowed_meta_key(const std::string& key) {
  return std::find(kAllowedMetaKeys.begin(), kAllowedMetaKeys.end(), key) != kAllowedMetaKeys.end();
}

const char* allowed_meta_key(size_t index) {
  return index < kAllowedMetaKeys.size() ? kAllowedMetaKeys[index] : nullptr;
}

Image::Image(int64_t channels, int64_t depth, int64_t height, int64_t width, uint64_t max_values,
             const std::string& what) {
  if (channels <= 0 || depth <= 0 || height <= 0 || width <= 0) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: image has a zero or negative dimension ({}x{}x{}x{})", what,
                            channels, depth, height, width));
  }
  const uint64_t dims[4] = {static_cast<uint64_t>(channels), static_cast<uint64_t>(depth),
                            static_cast<uint64_t>(height), static_cast<uint64_t>(width)};
  const uint64_t n = checked_volume(dims, 4, max_values, what);
  try {
    pixels_.reset(new float[static_cast<size_t>(n)]);
  } catch (const std::bad_alloc&) {
    throw Error(MV_ERR_OUT_OF_MEMORY,
                fmt::format("{}: cannot allocate {} bytes for the pixels", what, n * 4));
  }
  size_ = static_cast<size_t>(n);
  channels_ = channels;
  depth_ = depth;
  height_ = height;
  width_ = width;
}

void Image::set_meta(const std::string& key, const std::string& value) {
  // The readers convert by character set; this is the last guard that only UTF-8 leaves.
  if (is_allowed_meta_key(key)) meta[key] = to_valid_utf8(value);
}

const std::string* Image::find_meta(const std::string& key) const {
  auto it = meta.find(key);
  return it == meta.end() ? nullptr : &it->second;
}

std::unique_ptr<Image> stack_channels(const std::vector<const Image*>& images) {
  if (images.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "stack: no images");
  const Image& first = *images.front();
  int64_t channels = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const Image& im = *images[i];
    const std::string which = fmt::format("stack: image {}", i);
    if (im.depth() != first.depth() || im.height() != first.height() ||
        im.width() != first.width()) {
      throw Error(MV_ERR_SHAPE_MISMATCH,
                  fmt::format("{} is {}x{}x{} but image 0 is {}x{}x{} (depth x height x width)",
                              which, im.depth(), im.height(), im.width(), first.depth(),
                              first.height(), first.width()));
    }
    for (size_t a = 0; a < 3; ++a) {
      if (std::abs(im.geometry.spacing[a] - first.geometry.spacing[a]) > 1e-3 ||
          std::abs(im.geometry.origin[a] - first.geometry.origin[a]) > 1e-3) {
        throw Error(MV_ERR_SHAPE_MISMATCH, which +
                                               " has another spacing or origin than image 0 "
                                               "(resample it onto the same grid first)");
      }
    }
    for (size_t a = 0; a < 9; ++a) {
      if (std::abs(im.geometry.direction[a] - first.geometry.direction[a]) > 1e-4) {
        throw Error(MV_ERR_SHAPE_MISMATCH, which +
                                               " has another orientation than image 0 "
                                               "(resample it onto the same grid first)");
      }
    }
    channels += im.channels();
  }
  auto out = std::make_unique<Image>(channels, first.depth(), first.height(), first.width(),
                                     uint64_t{1} << 40, "stacked image");
  float* dst = out->data();
  for (const Image* im : images) dst = std::copy(im->data(), im->data() + im->size(), dst);
  out->geometry = first.geometry;
  out->format = first.format;
  out->photometric = first.photometric;
  out->stored_dtype = first.stored_dtype;
  out->bits_stored = first.bits_stored;
  out->meta = first.meta;
  out->patient_age_years = first.patient_age_years;
  for (const Image* im : images) {
    out->warnings.insert(out->warnings.end(), im->warnings.begin(), im->warnings.end());
  }
  return out;
}

}  // namespace medvision
