#include "common/image.hpp"

#include <algorithm>
#include <array>
#include <new>

#include "common/error.hpp"

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

Image::Image(int64_t channels, int64_t depth, int64_t height, int64_t width, uint64_t max_values,
             const std::string& what) {
  if (channels <= 0 || depth <= 0 || height <= 0 || width <= 0) {
    throw Error(MV_ERR_CORRUPT_DATA, what + ": image has a zero or negative dimension (" +
                                         std::to_string(channels) + "x" + std::to_string(depth) +
                                         "x" + std::to_string(height) + "x" +
                                         std::to_string(width) + ")");
  }
  const uint64_t dims[4] = {static_cast<uint64_t>(channels), static_cast<uint64_t>(depth),
                            static_cast<uint64_t>(height), static_cast<uint64_t>(width)};
  const uint64_t n = checked_volume(dims, 4, max_values, what);
  try {
    pixels_.reset(new float[static_cast<size_t>(n)]);
  } catch (const std::bad_alloc&) {
    throw Error(MV_ERR_OUT_OF_MEMORY,
                what + ": cannot allocate " + std::to_string(n * 4) + " bytes for the pixels");
  }
  size_ = static_cast<size_t>(n);
  channels_ = channels;
  depth_ = depth;
  height_ = height;
  width_ = width;
}

void Image::set_meta(const std::string& key, const std::string& value) {
  if (is_allowed_meta_key(key)) meta[key] = value;
}

const std::string* Image::find_meta(const std::string& key) const {
  auto it = meta.find(key);
  return it == meta.end() ? nullptr : &it->second;
}

}  // namespace medvision
