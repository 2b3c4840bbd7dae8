// NIfTI-1 and NIfTI-2 (.nii, .nii.gz, either byte order), decoded from memory.
//
// The header is parsed here and validated before anything is allocated. niftilib's header
// conversion (nifti_convert_n{1,2}hdr2nim) supplies the qform/sform matrices exactly as niftilib
// computes them; the voxels are converted here, with bounds checks, straight from the buffer.
// Which affine is used, the fall-back affine and the scaling rules follow nibabel 5
// (Nifti1Header.get_best_affine / get_slope_inter), so that results match what Python users see.

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nifti2_io.h>

#include "common/error.hpp"
#include "common/geometry.hpp"
#include "io/io.hpp"

namespace medvision::io {
namespace {

static_assert(sizeof(nifti_1_header) == 348, "niftilib's NIfTI-1 header must be 348 bytes");
static_assert(sizeof(nifti_2_header) == 540, "niftilib's NIfTI-2 header must be 540 bytes");

// A single-file (.nii) image's data never starts inside the header and its 4-byte extender.
constexpr int64_t kN1MinVoxOffset = 352;
constexpr int64_t kN2MinVoxOffset = 544;

// ------------------------------------------------------------------------------------------------
// gzip

// Streaming gunzip into a caller-sized buffer: the header is inflated first, so that the size of
// the whole image is known (and checked against the limits) before the buffer for it is allocated.
class Gunzip {
 public:
  Gunzip(const uint8_t* data, size_t size, const std::string& name) : name_(name) {
    zs_.next_in = const_cast<Bytef*>(data);  // zlib's API is not const-correct
    zs_.avail_in = 0;
    remaining_ = size;
    // 15 + 16: a gzip wrapper is required (load.cpp sends only data starting with 1f 8b here).
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) {
      throw Error(MV_ERR_OUT_OF_MEMORY, name_ + ": cannot initialise zlib");
    }
  }
  ~Gunzip() { inflateEnd(&zs_); }
  Gunzip(const Gunzip&) = delete;
  Gunzip& operator=(const Gunzip&) = delete;

  // Inflates up to `n` bytes into `dst`; returns how many were produced (fewer only at the end
  // of the compressed data).
  size_t read(uint8_t* dst, size_t n) {
    size_t produced = 0;
    while (produced < n && !finished_) {
      if (zs_.avail_in == 0 && remaining_ > 0) feed();
      const size_t want = std::min<size_t>(n - produced, kChunk);
      zs_.next_out = dst + produced;
      zs_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      produced += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        // Concatenated gzip members (as `cat a.gz b.gz` makes) are one stream to gzip(1).
        if (zs_.avail_in == 0 && remaining_ > 0) feed();
        if (zs_.avail_in >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b) {
          inflateReset(&zs_);
        } else {
          finished_ = true;  // trailing bytes after the last member are ignored, as gzip(1) does
        }
      } else if (rc == Z_BUF_ERROR) {
        if (zs_.avail_in == 0 && remaining_ == 0) {
          throw Error(MV_ERR_CORRUPT_DATA, name_ + ": gzip data is truncated");
        }
      } else if (rc == Z_MEM_ERROR) {
        throw Error(MV_ERR_OUT_OF_MEMORY, name_ + ": zlib ran out of memory");
      } else if (rc != Z_OK) {
        throw Error(MV_ERR_CORRUPT_DATA,
                    name_ + ": bad gzip data (" + (zs_.msg ? zs_.msg : "zlib error") + ")");
      }
    }
    return produced;
  }

 private:
  // zlib counts input in uInt: feed the buffer in slices so inputs over 4 GiB work too.
  void feed() {
    const size_t slice = std::min<size_t>(remaining_, kChunk);
    zs_.avail_in = static_cast<uInt>(slice);
    remaining_ -= slice;
  }
  static constexpr size_t kChunk = size_t{1} << 30;
  z_stream zs_{};
  size_t remaining_ = 0;
  bool finished_ = false;
  std::string name_;
};

// ------------------------------------------------------------------------------------------------
// Header

template <typename T>
T bswap_value(T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  std::reverse(b, b + sizeof(T));
  std::memcpy(&v, b, sizeof(T));
  return v;
}

// The fields this reader uses, in native byte order, from either header version.
struct Header {
  int version = 1;
  bool swap = false;
  std::array<int64_t, 8> dim{};
  std::array<double, 8> pixdim{};
  int datatype = 0;
  int64_t vox_offset = 0;
  double scl_slope = 0.0, scl_inter = 0.0;
  int qform_code = 0, sform_code = 0;
  std::string descrip;
  bool pair = false;  // "ni1"/"ni2": header of a .hdr/.img pair, whose voxels are elsewhere
};

int32_t get_i32(const uint8_t* p, bool swap) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return swap ? bswap_value(v) : v;
}

// Keeps printable ASCII of a fixed-size, possibly unterminated header string.
std::string sanitise(const char* s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && s[i] != '\0'; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  const auto last = out.find_last_not_of(' ');
  out.erase(last == std::string::npos ? 0 : last + 1);
  const auto first = out.find_first_not_of(' ');
  return first == std::string::npos ? std::string() : out.substr(first);
}

// The raw (file byte order) header, kept for niftilib, which byte-swaps it itself.
struct RawHeader {
  nifti_1_header n1{};
  nifti_2_header n2{};
};

Header parse_header(const uint8_t* d, size_t n, RawHeader& raw, const std::string& name) {
  Header h;
  if (n >= 348 && (get_i32(d, false) == 348 || get_i32(d, true) == 348)) {
    h.version = 1;
    h.swap = get_i32(d, false) != 348;
    std::memcpy(&raw.n1, d, sizeof raw.n1);
    nifti_1_header x = raw.n1;
    if (h.swap) swap_nifti_header(&x, 1);
    h.pair = std::memcmp(x.magic, "ni1", 4) == 0;
    for (int i = 0; i < 8; ++i) {
      h.dim[static_cast<size_t>(i)] = x.dim[i];
      h.pixdim[static_cast<size_t>(i)] = x.pixdim[i];
    }
    h.datatype = x.datatype;
    const double off = x.vox_offset;
    if (!std::isfinite(off) || off < 0 || off > 1e15) {
      throw Error(MV_ERR_CORRUPT_DATA, name + ": NIfTI vox_offset is invalid");
    }
    h.vox_offset = static_cast<int64_t>(off);  // nibabel: int(vox_offset)
    h.scl_slope = x.scl_slope;
    h.scl_inter = x.scl_inter;
    h.qform_code = x.qform_code;
    h.sform_code = x.sform_code;
    h.descrip = sanitise(x.descrip, sizeof x.descrip);
  } else if (n >= 540 && (get_i32(d, false) == 540 || get_i32(d, true) == 540)) {
    h.version = 2;
    h.swap = get_i32(d, false) != 540;
    std::memcpy(&raw.n2, d, sizeof raw.n2);
    nifti_2_header x = raw.n2;
    if (h.swap) swap_nifti_header(&x, 2);
    h.pair = std::memcmp(x.magic, "ni2", 4) == 0;
    for (int i = 0; i < 8; ++i) {
      h.dim[static_cast<size_t>(i)] = x.dim[i];
      h.pixdim[static_cast<size_t>(i)] = x.pixdim[i];
    }
    h.datatype = x.datatype;
    if (x.vox_offset < 0) throw Error(MV_ERR_CORRUPT_DATA, name + ": NIfTI vox_offset is invalid");
    h.vox_offset = x.vox_offset;
    h.scl_slope = x.scl_slope;
    h.scl_inter = x.scl_inter;
    h.qform_code = x.qform_code;
    h.sform_code = x.sform_code;
    h.descrip = sanitise(x.descrip, sizeof x.descrip);
  } else {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": NIfTI header is truncated or has a bad sizeof_hdr");
  }
  if (h.pair) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                name +
                    ": header of a NIfTI .hdr/.img pair; its voxels are in a separate .img file "
                    "(convert the pair to a single .nii)");
  }
  // nibabel fixes a single file's vox_offset that points into the header to the minimum.
  const int64_t min_offset = h.version == 1 ? kN1MinVoxOffset : kN2MinVoxOffset;
  h.vox_offset = std::max(h.vox_offset, min_offset);
  return h;
}

// Voxel types: bytes per stored component, components per voxel, and the stored dtype reported.
struct TypeInfo {
  size_t bytes = 0;
  int components = 1;
  mv_dtype dtype = MV_DTYPE_FLOAT32;
  const char* name = "";
};

TypeInfo type_info(int datatype, const std::string& name) {
  switch (datatype) {
    case NIFTI_TYPE_UINT8:
      return {1, 1, MV_DTYPE_UINT8, "uint8"};
    case NIFTI_TYPE_INT8:
      return {1, 1, MV_DTYPE_INT8, "int8"};
    case NIFTI_TYPE_INT16:
      return {2, 1, MV_DTYPE_INT16, "int16"};
    case NIFTI_TYPE_UINT16:
      return {2, 1, MV_DTYPE_UINT16, "uint16"};
    case NIFTI_TYPE_INT32:
      return {4, 1, MV_DTYPE_INT32, "int32"};
    case NIFTI_TYPE_UINT32:
      return {4, 1, MV_DTYPE_UINT32, "uint32"};
    // mv_dtype has no 64-bit integers; FLOAT64 is the stored type closest in range.
    case NIFTI_TYPE_INT64:
      return {8, 1, MV_DTYPE_FLOAT64, "int64"};
    case NIFTI_TYPE_UINT64:
      return {8, 1, MV_DTYPE_FLOAT64, "uint64"};
    case NIFTI_TYPE_FLOAT32:
      return {4, 1, MV_DTYPE_FLOAT32, "float32"};
    case NIFTI_TYPE_FLOAT64:
      return {8, 1, MV_DTYPE_FLOAT64, "float64"};
    case NIFTI_TYPE_RGB24:
      return {1, 3, MV_DTYPE_UINT8, "RGB24"};
    case NIFTI_TYPE_RGBA32:
      return {1, 4, MV_DTYPE_UINT8, "RGBA32"};
    default:
      break;
  }
  const char* known = nifti_datatype_string(datatype);  // static string, "UNKNOWN" if unknown
  throw Error(MV_ERR_UNSUPPORTED_FORMAT, fmt::format("{}: NIfTI datatype {} ({}) is not supported",
                                                     name, datatype, known ? known : "?"));
}

// ------------------------------------------------------------------------------------------------
// Voxels

template <typename T>
void convert(const uint8_t* src, size_t count, bool swap, float* dst, bool scale, double slope,
             double inter) {
  for (size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    if (swap) v = bswap_value(v);
    const double x = static_cast<double>(v);
    dst[i] = static_cast<float>(scale ? x * slope + inter : x);
  }
}

void convert_scalar(int datatype, const uint8_t* src, size_t count, bool swap, float* dst,
                    bool scale, double slope, double inter) {
  switch (datatype) {
    case NIFTI_TYPE_UINT8:
      convert<uint8_t>(src, count, false, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_INT8:
      convert<int8_t>(src, count, false, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_INT16:
      convert<int16_t>(src, count, swap, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_UINT16:
      convert<uint16_t>(src, count, swap, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_INT32:
      convert<int32_t>(src, count, swap, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_UINT32:
      convert<uint32_t>(src, count, swap, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_INT64:
      convert<int64_t>(src, count, swap, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_UINT64:
      convert<uint64_t>(src, count, swap, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_FLOAT32:
      convert<float>(src, count, swap, dst, scale, slope, inter);
      break;
    case NIFTI_TYPE_FLOAT64:
      convert<double>(src, count, swap, dst, scale, slope, inter);
      break;
    default:
      throw Error(MV_ERR_INTERNAL, "convert_scalar: unexpected datatype");
  }
}

// ------------------------------------------------------------------------------------------------
// Geometry

using geometry::Mat4;

Mat4 from_dmat(const nifti_dmat44& m) {
  return Eigen::Map<const Eigen::Matrix<double, 4, 4, Eigen::RowMajor>>(&m.m[0][0]);
}

// niftilib's debug level is process-wide and, at its default of 1, some paths print to stderr;
// a library must never print, so it is set to 0 once. Hosts that use niftilib themselves and want
// its messages lose them after the first NIfTI load through medvision.
void quiet_niftilib() {
  static std::once_flag once;
  std::call_once(once, [] { nifti_set_debug_level(0); });
}

// nibabel's Nifti1Header.get_best_affine(): sform if sform_code is a valid non-zero code, else
// qform if qform_code is, else AnalyzeHeader.get_base_affine() (x flipped, centred on the volume).
// Codes outside 0..5 count as 0, since nibabel's header check resets them.
Mat4 best_affine_ras(const Header& h, const RawHeader& raw, const std::string& name) {
  auto valid = [](int code) { return code > 0 && code <= 5; };
  if (valid(h.sform_code) || valid(h.qform_code)) {
    quiet_niftilib();
    std::unique_ptr<nifti_image, void (*)(nifti_image*)> nim(
        h.version == 1 ? nifti_convert_n1hdr2nim(raw.n1, nullptr)
                       : nifti_convert_n2hdr2nim(raw.n2, nullptr),
        &nifti_image_free);
    if (!nim) throw Error(MV_ERR_CORRUPT_DATA, name + ": niftilib rejected the NIfTI header");
    if (valid(h.sform_code)) return from_dmat(nim->sto_xyz);
    return from_dmat(nim->qto_xyz);
  }
  // nibabel's header check first sets pixdim[1..3] that are 0 to 1 and negative ones to abs.
  const int64_t ndim = h.dim[0];
  Mat4 a = Mat4::Zero();
  a(3, 3) = 1.0;
  for (size_t i = 0; i < 3; ++i) {
    double zoom = std::fabs(h.pixdim[i + 1]);
    if (zoom == 0.0 || !std::isfinite(zoom)) zoom = 1.0;
    double extent = static_cast<double>(h.dim[i + 1]);
    if (static_cast<int64_t>(i) + 1 > ndim) zoom = extent = 1.0;
    if (i == 0) zoom = -zoom;
    const auto d = static_cast<Eigen::Index>(i);
    a(d, d) = zoom;
    a(d, 3) = -(extent - 1.0) / 2.0 * zoom;
  }
  return a;
}

// RAS affine -> LPS spacing, direction (columns = index axes) and origin.
Geometry to_geometry(const Mat4& ras, std::vector<std::string>& warnings) {
  const Mat4 lps = geometry::lps_to_ras() * ras;  // the same diagonal flips RAS to LPS
  Geometry g;
  g.spacing_source = "NIfTI";
  geometry::Mat3 dir = geometry::Mat3::Identity();
  for (Eigen::Index c = 0; c < 3; ++c) {
    const geometry::Vec3 axis = lps.block<3, 1>(0, c);
    const double norm = axis.norm();
    if (!(norm > 0.0) || !std::isfinite(norm)) {
      // A degenerate affine column: keep the image usable with unit spacing along the axis.
      warnings.push_back(fmt::format(
          "NIfTI affine column {} is zero or not finite; using unit spacing along that axis", c));
      if (c < 2) g.spacing_source.clear();
      continue;
    }
    // "+ 0.0" turns the -0.0 that negating a zero gives into 0.0, for tidy printing.
    g.spacing[static_cast<size_t>(c)] = norm;
    dir.col(c) = (axis / norm).array() + 0.0;
  }
  geometry::set_direction(g, dir);
  g.origin = geometry::array(lps.block<3, 1>(0, 3).array() + 0.0);
  return g;
}

}  // namespace

// Over 120 lines on purpose: the header checks in the order of the NIfTI-1/2
// header fields, each before any allocation (the fuzzed limits); 128 lines.
// NOLINTNEXTLINE(readability-function-size)
std::unique_ptr<Image> read_nifti_memory(const uint8_t* data, size_t size,
                                         const LoadOptions& options, const std::string& name) {
  const bool gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  std::unique_ptr<Gunzip> gunzip;
  std::vector<uint8_t> inflated;
  const uint8_t* bytes = data;
  size_t available = size;
  if (gzipped) {
    gunzip = std::make_unique<Gunzip>(data, size, name);
    inflated.resize(kN2MinVoxOffset);
    inflated.resize(gunzip->read(inflated.data(), inflated.size()));
    bytes = inflated.data();
    available = inflated.size();
    const Format inner = sniff(bytes, available);
    if (inner != Format::kNifti1 && inner != Format::kNifti2) {
      throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                  name + ": gzip-compressed data that is not NIfTI (medvision reads .nii.gz only)");
    }
  }

  RawHeader raw;
  const Header h = parse_header(bytes, available, raw, name);

  // Dimensions: dims beyond dim[0] are ignored (as nibabel does); dims 4..7 fold into channels.
  const int64_t ndim = h.dim[0];
  if (ndim < 1 || ndim > 7) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: NIfTI dim[0] = {} is outside 1..7", name, ndim));
  }
  std::array<uint64_t, 8> dims{};
  for (size_t i = 1; i < 8; ++i) {
    const int64_t v = static_cast<int64_t>(i) <= ndim ? h.dim[i] : 1;
    if (v <= 0) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{}: NIfTI dim[{}] = {} is not positive", name, i, v));
    }
    dims[i] = static_cast<uint64_t>(v);
  }
  const TypeInfo type = type_info(h.datatype, name);
  const int out_components = std::min(type.components, 3);  // RGBA32: alpha is dropped
  // Every size is checked against max_values before any allocation; this also bounds the voxel
  // byte count, since a component is at most 8 bytes.
  const uint64_t all[8] = {dims[1], dims[2], dims[3], dims[4],
                           dims[5], dims[6], dims[7], static_cast<uint64_t>(type.components)};
  const uint64_t components = checked_volume(all, 8, options.max_values, name);
  const uint64_t nvox = components / static_cast<uint64_t>(type.components);
  const uint64_t data_bytes = components * type.bytes;
  const uint64_t offset = static_cast<uint64_t>(h.vox_offset);
  if (offset > std::numeric_limits<uint64_t>::max() - data_bytes) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": NIfTI vox_offset is invalid");
  }
  const uint64_t needed = offset + data_bytes;

  if (gzipped) {
    // The decompressed size must match the header; the buffer is sized from the (already
    // checked) header, so a gzip bomb cannot make us allocate more than the image needs.
    if (needed > std::numeric_limits<size_t>::max()) {
      throw Error(MV_ERR_OUT_OF_MEMORY, name + ": image does not fit in memory");
    }
    // vox_offset is not bounded by max_values: a header claiming an offset of 2^62 made this
    // buffer that size (found by fuzz_load_nifti, issue 19). Deflate expands at most 1032:1, so
    // more than that of `size` compressed bytes cannot be there; refuse before allocating.
    const uint64_t most = uint64_t{1032} * size + 65536;
    if (needed > most) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{}: NIfTI header needs {} bytes (vox_offset {} + voxel data), more "
                              "than {} bytes of gzip data can hold",
                              name, needed, offset, size));
    }
    const size_t have = inflated.size();
    if (needed > have) {
      try {
        inflated.resize(static_cast<size_t>(needed));
      } catch (const std::bad_alloc&) {
        throw Error(MV_ERR_OUT_OF_MEMORY,
                    fmt::format("{}: cannot allocate {} bytes", name, needed));
      }
      const size_t got = gunzip->read(inflated.data() + have, inflated.size() - have);
      inflated.resize(have + got);
    }
    bytes = inflated.data();
    available = inflated.size();
  }
  if (available < needed) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: NIfTI voxel data is truncated ({} bytes, header needs {})", name,
                            available, needed));
  }

  const int64_t channels =
      static_cast<int64_t>(dims[4] * dims[5] * dims[6] * dims[7]) * out_components;
  auto image = std::make_unique<Image>(channels, static_cast<int64_t>(dims[3]),
                                       static_cast<int64_t>(dims[2]), static_cast<int64_t>(dims[1]),
                                       options.max_values, name);
  const uint8_t* src = bytes + offset;
  float* dst = image->data();
  if (type.components == 1) {
    // nibabel: no scaling when the slope is 0 or not finite; a valid slope needs a finite
    // intercept.
    const bool scale = h.scl_slope != 0.0 && std::isfinite(h.scl_slope);
    if (scale && !std::isfinite(h.scl_inter)) {
      throw Error(MV_ERR_CORRUPT_DATA, name + ": NIfTI scl_slope is valid but scl_inter is not");
    }
    // NIfTI stores x fastest, then y, z, t, u, ...: exactly [c][k][j][i] with c = (t, u, v, w).
    convert_scalar(h.datatype, src, static_cast<size_t>(nvox), h.swap, dst, scale, h.scl_slope,
                   h.scl_inter);
    image->photometric = MV_PHOTOMETRIC_MONOCHROME2;
  } else {
    // RGB24/RGBA32 voxels are interleaved bytes; every 3-D volume becomes 3 planar channels.
    // Colour data is not scaled (NIfTI-1 spec: scl_slope applies to scalar types only).
    const size_t per_volume = static_cast<size_t>(dims[1] * dims[2] * dims[3]);
    const size_t volumes = static_cast<size_t>(nvox) / per_volume;
    const auto stride = static_cast<size_t>(type.components);
    for (size_t v = 0; v < volumes; ++v) {
      const uint8_t* s = src + v * per_volume * stride;
      for (size_t ch = 0; ch < 3; ++ch) {
        float* out = dst + (v * 3 + ch) * per_volume;
        for (size_t i = 0; i < per_volume; ++i) out[i] = s[i * stride + ch];
      }
    }
    image->photometric = MV_PHOTOMETRIC_RGB;
  }

  image->format = MV_FORMAT_NIFTI;
  image->stored_dtype = type.dtype;
  image->bits_stored = static_cast<int32_t>(type.bytes * 8);
  image->geometry = to_geometry(best_affine_ras(h, raw, name), image->warnings);
  if (!h.descrip.empty()) image->set_meta("SeriesDescription", h.descrip);
  return image;
}

}  // namespace medvision::io
