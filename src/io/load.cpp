// Format detection and dispatch: the format comes from the content, never from the file name.

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/voi.hpp"
#include "io/io.hpp"

namespace medvision::io {
namespace {

bool starts_with(const uint8_t* d, size_t n, const char* magic, size_t m) {
  return n >= m && std::memcmp(d, magic, m) == 0;
}

int32_t read_i32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if (swap) v = __builtin_bswap32(v);
  int32_t r;
  std::memcpy(&r, &v, 4);
  return r;
}

// A DICOM file without preamble and meta header starts directly with a data element. Accept it
// when the first element is a plausible group 0x0002/0x0008 tag in explicit or implicit little
// endian (the same heuristic DCMTK's EXS_Unknown read mode relies on).
bool looks_like_headerless_dicom(const uint8_t* d, size_t n) {
  if (n < 8) return false;
  const uint16_t group = static_cast<uint16_t>(d[0] | (d[1] << 8));
  if (group != 0x0002 && group != 0x0008) return false;
  const bool explicit_vr = std::isupper(d[4]) && std::isupper(d[5]);
  if (explicit_vr) return true;
  // Implicit VR: a 32-bit length that fits the buffer.
  const uint32_t len = static_cast<uint32_t>(d[4] | (d[5] << 8) | (d[6] << 16)) |
                       (static_cast<uint32_t>(d[7]) << 24);
  return len < 0x10000;
}

}  // namespace

Format sniff(const uint8_t* d, size_t n) {
  if (n >= 132 && std::memcmp(d + 128, "DICM", 4) == 0) return Format::kDicom;
  if (starts_with(d, n, "\x89PNG\r\n\x1a\n", 8)) return Format::kPng;
  if (starts_with(d, n, "\xff\xd8\xff", 3)) return Format::kJpeg;
  if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return Format::kTiff;
  if (starts_with(d, n, "BM", 2) && n >= 26) return Format::kBmp;
  if (starts_with(d, n, "\x1f\x8b", 2)) return Format::kGzip;
  if (n >= 348) {
    // NIfTI-1: sizeof_hdr == 348 and magic "n+1\0" / "ni1\0" at 344; NIfTI-2: 540 and magic at 4.
    for (bool swap : {false, true}) {
      if (read_i32(d, swap) == 348 &&
          (std::memcmp(d + 344, "n+1\0", 4) == 0 || std::memcmp(d + 344, "ni1\0", 4) == 0))
        return Format::kNifti1;
      if (read_i32(d, swap) == 540 &&
          (std::memcmp(d + 4, "n+2\0", 4) == 0 || std::memcmp(d + 4, "ni2\0", 4) == 0))
        return Format::kNifti2;
    }
  }
  if (looks_like_headerless_dicom(d, n)) return Format::kDicom;
  return Format::kUnknown;
}

std::vector<uint8_t> read_whole_file(const std::string& path, uint64_t max_bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    throw Error(MV_ERR_IO, path + ": cannot open file (" + std::strerror(errno) + ")");
  }
  struct stat st {};
  if (fstat(fileno(f.get()), &st) != 0) {
    throw Error(MV_ERR_IO, path + ": cannot stat file (" + std::strerror(errno) + ")");
  }
  if (S_ISDIR(st.st_mode)) throw Error(MV_ERR_IO, path + ": is a folder, not a file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    throw Error(MV_ERR_OUT_OF_MEMORY,
                fmt::format("{}: file of {} bytes is larger than the limit", path, st.st_size));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  if (!bytes.empty() && std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    throw Error(MV_ERR_IO, path + ": read failed (" + std::strerror(errno) + ")");
  }
  return bytes;
}

std::unique_ptr<Image> load_memory(const uint8_t* data, size_t size, const LoadOptions& options,
                                   const std::string& name) {
  if (size == 0) throw Error(MV_ERR_CORRUPT_DATA, name + ": empty input");
  std::unique_ptr<Image> image;
  switch (sniff(data, size)) {
    case Format::kDicom:
      image = read_dicom_memory(data, size, options, name);
      break;
    case Format::kNifti1:
    case Format::kNifti2:
    case Format::kGzip:
      image = read_nifti_memory(data, size, options, name);
      break;
    case Format::kPng:
    case Format::kJpeg:
    case Format::kTiff:
    case Format::kBmp:
      image = read_raster_memory(data, size, sniff(data, size), options, name);
      break;
    case Format::kUnknown:
      throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                  name + ": not a format medvision reads (DICOM, NIfTI-1/2, PNG, JPEG, TIFF, BMP)");
  }
  if (options.apply_voi >= 0) apply_window(*image, options.apply_voi, name);
  return image;
}

std::unique_ptr<Image> load_file(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw Error(MV_ERR_IO, path + ": no such file or folder");
  }
  if (std::filesystem::is_directory(status)) {
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
      if (entry.is_regular_file(ec)) files.push_back(entry.path().string());
    }
    if (ec) throw Error(MV_ERR_IO, path + ": cannot list folder (" + ec.message() + ")");
    if (files.empty()) throw Error(MV_ERR_IO, path + ": folder holds no files");
    std::sort(files.begin(), files.end());
    return load_series(files, options);
  }
  // Sniff from the first bytes; DICOM is read by DCMTK straight from the file so that large
  // multi-frame files are not copied twice.
  uint8_t head[544] = {0};
  size_t got = 0;
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw Error(MV_ERR_IO, path + ": cannot open file (" + std::strerror(errno) + ")");
    got = std::fread(head, 1, sizeof head, f.get());
  }
  if (got == 0) throw Error(MV_ERR_CORRUPT_DATA, path + ": file is empty");
  if (sniff(head, got) == Format::kDicom) {
    auto image = read_dicom_file(path, options);
    if (options.apply_voi >= 0) apply_window(*image, options.apply_voi, path);
    return image;
  }
  // 4 GiB of encoded data is far beyond any single image we accept.
  const auto bytes = read_whole_file(path, uint64_t{4} << 30);
  return load_memory(bytes.data(), bytes.size(), options, path);
}

void apply_window(Image& image, int32_t index, const std::string& name) {
  if (index < 0 || static_cast<size_t>(index) >= image.windows.size()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                fmt::format("{}: window preset {} requested, but the image has {}", name, index,
                            image.windows.size()));
  }
  const WindowPreset& w = image.windows[static_cast<size_t>(index)];
  if (w.function == MV_VOI_TABLE && w.table.empty()) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": VOI LUT table is empty");
  }
  if (w.function != MV_VOI_TABLE && w.function != MV_VOI_LINEAR_EXACT && !(w.width > 0.0)) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": window width must be positive");
  }
  voi::apply(w, image.data(), image.data(), image.size());
}

}  // namespace medvision::io
