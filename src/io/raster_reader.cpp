// PNG, JPEG, TIFF and BMP through OpenCV's cv::imdecode.
//
// Before OpenCV sees the data, the container header is parsed here: it gives the image size (so
// that max_values is enforced before any pixel buffer exists), rejects malformed headers with a
// specific message, and finds the EXIF orientation. cv::imdecode runs with IMREAD_UNCHANGED so
// that 16-bit data keeps its depth and nothing is converted behind our back; that flag also makes
// OpenCV ignore EXIF orientation, which is therefore applied here (as PIL's
// ImageOps.exif_transpose does).

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/io.hpp"

namespace medvision::io {
namespace {

// What the container header says, before decoding.
struct RasterInfo {
  uint64_t width = 0, height = 0;
  bool grey = false;                  // the stored pixels have one colour component (alpha aside)
  int orientation = 1;                // EXIF / TIFF orientation, 1..8
  uint64_t pages = 1;                 // TIFF pages (only the first is decoded)
  double spacing_mm[2] = {0.0, 0.0};  // PNG pHYs in metres, when present
};

const char* format_name(Format f) {
  switch (f) {
    case Format::kPng:
      return "PNG";
    case Format::kJpeg:
      return "JPEG";
    case Format::kTiff:
      return "TIFF";
    case Format::kBmp:
      return "BMP";
    default:
      return "raster";
  }
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>((p[1] << 8) | p[0]); }

[[noreturn]] void malformed(const std::string& name, Format f, const std::string& what) {
  throw Error(MV_ERR_CORRUPT_DATA, name + ": malformed " + format_name(f) + " (" + what + ")");
}

// ---------------------------------------------------------------------------------------------
// TIFF structure: used for TIFF files and for the EXIF block of JPEG (APP1) and PNG (eXIf).

struct TiffFields {
  uint64_t width = 0, height = 0, samples = 1, pages = 0;
  int orientation = 1;
};

// Reads IFD0 (and counts the IFD chain) of a TIFF structure in [p, p + n). Returns false when the
// structure is malformed. Only the tags needed for the size check and orientation are read.
bool parse_tiff(const uint8_t* p, size_t n, TiffFields& out) {
  if (n < 8) return false;
  const bool le = p[0] == 'I' && p[1] == 'I';
  if (!le && !(p[0] == 'M' && p[1] == 'M')) return false;
  auto u16 = [&](size_t at) { return le ? le16(p + at) : be16(p + at); };
  auto u32 = [&](size_t at) { return le ? le32(p + at) : be32(p + at); };
  if (u16(2) != 42) return false;
  uint64_t ifd = u32(4);
  // A cycle in the IFD chain, or an absurd page count, stops the walk (libtiff also guards it).
  for (int page = 0; ifd != 0 && page < 65536; ++page) {
    if (ifd + 2 > n) return page > 0;  // a broken link after page 0 only loses later pages
    const uint64_t count = u16(static_cast<size_t>(ifd));
    if (ifd + 2 + count * 12 + 4 > n) return page > 0;
    if (page == 0) {
      for (uint64_t e = 0; e < count; ++e) {
        const size_t at = static_cast<size_t>(ifd + 2 + e * 12);
        const uint16_t tag = u16(at), type = u16(at + 2);
        // SHORT (3) values sit in the first two bytes of the value field, LONG (4) in four.
        const uint64_t value = type == 3 ? u16(at + 8) : type == 4 ? u32(at + 8) : 0;
        if (tag == 256) out.width = value;
        if (tag == 257) out.height = value;
        if (tag == 277) out.samples = value;
        if (tag == 274) out.orientation = static_cast<int>(value);
      }
    }
    ++out.pages;
    const uint64_t next = u32(static_cast<size_t>(ifd + 2 + count * 12));
    if (next <= ifd) break;  // links must move forward; this also rules out cycles
    ifd = next;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Container headers

RasterInfo png_info(const uint8_t* d, size_t n, const std::string& name) {
  const Format f = Format::kPng;
  if (n < 33 || be32(d + 8) != 13 || std::memcmp(d + 12, "IHDR", 4) != 0) {
    malformed(name, f, "no IHDR chunk");
  }
  RasterInfo info;
  info.width = be32(d + 16);
  info.height = be32(d + 20);
  const uint8_t depth = d[24], colour = d[25];
  if (info.width == 0 || info.height == 0 || info.width > 0x7fffffff || info.height > 0x7fffffff) {
    malformed(name, f, "bad width or height in IHDR");
  }
  if (!(colour == 0 || colour == 2 || colour == 3 || colour == 4 || colour == 6) ||
      !(depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) {
    malformed(name, f, "bad bit depth or colour type in IHDR");
  }
  info.grey = colour == 0 || colour == 4;
  // Ancillary chunks before the image data: pHYs (pixel size) and eXIf (orientation).
  size_t at = 8;
  bool has_idat = false;
  while (at + 12 <= n) {
    const uint64_t len = be32(d + at);
    if (at + 12 + len > n) malformed(name, f, "chunk runs past the end of the data");
    const uint8_t* type = d + at + 4;
    const uint8_t* body = d + at + 8;
    if (std::memcmp(type, "IDAT", 4) == 0) has_idat = true;
    if (std::memcmp(type, "IEND", 4) == 0) break;
    if (std::memcmp(type, "pHYs", 4) == 0 && len == 9 && body[8] == 1) {
      const uint32_t x = be32(body), y = be32(body + 4);  // pixels per metre
      if (x > 0 && y > 0) {
        info.spacing_mm[0] = 1000.0 / x;
        info.spacing_mm[1] = 1000.0 / y;
      }
    }
    if (std::memcmp(type, "eXIf", 4) == 0) {
      TiffFields t;
      if (parse_tiff(body, static_cast<size_t>(len), t)) info.orientation = t.orientation;
    }
    at += 12 + static_cast<size_t>(len);
  }
  if (!has_idat) malformed(name, f, "no IDAT chunk: the data is truncated");
  return info;
}

RasterInfo jpeg_info(const uint8_t* d, size_t n, const std::string& name) {
  const Format f = Format::kJpeg;
  RasterInfo info;
  bool have_sof = false;
  size_t at = 2;
  while (true) {
    while (at < n && d[at] != 0xff) ++at;  // tolerate junk between segments, as libjpeg does
    while (at < n && d[at] == 0xff) ++at;  // fill bytes
    if (at >= n) malformed(name, f, "no image data (SOS): the data is truncated");
    const uint8_t marker = d[at++];
    if (marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker == 0xd9) malformed(name, f, "end of image before any scan");
    if (at + 2 > n) malformed(name, f, "segment length runs past the end of the data");
    const size_t len = be16(d + at);
    if (len < 2 || at + len > n) malformed(name, f, "segment runs past the end of the data");
    const uint8_t* body = d + at + 2;
    const size_t body_len = len - 2;
    const bool sof =
        marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      if (body_len < 6) malformed(name, f, "short SOF segment");
      info.height = be16(body + 1);
      info.width = be16(body + 3);
      info.grey = body[5] == 1;
      if (info.width == 0) malformed(name, f, "zero width in SOF");
      if (info.height == 0) {
        throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                    name + ": JPEG whose height is defined by a DNL marker is not supported");
      }
      have_sof = true;
    } else if (marker == 0xe1 && body_len > 6 && std::memcmp(body, "Exif\0\0", 6) == 0) {
      TiffFields t;
      if (parse_tiff(body + 6, body_len - 6, t)) info.orientation = t.orientation;
    } else if (marker == 0xda) {
      if (!have_sof) malformed(name, f, "scan (SOS) before frame header (SOF)");
      // libjpeg fills a truncated scan with grey and only warns; refuse it instead. The
      // entropy-coded data never holds FF D9 except as the end-of-image marker.
      const uint8_t* p = d + at + len;
      const uint8_t* end = d + n;
      bool eoi = false;
      while (p < end && !eoi) {
        p = static_cast<const uint8_t*>(std::memchr(p, 0xff, static_cast<size_t>(end - p)));
        if (p == nullptr) break;
        eoi = p + 1 < end && p[1] == 0xd9;
        ++p;
      }
      if (!eoi) malformed(name, f, "no end-of-image marker: the data is truncated");
      return info;
    }
    at += len;
  }
}

RasterInfo tiff_info(const uint8_t* d, size_t n, const std::string& name) {
  TiffFields t;
  if (!parse_tiff(d, n, t) || t.pages == 0) malformed(name, Format::kTiff, "bad IFD structure");
  if (t.width == 0 || t.height == 0) malformed(name, Format::kTiff, "no image width or length");
  RasterInfo info;
  info.width = t.width;
  info.height = t.height;
  info.grey = t.samples <= 2;
  info.orientation = t.orientation;
  info.pages = t.pages;
  return info;
}

RasterInfo bmp_info(const uint8_t* d, size_t n, const std::string& name) {
  const Format f = Format::kBmp;
  if (n < 26) malformed(name, f, "header is truncated");
  const uint32_t offset = le32(d + 10), dib = le32(d + 14);
  RasterInfo info;
  int64_t w = 0, h = 0;
  uint16_t bits = 0;
  if (dib == 12) {  // BITMAPCOREHEADER (OS/2)
    w = le16(d + 18);
    h = le16(d + 20);
    bits = le16(d + 24);
  } else if (dib >= 40 && n >= 14 + 40) {
    w = static_cast<int32_t>(le32(d + 18));
    h = static_cast<int32_t>(le32(d + 22));  // negative: rows stored top-down
    bits = le16(d + 28);
  } else {
    malformed(name, f, fmt::format("unknown DIB header size {}", dib));
  }
  if (w <= 0 || h == 0) malformed(name, f, "bad width or height");
  if (offset >= n) malformed(name, f, "pixel data offset past the end of the data");
  info.width = static_cast<uint64_t>(w);
  info.height = static_cast<uint64_t>(h < 0 ? -h : h);
  // Palette images may still be grey; OpenCV tells by returning one channel.
  info.grey = bits == 1 || bits == 4 || bits == 8;
  if (info.width > 0x7fffffff || info.height > 0x7fffffff) malformed(name, f, "bad dimensions");
  return info;
}

// ---------------------------------------------------------------------------------------------

// EXIF orientation values (TIFF 6.0 tag 274; EXIF 2.3 section 4.6.4), undone the way PIL's
// ImageOps.exif_transpose does.
void apply_orientation(cv::Mat& m, int orientation) {
  cv::Mat r;
  switch (orientation) {
    case 2:
      cv::flip(m, r, 1);
      break;  // mirrored horizontally
    case 3:
      cv::rotate(m, r, cv::ROTATE_180);
      break;
    case 4:
      cv::flip(m, r, 0);
      break;  // mirrored vertically
    case 5:
      cv::transpose(m, r);
      break;  // transpose
    case 6:
      cv::rotate(m, r, cv::ROTATE_90_CLOCKWISE);
      break;
    case 7:
      cv::transpose(m, r);
      cv::flip(r, r, -1);
      break;  // transverse
    case 8:
      cv::rotate(m, r, cv::ROTATE_90_COUNTERCLOCKWISE);
      break;
    default:
      return;  // 1 or an invalid value: as stored
  }
  m = r;
}

mv_dtype stored_dtype(int depth) {
  switch (depth) {
    case CV_8U:
      return MV_DTYPE_UINT8;
    case CV_8S:
      return MV_DTYPE_INT8;
    case CV_16U:
      return MV_DTYPE_UINT16;
    case CV_16S:
      return MV_DTYPE_INT16;
    case CV_32S:
      return MV_DTYPE_INT32;
    case CV_64F:
      return MV_DTYPE_FLOAT64;
    default:
      return MV_DTYPE_FLOAT32;
  }
}

}  // namespace

std::unique_ptr<Image> read_raster_memory(const uint8_t* data, size_t size, Format format,
                                          const LoadOptions& options, const std::string& name) {
  RasterInfo info;
  switch (format) {
    case Format::kPng:
      info = png_info(data, size, name);
      break;
    case Format::kJpeg:
      info = jpeg_info(data, size, name);
      break;
    case Format::kTiff:
      info = tiff_info(data, size, name);
      break;
    case Format::kBmp:
      info = bmp_info(data, size, name);
      break;
    default:
      throw Error(MV_ERR_INTERNAL, name + ": read_raster_memory called for a non-raster");
  }
  // Size check before decoding: OpenCV would allocate the full image first.
  const uint64_t out_channels = info.grey ? 1 : 3;
  const uint64_t dims[3] = {info.width, info.height, out_channels};
  checked_volume(dims, 3, options.max_values, name);

  if (size > 0x7fffffff) {
    throw Error(MV_ERR_OUT_OF_MEMORY, name + ": encoded image larger than 2 GiB (OpenCV's limit)");
  }
  cv::Mat m;
  try {
    // imdecode only reads the buffer that this Mat wraps.
    const cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw Error(MV_ERR_CORRUPT_DATA,
                name + ": cannot decode " + format_name(format) + " (" + e.what() + ")");
  }
  if (m.empty()) {
    throw Error(MV_ERR_CORRUPT_DATA,
                name + ": cannot decode " + format_name(format) + " (corrupt or truncated)");
  }
  if (m.dims != 2 || m.channels() > 4) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                name + ": " + format_name(format) + " pixel layout is not supported");
  }
  apply_orientation(m, info.orientation);

  // OpenCV hands colour over as BGR(A); medvision's colour is planar RGB. Alpha is dropped, and
  // grey stored as grey (PNG colour type 0/4, which OpenCV may expand) stays one channel.
  std::vector<cv::Mat> planes;
  cv::split(m, planes);
  const bool grey = planes.size() <= 2 || (info.grey && format == Format::kPng);
  const int64_t channels = grey ? 1 : 3;
  auto image = std::make_unique<Image>(channels, 1, m.rows, m.cols, options.max_values, name);
  const int order[3] = {2, 1, 0};  // R, G, B from B, G, R
  for (int64_t c = 0; c < channels; ++c) {
    const cv::Mat& src = planes[static_cast<size_t>(grey ? 0 : order[c])];
    cv::Mat dst(m.rows, m.cols, CV_32FC1, image->data() + c * m.rows * m.cols);
    src.convertTo(dst, CV_32F);  // writes into the image: same size and type, no reallocation
  }

  static const mv_image_format kFormats[] = {MV_FORMAT_PNG, MV_FORMAT_JPEG, MV_FORMAT_TIFF,
                                             MV_FORMAT_BMP};
  image->format = kFormats[format == Format::kPng    ? 0
                           : format == Format::kJpeg ? 1
                           : format == Format::kTiff ? 2
                                                     : 3];
  image->photometric = grey ? MV_PHOTOMETRIC_MONOCHROME2 : MV_PHOTOMETRIC_RGB;
  image->stored_dtype = stored_dtype(m.depth());
  image->bits_stored = static_cast<int32_t>(m.elemSize1() * 8);
  if (info.spacing_mm[0] > 0.0) {
    // pHYs is along x (columns) and y (rows); a swapped orientation swaps them.
    const bool swapped = info.orientation >= 5 && info.orientation <= 8;
    image->geometry.spacing[0] = info.spacing_mm[swapped ? 1 : 0];
    image->geometry.spacing[1] = info.spacing_mm[swapped ? 0 : 1];
    image->geometry.spacing_source = "PNG pHYs";
  }
  if (info.pages > 1) {
    image->warnings.push_back(
        fmt::format("TIFF has {} pages; only the first was decoded", info.pages));
  }
  return image;
}

}  // namespace medvision::io
