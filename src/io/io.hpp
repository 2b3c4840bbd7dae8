#pragma once
// medvision::io: decoding of DICOM, NIfTI and raster images into medvision::Image.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/image.hpp"

namespace medvision::io {

struct LoadOptions {
  int32_t frame = -1;      // multi-frame DICOM: one frame, or -1 for all
  int32_t apply_voi = -1;  // -1: physical units; i >= 0: apply window preset i, map to [0, 1]
  uint64_t max_values = kDefaultMaxValues;
  std::string series_uid;  // series selection for folders holding several series
};

enum class Format { kUnknown, kDicom, kNifti1, kNifti2, kGzip, kPng, kJpeg, kTiff, kBmp };

// Identifies a format from the first bytes of a file (at least 352 bytes when available).
// kGzip means "gzip: look inside" (NIfTI .nii.gz).
Format sniff(const uint8_t* data, size_t size);

// `name` is what error messages call the input: the path, or "<memory>".
std::unique_ptr<Image> load_file(const std::string& path, const LoadOptions& options);
std::unique_ptr<Image> load_memory(const uint8_t* data, size_t size, const LoadOptions& options,
                                   const std::string& name);
std::unique_ptr<Image> load_series(const std::vector<std::string>& paths,
                                   const LoadOptions& options);

// Format readers (one translation unit each).
std::unique_ptr<Image> read_dicom_file(const std::string& path, const LoadOptions& options);
std::unique_ptr<Image> read_dicom_memory(const uint8_t* data, size_t size,
                                         const LoadOptions& options, const std::string& name);
std::unique_ptr<Image> read_nifti_memory(const uint8_t* data, size_t size,
                                         const LoadOptions& options, const std::string& name);
std::unique_ptr<Image> read_raster_memory(const uint8_t* data, size_t size, Format format,
                                          const LoadOptions& options, const std::string& name);

// One value through a window preset, in [0, 1] (DICOM PS3.3 C.11.2.1.2; C.11.2.1.3 for SIGMOID
// and LINEAR_EXACT; the VOI LUT table for MV_VOI_TABLE). Expects a validated preset.
double window_value(const WindowPreset& w, double x);

// Applies window preset `index` in place, mapping to [0, 1] (DICOM PS3.3 C.11.2.1.2).
void apply_window(Image& image, int32_t index, const std::string& name);

// Reads a whole file into memory; throws MV_ERR_IO naming the path.
std::vector<uint8_t> read_whole_file(const std::string& path, uint64_t max_bytes);

}  // namespace medvision::io
