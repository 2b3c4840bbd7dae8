// Reference label maps (label_map.hpp): a DICOM Segmentation (PS3.3 A.51, C.8.20) read onto the
// grid of the image it segments, so that evaluation, the DICOM node and PACS integrations can
// take the SEG objects that PACS and annotation tools hold. Frames are decoded by the DICOM reader
// (dicom_frames.cpp: 1-bit BINARY and 8-bit FRACTIONAL, native or compressed); this file maps
// segments to label values and frames to slices.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcsequen.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/geometry.hpp"
#include "io/dicom_dataset.hpp"
#include "io/dicom_reader.hpp"
#include "io/io.hpp"
#include "io/label_map.hpp"

namespace medvision::io {
namespace {

constexpr const char* kSegmentationStorage = "1.2.840.10008.5.1.4.1.1.66.4";

// "Left Lung", "left_lung" and "left-lung" are one label.
std::string normalised(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += (c == ' ' || c == '-') ? '_'
                                  : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

std::string joined(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& l : labels) out += (out.empty() ? "" : ", ") + l;
  return out;
}

// Segment number -> label-map value, from the Segment Sequence and the options.
std::map<long, int32_t> segment_values(DcmDataset& ds, const LabelMapOptions& o,
                                       const std::string& path) {
  DcmSequenceOfItems* seq = nullptr;
  if (ds.findAndGetSequence(DCM_SegmentSequence, seq).bad() || seq == nullptr || seq->card() == 0) {
    throw Error(MV_ERR_CORRUPT_DATA, path + ": (0062,0002) SegmentSequence is missing or empty");
  }
  std::map<long, int32_t> out;
  for (unsigned long i = 0; i < seq->card(); ++i) {
    DcmItem& item = *seq->getItem(i);
    const long number = dicom::get_long(item, DCM_SegmentNumber, -1);
    const std::string label = dicom::get_string(item, DCM_SegmentLabel);
    if (number < 1 || out.count(number) != 0) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{}: segment item {} has a missing or repeated (0062,0004) "
                              "SegmentNumber",
                              path, i + 1));
    }
    if (o.labels.empty()) {
      if (number > 65535) {
        throw Error(
            MV_ERR_INVALID_ARGUMENT,
            fmt::format("{}: segment number {} is too large for a label map", path, number));
      }
      out[number] = static_cast<int32_t>(number);
      continue;
    }
    // An exact match first; then the normalised one, which must not be ambiguous.
    long found = -1;
    for (size_t k = 0; k < o.labels.size() && found < 0; ++k) {
      if (o.labels[k] == label) found = static_cast<long>(k);
    }
    for (size_t k = 0; k < o.labels.size() && found < 0; ++k) {
      if (normalised(o.labels[k]) == normalised(label)) found = static_cast<long>(k);
    }
    if (found < 0) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  fmt::format("{}: segment {} '{}' is none of the expected labels ({})", path,
                              number, label, joined(o.labels)));
    }
    const auto k = static_cast<size_t>(found);
    out[number] = o.values.empty() ? static_cast<int32_t>(k + 1) : o.values[k];
  }
  return out;
}

// The item of functional group `seq` for frame `frame`: per-frame first, then shared.
DcmItem* group(DcmItem* shared, DcmItem* per_frame, const DcmTagKey& seq) {
  DcmItem* item = dicom::sub_item(per_frame, seq);
  return item != nullptr ? item : dicom::sub_item(shared, seq);
}

// The SOP instance and frame a SEG frame was derived from (Derivation Image Sequence > Source
// Image Sequence), or empty.
std::pair<std::string, long> source_of(DcmItem* per_frame, DcmItem* shared) {
  DcmItem* derivation = group(shared, per_frame, DCM_DerivationImageSequence);
  DcmItem* source = dicom::sub_item(derivation, DCM_SourceImageSequence);
  if (source == nullptr) return {};
  return {dicom::get_string(*source, DCM_ReferencedSOPInstanceUID),
          dicom::get_long(*source, DCM_ReferencedFrameNumber, 0)};
}

// The image's slice for the SOP instance (and frame) a SEG frame references; -1 when none.
int64_t slice_by_reference(const Image& image, const std::pair<std::string, long>& ref) {
  if (ref.first.empty()) return -1;
  const auto& s = image.dicom_sources;
  for (size_t k = 0; k < s.size() && static_cast<int64_t>(k) < image.depth(); ++k) {
    if (s[k].sop_instance_uid != ref.first) continue;
    // A single-frame source has frame 0; a reference to frame 1 of it is the same plane.
    if (s[k].frame == 0 || ref.second == 0 || s[k].frame == ref.second) {
      return static_cast<int64_t>(k);
    }
  }
  return -1;
}

// Checks the SEG's in-plane geometry against the image's.
void check_plane(const dicom::Header& h, const dicom::Plane& plane, const Image& image, long frame,
                 const std::string& path) {
  if (plane.has_orientation) {
    const auto& d = image.geometry.direction;
    const double image_dirs[6] = {d[0], d[3], d[6], d[1], d[4], d[7]};
    for (size_t i = 0; i < 6; ++i) {
      if (std::abs(plane.orientation[i] - image_dirs[i]) > 1e-3) {
        throw Error(MV_ERR_SHAPE_MISMATCH,
                    fmt::format("{}: frame {}: (0020,0037) ImageOrientationPatient differs from "
                                "the image's orientation",
                                path, frame));
      }
    }
  }
  if (h.has_spacing && !image.geometry.spacing_source.empty()) {
    const auto& sp = image.geometry.spacing;  // column, row
    if (std::abs(h.pixel_spacing[0] - sp[1]) > 1e-3 * sp[1] ||
        std::abs(h.pixel_spacing[1] - sp[0]) > 1e-3 * sp[0]) {
      throw Error(MV_ERR_SHAPE_MISMATCH,
                  fmt::format("{}: (0028,0030) PixelSpacing {:g}\\{:g} mm differs from the "
                              "image's {:g}\\{:g} mm",
                              path, h.pixel_spacing[0], h.pixel_spacing[1], sp[1], sp[0]));
    }
  }
}

// The slice at a frame's Image Position (Patient) in the image's index space; throws when the
// position is off the grid.
int64_t slice_by_position(const dicom::Plane& plane, const Image& image, long frame,
                          const std::string& path) {
  const Geometry& g = image.geometry;
  const geometry::Vec3 d = geometry::vec(plane.position) - geometry::vec(g.origin);
  const geometry::Mat3 dir = geometry::direction(g);
  const double col = d.dot(dir.col(0)) / g.spacing[0];
  const double row = d.dot(dir.col(1)) / g.spacing[1];
  const double k = d.dot(dir.col(2)) / g.spacing[2];
  const double nearest = std::round(k);
  // A tenth of a voxel: positions written as 16-character decimal strings round far less.
  if (std::abs(col) > 0.1 || std::abs(row) > 0.1 || std::abs(k - nearest) > 0.1 || nearest < 0 ||
      nearest >= static_cast<double>(image.depth())) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                fmt::format("{}: frame {}: (0020,0032) ImagePositionPatient lies at column "
                            "{:.2f}, row {:.2f}, slice {:.2f} of the image's grid, not on one of "
                            "its {} slices",
                            path, frame, col, row, k, image.depth()));
  }
  return static_cast<int64_t>(nearest);
}

// NOLINTNEXTLINE(readability-function-size): one pass over the IOD's parts, in order.
std::unique_ptr<Image> read_seg(DcmFileFormat& file, const std::string& path, const Image& image,
                                const LabelMapOptions& o) {
  DcmDataset& ds = *file.getDataset();
  const std::string type = dicom::get_string(ds, DCM_SegmentationType);
  if (type != "BINARY" && type != "FRACTIONAL") {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, path + ": (0062,0001) SegmentationType '" + type +
                                               "' is not supported (BINARY or FRACTIONAL)");
  }
  if (!(o.fractional_threshold > 0 && o.fractional_threshold <= 1)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": the fractional threshold must be in (0, 1]");
  }
  const auto values = segment_values(ds, o, path);
  const dicom::Header h = dicom::read_header(file, path);
  const dicom::PixelModule& pm = h.pixels;
  if (pm.samples != 1) throw Error(MV_ERR_CORRUPT_DATA, path + ": SEG frames must be monochrome");
  if (pm.rows != image.height() || pm.cols != image.width()) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                fmt::format("{}: frames of {}x{} pixels (columns x rows), the image is {}x{}", path,
                            pm.cols, pm.rows, image.width(), image.height()));
  }
  DcmItem* shared = dicom::sub_item(&ds, DCM_SharedFunctionalGroupsSequence);
  DcmSequenceOfItems* per_frame = nullptr;
  if (ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame).bad() ||
      per_frame == nullptr || static_cast<int64_t>(per_frame->card()) != pm.frames) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: (5200,9230) PerFrameFunctionalGroupsSequence has {} items for "
                            "{} frames (a frame is missing)",
                            path, per_frame != nullptr ? per_frame->card() : 0, pm.frames));
  }
  const std::string seg_for = dicom::get_string(ds, DCM_FrameOfReferenceUID);
  const std::string& image_for = image.frame_of_reference_uid;
  const bool same_for = !seg_for.empty() && seg_for == image_for;

  // Decoded frames: 0/1 (BINARY) or 0..MaximumFractionalValue (FRACTIONAL).
  Image frames(1, pm.frames, pm.rows, pm.cols, kDefaultMaxValues, path);
  dicom::decode_frames(file, h, 0, pm.frames, frames, 0, path);
  const double max_fraction =
      type == "FRACTIONAL"
          ? static_cast<double>(dicom::get_long(ds, DCM_MaximumFractionalValue, 255))
          : 1.0;
  if (!(max_fraction > 0)) {
    throw Error(MV_ERR_CORRUPT_DATA,
                path + ": (0062,000E) MaximumFractionalValue must be positive");
  }
  const float cut =
      type == "FRACTIONAL" ? static_cast<float>(o.fractional_threshold * max_fraction) : 0.5f;

  auto out = std::make_unique<Image>(1, image.depth(), image.height(), image.width(),
                                     kDefaultMaxValues, path);
  std::fill(out->data(), out->data() + out->size(), 0.0f);
  const size_t plane = out->plane_size();
  for (long f = 0; f < static_cast<long>(pm.frames); ++f) {
    DcmItem* item = per_frame->getItem(static_cast<unsigned long>(f));
    const long shown = f + 1;  // frame numbers in messages are DICOM's, 1-based
    DcmItem* ident = group(shared, item, DCM_SegmentIdentificationSequence);
    const long number = ident ? dicom::get_long(*ident, DCM_ReferencedSegmentNumber, -1) : -1;
    const auto v = values.find(number);
    if (v == values.end()) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  fmt::format("{}: frame {}: (0062,000B) ReferencedSegmentNumber {} names no "
                              "segment of the SegmentSequence",
                              path, shown, number));
    }
    const dicom::Plane& pl = h.planes.size() == static_cast<size_t>(pm.frames)
                                 ? h.planes[static_cast<size_t>(f)]
                                 : h.planes.front();
    int64_t slice = slice_by_reference(image, source_of(item, shared));
    if (slice >= 0) {
      check_plane(h, pl, image, shown, path);
      if (same_for && pl.has_position && image.depth() > 1 &&
          slice_by_position(pl, image, shown, path) != slice) {
        throw Error(MV_ERR_SHAPE_MISMATCH,
                    fmt::format("{}: frame {} references slice {} but its position is another's",
                                path, shown, slice));
      }
    } else if (image.depth() == 1 && image_for.empty()) {
      // A single 2D image without a frame of reference (PNG, CR, DX): every frame lies on it.
      slice = 0;
    } else if (pl.has_position) {
      if (!image_for.empty() && !seg_for.empty() && !same_for) {
        throw Error(MV_ERR_SHAPE_MISMATCH,
                    path + ": (0020,0052) FrameOfReferenceUID is not the image's, and frame " +
                        std::to_string(shown) + " references none of the image's instances");
      }
      check_plane(h, pl, image, shown, path);
      slice = slice_by_position(pl, image, shown, path);
    } else {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  fmt::format("{}: frame {} references none of the image's instances and has no "
                              "(0020,0032) ImagePositionPatient",
                              path, shown));
    }
    const float* src = frames.data() + static_cast<size_t>(f) * plane;
    float* dst = out->data() + static_cast<size_t>(slice) * plane;
    const auto value = static_cast<float>(v->second);
    for (size_t i = 0; i < plane; ++i) {
      if (!(src[i] >= cut)) continue;
      float& d = dst[i];
      if (d == 0.0f || d == value) {
        d = value;
      } else if (o.overlap == MV_LABEL_OVERLAP_LOWEST) {
        d = std::min(d, value);
      } else if (o.overlap == MV_LABEL_OVERLAP_HIGHEST) {
        d = std::max(d, value);
      } else {
        throw Error(MV_ERR_INVALID_ARGUMENT,
                    fmt::format("{}: frame {}: segment {} overlaps the segment of value {:g} at "
                                "column {}, row {} of slice {} (a label map holds one value per "
                                "pixel; choose a rule for overlaps)",
                                path, shown, number, static_cast<double>(d), i % pm.cols,
                                i / static_cast<size_t>(pm.cols), slice));
      }
    }
  }
  out->geometry = image.geometry;
  out->format = MV_FORMAT_DICOM;
  out->photometric = MV_PHOTOMETRIC_MONOCHROME2;
  out->stored_dtype = MV_DTYPE_UINT16;
  out->bits_stored = 16;
  out->frame_of_reference_uid = image.frame_of_reference_uid;
  out->set_meta("SOPClassUID", kSegmentationStorage);
  return out;
}

// The parsed file when `path` is a DICOM file of the Segmentation Storage SOP class (header
// only; pixel data stays on disk), else null.
std::unique_ptr<DcmFileFormat> parse_if_seg(const std::string& path) {
  uint8_t head[352] = {};
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(MV_ERR_IO, path + ": cannot open file");
  f.read(reinterpret_cast<char*>(head), sizeof head);
  if (sniff(head, static_cast<size_t>(f.gcount())) != Format::kDicom) return nullptr;
  auto file = dicom::parse_file(path);
  std::string sop = dicom::get_string(*file->getDataset(), DCM_SOPClassUID);
  if (sop.empty()) sop = dicom::get_string(*file->getMetaInfo(), DCM_MediaStorageSOPClassUID);
  return sop == kSegmentationStorage ? std::move(file) : nullptr;
}

}  // namespace

bool is_dicom_seg_file(const std::string& path) { return parse_if_seg(path) != nullptr; }

std::unique_ptr<Image> read_label_map(const std::string& path, const Image& image,
                                      const LabelMapOptions& options) {
  if (auto seg = parse_if_seg(path)) return read_seg(*seg, path, image, options);
  auto map = load_file(path, LoadOptions{});
  if (map->channels() != 1 || map->depth() != image.depth() || map->height() != image.height() ||
      map->width() != image.width()) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                fmt::format("{}: a label map of {} channel(s), {}x{}x{} (columns x rows x slices) "
                            "for an image of {}x{}x{}: one channel on the image's grid is needed",
                            path, map->channels(), map->width(), map->height(), map->depth(),
                            image.width(), image.height(), image.depth()));
  }
  return map;
}

}  // namespace medvision::io
