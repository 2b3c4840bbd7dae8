// Series assembly: single-frame DICOM files of one series, sorted along the slice normal, become
// one volume. Headers are read first; pixels are decoded straight into the output volume.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/dicom_reader.hpp"
#include "io/io.hpp"

namespace medvision::io {
namespace {

struct Slice {
  std::string path;
  std::unique_ptr<DcmFileFormat> file;
  dicom::Header header;
  double position = 0.0;  // ImagePositionPatient projected on the slice normal
};

bool is_dicom(const std::string& path) {
  uint8_t head[544] = {0};
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return false;
  const size_t got = std::fread(head, 1, sizeof head, f.get());
  return sniff(head, got) == Format::kDicom;
}

// Reads every header; files that are not DICOM images are skipped with a warning.
std::vector<Slice> read_headers(const std::vector<std::string>& paths,
                                std::vector<std::string>& warnings) {
  std::vector<Slice> slices;
  for (const auto& path : paths) {
    if (!is_dicom(path)) {
      warnings.push_back(path + ": skipped, not a DICOM file");
      continue;
    }
    Slice s;
    s.path = path;
    try {
      s.file = dicom::parse_file(path);
      s.header = dicom::read_header(*s.file, path);
    } catch (const Error& e) {
      if (e.status() == MV_ERR_IO) throw;
      warnings.push_back(std::string(e.what()) + "; skipped");
      continue;
    }
    slices.push_back(std::move(s));
  }
  return slices;
}

std::vector<Slice> pick_series(std::vector<Slice> slices, const LoadOptions& options,
                               const std::string& name) {
  std::map<std::string, size_t> counts;
  for (const auto& s : slices) ++counts[s.header.series_uid];
  if (!options.series_uid.empty()) {
    slices.erase(
        std::remove_if(slices.begin(), slices.end(),
                       [&](const Slice& s) { return s.header.series_uid != options.series_uid; }),
        slices.end());
    if (slices.empty()) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  name + ": no image of series " + options.series_uid + " found");
    }
  } else if (counts.size() > 1) {
    // Series UIDs are not patient-identifying; listing them lets the caller choose one.
    std::string list;
    for (const auto& [uid, n] : counts) {
      list +=
          fmt::format("{}{} ({} files)", list.empty() ? "" : ", ", uid.empty() ? "<none>" : uid, n);
    }
    throw Error(MV_ERR_INVALID_ARGUMENT,
                fmt::format("{}: {} series found, pick one with series_uid: {}", name,
                            counts.size(), list));
  }
  return slices;
}

void check_consistent(const std::vector<Slice>& slices) {
  const dicom::Header& a = slices.front().header;
  for (const auto& s : slices) {
    const dicom::Header& b = s.header;
    if (b.pixels.frames != 1) {
      throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                  s.path + ": multi-frame file inside a series of several files");
    }
    if (b.pixels.rows != a.pixels.rows || b.pixels.cols != a.pixels.cols ||
        b.pixels.channels() != a.pixels.channels()) {
      throw Error(MV_ERR_SHAPE_MISMATCH,
                  fmt::format("{}: {}x{} slice in a series of {}x{} ({})", s.path, b.pixels.cols,
                              b.pixels.rows, a.pixels.cols, a.pixels.rows, slices.front().path));
    }
    for (size_t i = 0; i < 6; ++i) {
      if (std::abs(b.planes[0].orientation[i] - a.planes[0].orientation[i]) > 1e-4) {
        throw Error(MV_ERR_SHAPE_MISMATCH, s.path +
                                               ": (0020,0037) ImageOrientationPatient differs "
                                               "from " +
                                               slices.front().path);
      }
    }
  }
}

// Sorts along the normal and returns the slice spacing, warning about uneven steps and gaps.
double sort_slices(std::vector<Slice>& slices, const geometry::Vec3& normal,
                   std::vector<std::string>& warnings, const std::string& name) {
  const bool positions = std::all_of(
      slices.begin(), slices.end(), [](const Slice& s) { return s.header.planes[0].has_position; });
  if (!positions) {
    warnings.push_back(name +
                       ": slices lack (0020,0032) ImagePositionPatient; sorted by "
                       "InstanceNumber");
    std::stable_sort(slices.begin(), slices.end(), [](const Slice& x, const Slice& y) {
      return x.header.instance_number < y.header.instance_number;
    });
    return slices.front().header.slice_spacing > 0 ? slices.front().header.slice_spacing : 1.0;
  }
  for (auto& s : slices) s.position = geometry::vec(s.header.planes[0].position).dot(normal);
  std::stable_sort(slices.begin(), slices.end(),
                   [](const Slice& x, const Slice& y) { return x.position < y.position; });
  if (slices.size() < 2)
    return slices.front().header.slice_spacing > 0 ? slices.front().header.slice_spacing : 1.0;
  std::vector<double> steps;
  for (size_t i = 1; i < slices.size(); ++i)
    steps.push_back(slices[i].position - slices[i - 1].position);
  std::vector<double> sorted = steps;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2),
                   sorted.end());
  const double median = sorted[sorted.size() / 2];
  const auto [lo, hi] = std::minmax_element(steps.begin(), steps.end());
  if (*lo < 1e-4) {
    warnings.push_back(name + ": two slices share a position");
  }
  if (*hi > median * 1.5 + 1e-3) {
    // {:f} as std::to_string wrote them (six decimals).
    warnings.push_back(
        fmt::format("{}: gap in the series: a step of {:f} mm where the usual spacing is {:f} mm",
                    name, *hi, median));
  } else if (*hi - *lo > std::max(1e-3, 0.01 * median)) {
    warnings.push_back(
        fmt::format("{}: uneven slice spacing, from {:f} to {:f} mm", name, *lo, *hi));
  }
  return median > 1e-4 ? median : 1.0;
}

}  // namespace

std::unique_ptr<Image> load_series(const std::vector<std::string>& paths,
                                   const LoadOptions& options) {
  if (paths.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "load_series: no files given");
  const std::string name = paths.size() == 1
                               ? paths.front()
                               : fmt::format("{} (+{} files)", paths.front(), paths.size() - 1);
  std::vector<std::string> warnings;
  std::vector<Slice> slices = read_headers(paths, warnings);
  if (slices.empty()) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": no DICOM image among the files");
  }
  slices = pick_series(std::move(slices), options, name);
  if (slices.size() == 1) {  // one (possibly multi-frame) file: the single-file path
    auto image = read_dicom_file(slices.front().path, options);
    image->warnings.insert(image->warnings.begin(), warnings.begin(), warnings.end());
    return image;
  }
  check_consistent(slices);
  const geometry::Mat3 dir = dicom::direction_from(slices.front().header.planes[0]);
  const double spacing = sort_slices(slices, dir.col(2), warnings, name);
  const dicom::Header& first = slices.front().header;
  auto image =
      std::make_unique<Image>(first.pixels.channels(), static_cast<int64_t>(slices.size()),
                              first.pixels.rows, first.pixels.cols, options.max_values, name);
  std::vector<DicomSource> sources;
  for (size_t k = 0; k < slices.size(); ++k) {
    Slice& s = slices[k];
    dicom::decode_frames(*s.file, s.header, 0, 1, *image, static_cast<int64_t>(k), s.path);
    dicom::record_sources(*s.file, s.path, 0, 1, *image);
    sources.push_back(image->dicom_sources.front());
    if (k > 0) s.file.reset();  // release decoded pixels as we go
  }
  dicom::describe(*slices.front().file, first, *image, slices.front().path);
  image->meta.erase("SOPInstanceUID");  // one per slice: not a property of the volume
  dicom::record_sources(*slices.front().file, slices.front().path, 0, 1, *image);
  image->dicom_sources = std::move(sources);  // in sorted (volume) order
  Geometry& g = image->geometry;
  g.spacing = {first.pixel_spacing[1], first.pixel_spacing[0], spacing};
  g.spacing_source = first.spacing_source;
  g.origin = first.planes[0].position;
  geometry::set_direction(g, dir);
  image->warnings = std::move(warnings);
  return image;
}

}  // namespace medvision::io
