// C API of the image module: decoding and accessors.

#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "capi/load_options.hpp"
#include "common/log.hpp"
#include "common/pixels.hpp"
#include "common/utf8.hpp"
#include "io/io.hpp"
#include "io/writers.hpp"

namespace {

using medvision::Image;
using medvision::capi::SpacingOverride;

// The size of version 0.1 of each options struct: smaller sizes are refused.
constexpr size_t kLoadOptionsV1 = offsetof(mv_image_load_options, series_uid) + sizeof(const char*);
constexpr size_t kGeometryV1 = offsetof(mv_image_geometry, photometric) + sizeof(uint32_t);

mv_image_load_options default_load_options() {
  mv_image_load_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.frame = -1;
  o.apply_voi = -1;
  o.max_values = 0;
  o.series_uid = nullptr;
  o.pixel_spacing[0] = o.pixel_spacing[1] = 0.0;
  return o;
}

medvision::io::LoadOptions to_internal(const mv_image_load_options& o) {
  medvision::io::LoadOptions r;
  r.frame = o.frame;
  r.apply_voi = o.apply_voi;
  r.max_values = o.max_values == 0 ? medvision::kDefaultMaxValues : o.max_values;
  if (o.series_uid != nullptr) r.series_uid = o.series_uid;
  return r;
}

}  // namespace

namespace medvision::capi {

mv_status resolve_options(const mv_image_load_options* in, io::LoadOptions* out,
                          SpacingOverride* spacing) {
  mv_image_load_options o = default_load_options();
  const mv_status s = medvision::capi::copy_options(
      in, &o, kLoadOptionsV1,
      "mv_image_load_options.struct_size is smaller than any known version");
  if (s != MV_OK) return s;
  if (o.frame < -1) {
    return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                 "mv_image_load_options.frame must be >= -1");
  }
  if (o.apply_voi < -1) {
    return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                 "mv_image_load_options.apply_voi must be >= -1");
  }
  const bool given = o.pixel_spacing[0] != 0.0 || o.pixel_spacing[1] != 0.0;
  if (given && !(o.pixel_spacing[0] > 0.0 && o.pixel_spacing[1] > 0.0 &&
                 std::isfinite(o.pixel_spacing[0]) && std::isfinite(o.pixel_spacing[1]))) {
    return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT,
                                 "mv_image_load_options.pixel_spacing must be two finite values "
                                 "> 0 (mm), or {0, 0} for the file's");
  }
  *spacing = given ? SpacingOverride{o.pixel_spacing[0], o.pixel_spacing[1]} : SpacingOverride{};
  *out = to_internal(o);
  return MV_OK;
}

}  // namespace medvision::capi

namespace {

using medvision::capi::resolve_options;

mv_image* wrap(std::unique_ptr<Image> image, const std::string& name,
               const SpacingOverride& spacing = {}) {
  spacing.apply(*image);
  // Warnings may quote file names and file bytes: they leave the library as UTF-8.
  for (auto& w : image->warnings) w = medvision::to_valid_utf8(w);
  medvision::log_warnings(name, image->warnings);
  auto* handle = new mv_image;
  handle->image = std::move(image);
  return handle;
}

}  // namespace

extern "C" {

mv_status mv_image_load_options_init(mv_image_load_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kLoadOptionsV1, default_load_options(),
                                       "mv_image_load_options_init");
  MV_CAPI_END
}

mv_status mv_image_load(const char* path, const mv_image_load_options* opts,
                        mv_image** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(path != nullptr, "mv_image_load: path is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_image_load: out is NULL");
  MV_CHECK_ARG(*path != '\0', "mv_image_load: path is empty");
  medvision::io::LoadOptions o;
  SpacingOverride sp;
  if (mv_status s = resolve_options(opts, &o, &sp); s != MV_OK) return s;
  auto image = medvision::io::load_file(path, o);
  *out = wrap(std::move(image), path, sp);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_image_load_memory(const void* data, size_t size, const mv_image_load_options* opts,
                               mv_image** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(data != nullptr || size == 0, "mv_image_load_memory: data is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_image_load_memory: out is NULL");
  medvision::io::LoadOptions o;
  SpacingOverride sp;
  if (mv_status s = resolve_options(opts, &o, &sp); s != MV_OK) return s;
  auto image = medvision::io::load_memory(static_cast<const uint8_t*>(data), size, o, "<memory>");
  *out = wrap(std::move(image), "<memory>", sp);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_image_load_series(const char* const* paths, size_t count,
                               const mv_image_load_options* opts, mv_image** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(paths != nullptr, "mv_image_load_series: paths is NULL");
  MV_CHECK_ARG(count > 0, "mv_image_load_series: count is 0");
  MV_CHECK_ARG(out != nullptr, "mv_image_load_series: out is NULL");
  std::vector<std::string> list;
  list.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (paths[i] == nullptr) {
      return medvision::capi::fail(
          MV_ERR_INVALID_ARGUMENT,
          ("mv_image_load_series: paths[" + std::to_string(i) + "] is NULL").c_str());
    }
    list.emplace_back(paths[i]);
  }
  medvision::io::LoadOptions o;
  SpacingOverride sp;
  if (mv_status s = resolve_options(opts, &o, &sp); s != MV_OK) return s;
  auto image = medvision::io::load_series(list, o);
  *out = wrap(std::move(image), list.front(), sp);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_image_geometry_init(mv_image_geometry* geom, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  mv_image_geometry d;
  std::memset(&d, 0, sizeof d);
  d.struct_size = sizeof d;
  d.spacing[0] = d.spacing[1] = d.spacing[2] = 1.0;
  d.direction[0] = d.direction[4] = d.direction[8] = 1.0;
  d.photometric = MV_PHOTOMETRIC_UNKNOWN;
  return medvision::capi::init_options(geom, struct_size, kGeometryV1, d, "mv_image_geometry_init");
  MV_CAPI_END
}

mv_status mv_image_from_pixels(const mv_tensor_view* pixels, const mv_image_geometry* geom,
                               mv_image** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(pixels != nullptr, "mv_image_from_pixels: pixels is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_image_from_pixels: out is NULL");
  if (pixels->struct_size < sizeof(mv_tensor_view)) {
    return medvision::capi::fail(MV_ERR_ABI_MISMATCH,
                                 "mv_image_from_pixels: mv_tensor_view.struct_size is too small");
  }
  MV_CHECK_ARG(pixels->data != nullptr, "mv_image_from_pixels: pixels->data is NULL");
  const auto dtype = static_cast<mv_dtype>(pixels->dtype);
  MV_CHECK_ARG(mv_dtype_size(dtype) != 0, "mv_image_from_pixels: unknown dtype");
  mv_image_geometry g;
  if (mv_status s = mv_image_geometry_init(&g, sizeof g); s != MV_OK) return s;
  if (mv_status s = medvision::capi::copy_options(
          geom, &g, kGeometryV1,
          "mv_image_from_pixels: mv_image_geometry.struct_size is too small");
      s != MV_OK)
    return s;
  auto image = medvision::image_from_pixels(*pixels, g, geom != nullptr, "mv_image_from_pixels");
  *out = wrap(std::move(image), "mv_image_from_pixels");
  return MV_OK;
  MV_CAPI_END
}

void mv_image_free(mv_image* image) MV_NOEXCEPT { delete image; }

void mv_image_shape(const mv_image* image, int64_t out_shape[4]) MV_NOEXCEPT {
  if (out_shape == nullptr) return;
  if (image == nullptr) {
    out_shape[0] = out_shape[1] = out_shape[2] = out_shape[3] = 0;
    return;
  }
  const Image& im = *image->image;
  out_shape[0] = im.channels();
  out_shape[1] = im.depth();
  out_shape[2] = im.height();
  out_shape[3] = im.width();
}

const float* mv_image_data(const mv_image* image) MV_NOEXCEPT {
  return image == nullptr ? nullptr : image->image->data();
}

mv_status mv_image_view(const mv_image* image, mv_tensor_view* out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(image != nullptr, "mv_image_view: image is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_image_view: out is NULL");
  if (out->struct_size < sizeof(mv_tensor_view)) {
    return medvision::capi::fail(MV_ERR_ABI_MISMATCH,
                                 "mv_image_view: out->struct_size must be set to "
                                 "sizeof(mv_tensor_view)");
  }
  const Image& im = *image->image;
  mv_tensor_view v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_FLOAT32;
  v.data = im.data();
  v.ndim = 4;
  v.shape[0] = im.channels();
  v.shape[1] = im.depth();
  v.shape[2] = im.height();
  v.shape[3] = im.width();
  v.strides[3] = 4;
  v.strides[2] = 4 * im.width();
  v.strides[1] = v.strides[2] * im.height();
  v.strides[0] = v.strides[1] * im.depth();
  *out = v;
  return MV_OK;
  MV_CAPI_END
}

void mv_image_spacing(const mv_image* image, double out_spacing[3]) MV_NOEXCEPT {
  if (out_spacing == nullptr) return;
  for (size_t i = 0; i < 3; ++i) out_spacing[i] = image ? image->image->geometry.spacing[i] : 0.0;
}

const char* mv_image_spacing_source(const mv_image* image) MV_NOEXCEPT {
  return image != nullptr ? image->image->geometry.spacing_source.c_str() : "";
}

void mv_image_origin(const mv_image* image, double out_origin[3]) MV_NOEXCEPT {
  if (out_origin == nullptr) return;
  for (size_t i = 0; i < 3; ++i) out_origin[i] = image ? image->image->geometry.origin[i] : 0.0;
}

void mv_image_direction(const mv_image* image, double out_direction[9]) MV_NOEXCEPT {
  if (out_direction == nullptr) return;
  for (size_t i = 0; i < 9; ++i)
    out_direction[i] = image ? image->image->geometry.direction[i] : 0.0;
}

mv_image_format mv_image_get_format(const mv_image* image) MV_NOEXCEPT {
  return image ? image->image->format : MV_FORMAT_UNKNOWN;
}

mv_photometric mv_image_photometric(const mv_image* image) MV_NOEXCEPT {
  return image ? image->image->photometric : MV_PHOTOMETRIC_UNKNOWN;
}

mv_dtype mv_image_stored_dtype(const mv_image* image) MV_NOEXCEPT {
  return image ? image->image->stored_dtype : MV_DTYPE_FLOAT32;
}

int32_t mv_image_bits_stored(const mv_image* image) MV_NOEXCEPT {
  return image ? image->image->bits_stored : 0;
}

size_t mv_image_window_count(const mv_image* image) MV_NOEXCEPT {
  return image ? image->image->windows.size() : 0;
}

mv_status mv_image_window(const mv_image* image, size_t index, double* out_center,
                          double* out_width, mv_voi_function* out_function) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(image != nullptr, "mv_image_window: image is NULL");
  MV_CHECK_ARG(out_center != nullptr && out_width != nullptr,
               "mv_image_window: out_center or out_width is NULL");
  const auto& windows = image->image->windows;
  if (index >= windows.size()) {
    return medvision::capi::fail(
        MV_ERR_INVALID_ARGUMENT,
        ("mv_image_window: index " + std::to_string(index) + " is out of range (the image has " +
         std::to_string(windows.size()) + " window presets)")
            .c_str());
  }
  *out_center = windows[index].center;
  *out_width = windows[index].width;
  if (out_function != nullptr) *out_function = windows[index].function;
  return MV_OK;
  MV_CAPI_END
}

const char* mv_image_meta(const mv_image* image, const char* key) MV_NOEXCEPT {
  if (image == nullptr || key == nullptr) return nullptr;
  try {
    const std::string* v = image->image->find_meta(key);
    return v ? v->c_str() : nullptr;
  } catch (...) {
    return nullptr;
  }
}

const char* mv_image_meta_key(size_t index) MV_NOEXCEPT {
  return medvision::allowed_meta_key(index);
}

mv_status mv_image_stack(const mv_image* const* images, size_t count, mv_image** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(images != nullptr, "mv_image_stack: images is NULL");
  MV_CHECK_ARG(count > 0, "mv_image_stack: count is 0");
  MV_CHECK_ARG(out != nullptr, "mv_image_stack: out is NULL");
  std::vector<const medvision::Image*> list;
  for (size_t i = 0; i < count; ++i) {
    MV_CHECK_ARG(images[i] != nullptr,
                 ("mv_image_stack: images[" + std::to_string(i) + "] is NULL").c_str());
    list.push_back(images[i]->image.get());
  }
  auto h = std::make_unique<mv_image>();
  h->image = medvision::stack_channels(list);
  *out = h.release();
  return MV_OK;
  MV_CAPI_END
}

size_t mv_image_warning_count(const mv_image* image) MV_NOEXCEPT {
  return image ? image->image->warnings.size() : 0;
}

const char* mv_image_warning(const mv_image* image, size_t index) MV_NOEXCEPT {
  if (image == nullptr || index >= image->image->warnings.size()) return nullptr;
  return image->image->warnings[index].c_str();
}

mv_status mv_image_write_nifti(const mv_image* image, const char* path) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(image != nullptr, "mv_image_write_nifti: image is NULL");
  MV_CHECK_ARG(path != nullptr && *path != '\0', "mv_image_write_nifti: path is NULL or empty");
  const Image& im = *image->image;
  medvision::io::write_nifti(im, path, medvision::io::smallest_exact_nifti_type(im));
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
