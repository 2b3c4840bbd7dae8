#include "common/pixels.hpp"

#include <cstdint>
#include <cstring>

#include "common/error.hpp"

namespace medvision {

namespace {

template <typename T>
double load_as_double(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // the buffer may be unaligned
  return static_cast<double>(v);
}

double read_element(const unsigned char* p, mv_dtype dtype) {
  switch (dtype) {
    case MV_DTYPE_FLOAT32:
      return load_as_double<float>(p);
    case MV_DTYPE_UINT8:
      return load_as_double<uint8_t>(p);
    case MV_DTYPE_INT8:
      return load_as_double<int8_t>(p);
    case MV_DTYPE_UINT16:
      return load_as_double<uint16_t>(p);
    case MV_DTYPE_INT16:
      return load_as_double<int16_t>(p);
    case MV_DTYPE_UINT32:
      return load_as_double<uint32_t>(p);
    case MV_DTYPE_INT32:
      return load_as_double<int32_t>(p);
    case MV_DTYPE_FLOAT64:
      return load_as_double<double>(p);
  }
  return 0.0;
}

int32_t bits_of(mv_dtype dtype) {
  switch (dtype) {
    case MV_DTYPE_UINT8:
    case MV_DTYPE_INT8:
      return 8;
    case MV_DTYPE_UINT16:
    case MV_DTYPE_INT16:
      return 16;
    case MV_DTYPE_FLOAT32:
    case MV_DTYPE_UINT32:
    case MV_DTYPE_INT32:
      return 32;
    case MV_DTYPE_FLOAT64:
      return 64;
  }
  return 0;
}

void require(bool ok, const std::string& what, const char* message) {
  if (!ok) throw Error(MV_ERR_INVALID_ARGUMENT, what + ": " + message);
}

// Maps the accepted layouts onto (c, d, h, w) extents and byte strides.
void extents_of(const mv_tensor_view& v, const std::string& what, int64_t ext[4], int64_t str[4]) {
  const int64_t* sh = v.shape;
  const int64_t* st = v.strides;
  if (v.ndim == 2) {
    ext[2] = sh[0];
    ext[3] = sh[1];
    str[2] = st[0];
    str[3] = st[1];
  } else if (v.ndim == 3) {
    require(sh[2] == 1 || sh[2] == 3 || sh[2] == 4, what,
            "a 3-D view must be [H, W, C] with C = 1, 3 or 4");
    ext[0] = sh[2];
    ext[2] = sh[0];
    ext[3] = sh[1];
    str[0] = st[2];
    str[2] = st[0];
    str[3] = st[1];
  } else if (v.ndim == 4) {
    for (int i = 0; i < 4; ++i) {
      ext[i] = sh[i];
      str[i] = st[i];
    }
  } else {
    require(false, what, "ndim must be 2 ([H, W]), 3 ([H, W, C]) or 4 ([C, D, H, W])");
  }
}

}  // namespace

std::unique_ptr<Image> image_from_pixels(const mv_tensor_view& pixels, const mv_image_geometry& g,
                                         bool caller_geometry, const std::string& what) {
  const auto dtype = static_cast<mv_dtype>(pixels.dtype);
  int64_t ext[4] = {1, 1, 1, 1};
  int64_t str[4] = {0, 0, 0, 0};
  extents_of(pixels, what, ext, str);
  for (int i = 0; i < 4; ++i) require(ext[i] > 0, what, "every dimension must be positive");
  for (int i = 0; i < 9; ++i)
    require(g.direction[i] == g.direction[i], what, "direction holds NaN");
  for (int i = 0; i < 3; ++i) require(g.spacing[i] > 0.0, what, "spacing must be positive");
  // Interleaved [H, W, C] pixels are a viewer's grey, RGB or RGBA; their alpha channel is dropped
  // (transparency carries no diagnostic information). Planar [C, D, H, W] views are channels of
  // any meaning (e.g. four MRI sequences) and are all kept.
  const bool interleaved = pixels.ndim == 3;
  const bool rgb = ext[0] == 3 || (interleaved && ext[0] == 4);
  const int64_t channels = interleaved && ext[0] == 4 ? 3 : ext[0];
  auto image = std::make_unique<Image>(channels, ext[1], ext[2], ext[3], kDefaultMaxValues, what);
  const auto* base = static_cast<const unsigned char*>(pixels.data);
  float* dst = image->data();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t d = 0; d < ext[1]; ++d)
      for (int64_t h = 0; h < ext[2]; ++h) {
        const unsigned char* row = base + c * str[0] + d * str[1] + h * str[2];
        for (int64_t w = 0; w < ext[3]; ++w)
          *dst++ = static_cast<float>(read_element(row + w * str[3], dtype));
      }
  for (size_t i = 0; i < 3; ++i) {
    image->geometry.spacing[i] = g.spacing[i];
    image->geometry.origin[i] = g.origin[i];
  }
  for (size_t i = 0; i < 9; ++i) image->geometry.direction[i] = g.direction[i];
  if (caller_geometry) image->geometry.spacing_source = "caller";
  image->format = MV_FORMAT_PIXELS;
  image->stored_dtype = dtype;
  image->bits_stored = bits_of(dtype);
  image->photometric = g.photometric != MV_PHOTOMETRIC_UNKNOWN
                           ? static_cast<mv_photometric>(g.photometric)
                           : (rgb             ? MV_PHOTOMETRIC_RGB
                              : channels == 1 ? MV_PHOTOMETRIC_MONOCHROME2
                                              : MV_PHOTOMETRIC_UNKNOWN);
  return image;
}

}  // namespace medvision
