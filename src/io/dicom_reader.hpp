#pragma once
// DICOM decoding internals shared by dicom_reader.cpp (single files) and dicom_series.cpp.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/geometry.hpp"
#include "common/image.hpp"
#include "io/dicom_pixels.hpp"
#include "io/io.hpp"

class DcmFileFormat;
class DcmItem;

namespace medvision::io::dicom {

// Where one frame sits in patient space (PS3.3 C.7.6.2).
struct Plane {
  bool has_position = false;
  bool has_orientation = false;
  std::array<double, 3> position{{0, 0, 0}};
  std::array<double, 6> orientation{{1, 0, 0, 0, 1, 0}};
};

// The header facts decoding and series assembly need. Never holds patient values.
struct Header {
  PixelModule pixels;
  std::string transfer_syntax;
  std::string series_uid;
  std::vector<Plane> planes;  // one per frame when known (functional groups), else one
  std::array<double, 2> pixel_spacing{{1.0, 1.0}};  // row, column (mm)
  bool has_spacing = false;
  std::string spacing_source;  // the attribute pixel_spacing came from; empty when none
  double slice_spacing = 0.0;  // SpacingBetweenSlices, else SliceThickness; 0 when unknown
  int64_t instance_number = 0;
};

// Parses a file (pixel data left on disk until needed) or a buffer. Throws medvision::Error.
std::unique_ptr<DcmFileFormat> parse_file(const std::string& path);
std::unique_ptr<DcmFileFormat> parse_memory(const uint8_t* data, size_t size,
                                            const std::string& name);

// Reads and validates the header. Throws MV_ERR_UNSUPPORTED_FORMAT when there is no image.
Header read_header(DcmFileFormat& file, const std::string& name);

// Decodes frames [first, first + count) into `out` at depth `depth_offset`.
void decode_frames(DcmFileFormat& file, const Header& header, int64_t first, int64_t count,
                   Image& out, int64_t depth_offset, const std::string& name);

// Fills format, photometric, stored dtype, window presets and allow-listed meta.
void describe(DcmFileFormat& file, const Header& header, Image& out, const std::string& name);

// Records where frames [first, first + count) came from (DicomSource per slice and the
// FrameOfReferenceUID); `path` is empty for an image decoded from memory.
void record_sources(DcmFileFormat& file, const std::string& path, int64_t first, int64_t count,
                    Image& out);

// Direction cosines (column = index axis) from ImageOrientationPatient and its normal.
geometry::Mat3 direction_from(const Plane& plane);

}  // namespace medvision::io::dicom
