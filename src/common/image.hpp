#pragma once
// medvision::Image: a decoded image or volume. Pixels are float32 in physical units, planar
// [channels][depth][height][width]. Geometry is DICOM patient space (LPS, mm).

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "medvision/medvision.h"

namespace medvision {

struct WindowPreset {
  double center = 0.0;
  double width = 1.0;
  mv_voi_function function = MV_VOI_LINEAR;
  std::string explanation;  // e.g. "LUNG"; never PHI
  // MV_VOI_TABLE only: the VOI LUT Sequence table. Input x maps to
  // table[clamp(x - first_mapped, 0, n-1)], and the output range is [0, 2^bits - 1].
  std::vector<float> table;
  double first_mapped = 0.0;
  int table_bits = 16;
};

// Where one slice (or frame) of an image came from, so that derived objects (DICOM SEG, Secondary
// Capture) can reference it. Holds UIDs and the path the caller gave, never patient values: the
// writers re-open `path` to copy the Patient and Study modules straight into their output.
struct DicomSource {
  std::string path;  // the file the slice was read from; empty when decoded from memory
  std::string sop_class_uid;
  std::string sop_instance_uid;
  int32_t frame = 0;  // 1-based frame number in a multi-frame instance; 0 for single-frame
};

struct Geometry {
  std::array<double, 3> spacing{{1.0, 1.0, 1.0}};                // column, row, slice (mm)
  std::array<double, 3> origin{{0.0, 0.0, 0.0}};                 // LPS (mm)
  std::array<double, 9> direction{{1, 0, 0, 0, 1, 0, 0, 0, 1}};  // row-major, column = axis
  // Where the in-plane spacing came from (mv_image_spacing_source()): "PixelSpacing",
  // "ImagerPixelSpacing" (at the detector), "NominalScannedPixelSpacing", "NIfTI", "PNG pHYs",
  // "caller" (mv_image_from_pixels() with a geometry), "user" (a load option); empty when the
  // source gives none and the spacing is a placeholder 1 mm: areas and volumes are then
  // reported in pixels/voxels, never in mm.
  std::string spacing_source;
};

class Image {
 public:
  Image() = default;
  // Allocates channels*depth*height*width floats after checking them against `max_values`.
  Image(int64_t channels, int64_t depth, int64_t height, int64_t width, uint64_t max_values,
        const std::string& what);

  int64_t channels() const { return channels_; }
  int64_t depth() const { return depth_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  size_t size() const { return size_; }
  size_t plane_size() const { return static_cast<size_t>(height_ * width_); }
  size_t channel_size() const { return static_cast<size_t>(depth_ * height_ * width_); }

  // Every value is written by whoever creates the image (decoders fill the buffer directly), so
  // the buffer is left uninitialised: zero-filling it cost as much as decoding an uncompressed
  // DICOM.
  float* data() { return pixels_.get(); }
  const float* data() const { return pixels_.get(); }

  Geometry geometry;
  mv_image_format format = MV_FORMAT_UNKNOWN;
  mv_photometric photometric = MV_PHOTOMETRIC_UNKNOWN;
  mv_dtype stored_dtype = MV_DTYPE_FLOAT32;
  int32_t bits_stored = 32;
  std::vector<WindowPreset> windows;
  // Only allow-listed, non-identifying keys (see kAllowedMetaKeys).
  std::map<std::string, std::string> meta;
  std::vector<std::string> warnings;
  // DICOM only: one record per slice in volume order (depth() entries), and the source's
  // FrameOfReferenceUID (empty when it has none). Empty for other formats.
  std::vector<DicomSource> dicom_sources;
  std::string frame_of_reference_uid;
  // DICOM Patient's Age (0010,1010) in years (months, weeks and days converted), NaN when absent
  // or malformed. Used only to check a model's intended population (manifest "population"); it
  // is not metadata: no API returns it and no message prints it (issue 16).
  double patient_age_years = std::numeric_limits<double>::quiet_NaN();

  // Sets a metadata value if `key` is allow-listed; silently ignores any other key.
  void set_meta(const std::string& key, const std::string& value);
  const std::string* find_meta(const std::string& key) const;

 private:
  int64_t channels_ = 0, depth_ = 0, height_ = 0, width_ = 0;
  std::unique_ptr<float[]> pixels_;
  size_t size_ = 0;
};

// Stacks images of the same grid (size and geometry within 1e-3 mm / 1e-4) into the channels of
// one image with the first image's geometry and metadata. Throws MV_ERR_SHAPE_MISMATCH naming
// the image that differs.
std::unique_ptr<Image> stack_channels(const std::vector<const Image*>& images);

// The keys mv_image_meta() may return. PHI (names, IDs, dates of birth) is never among them.
bool is_allowed_meta_key(const std::string& key);
// Allow-listed key `index` in a fixed order (static storage), or nullptr past the end.
const char* allowed_meta_key(size_t index);

// Default for mv_image_load_options.max_values.
constexpr uint64_t kDefaultMaxValues = uint64_t{1} << 30;

}  // namespace medvision
