// C API of explanations (heat maps).

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "explain/cam.hpp"
#include "io/writers.hpp"

namespace {
constexpr size_t kExplainOptionsV1 = offsetof(mv_explain_options, label) + sizeof(int32_t);

mv_explain_options default_explain_options() {
  mv_explain_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.method = MV_CAM_GRADCAM;
  o.label = -1;
  o.progress = nullptr;
  o.progress_user = nullptr;
  return o;
}

// A blank image of the map's size, for rendering the coloured map alone.
medvision::Image blank_like(const medvision::explain::Heatmap& h) {
  medvision::Image im(1, h.depth, h.height, h.width, medvision::kDefaultMaxValues, "heat map");
  std::fill(im.data(), im.data() + im.size(), 0.0f);
  im.photometric = MV_PHOTOMETRIC_MONOCHROME2;
  return im;
}
}  // namespace

namespace {

// What a heat-map rendering carries below the picture: the model, the notice and the colour bar.
medvision::io::Annotation annotation(const mv_heatmap& h) {
  static const char* const kMethod[] = {"Grad-CAM", "Grad-CAM++", "CAM"};
  medvision::io::Annotation a;
  a.title = h.model_name + " " + h.model_version;
  a.colour_bar = std::string(kMethod[static_cast<int>(h.heatmap.method)]) + ": " + h.heatmap.label;
  return a;
}

}  // namespace

extern "C" {

mv_status mv_explain_options_init(mv_explain_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kExplainOptionsV1,
                                       default_explain_options(), "mv_explain_options_init");
  MV_CAPI_END
}

mv_status mv_explain(const mv_model* model, const mv_image* image, const mv_explain_options* opts,
                     mv_heatmap** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(model != nullptr, "mv_explain: model is NULL");
  MV_CHECK_ARG(image != nullptr, "mv_explain: image is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_explain: out is NULL");
  mv_explain_options o = default_explain_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kExplainOptionsV1,
          "mv_explain: mv_explain_options.struct_size is smaller than any known version");
      s != MV_OK)
    return s;
  medvision::explain::Options eo;
  switch (o.method) {
    case MV_CAM_GRADCAM:
      eo.method = medvision::explain::Method::kGradCam;
      break;
    case MV_CAM_GRADCAM_PLUS_PLUS:
      eo.method = medvision::explain::Method::kGradCamPlusPlus;
      break;
    case MV_CAM_CAM:
      eo.method = medvision::explain::Method::kCam;
      break;
    default:
      return medvision::capi::fail(MV_ERR_INVALID_ARGUMENT, "mv_explain: unknown method");
  }
  eo.label = o.label;
  if (o.progress != nullptr) {
    eo.progress = [fn = o.progress, user = o.progress_user](uint64_t done, uint64_t total) {
      return fn(done, total, user) != 0;
    };
  }
  auto h = medvision::explain::compute(*model->model, *image->image, eo);
  const auto& manifest = model->model->manifest();
  auto handle = std::make_unique<mv_heatmap>();
  handle->heatmap = std::move(h);
  handle->model_name = manifest.name;
  handle->model_version = manifest.version;
  handle->notice = manifest.notice;
  *out = handle.release();
  return MV_OK;
  MV_CAPI_END
}

void mv_heatmap_free(mv_heatmap* h) MV_NOEXCEPT { delete h; }

void mv_heatmap_shape(const mv_heatmap* h, int64_t out_shape[2]) MV_NOEXCEPT {
  if (out_shape == nullptr) return;
  out_shape[0] = h ? h->heatmap.height : 0;
  out_shape[1] = h ? h->heatmap.width : 0;
}
const float* mv_heatmap_data(const mv_heatmap* h) MV_NOEXCEPT {
  return h ? h->heatmap.map.data() : nullptr;
}
const char* mv_heatmap_label(const mv_heatmap* h) MV_NOEXCEPT {
  return h ? h->heatmap.label.c_str() : nullptr;
}
float mv_heatmap_probability(const mv_heatmap* h) MV_NOEXCEPT {
  return h ? h->heatmap.probability : 0.0f;
}

const mv_image* mv_heatmap_image(const mv_heatmap* h) MV_NOEXCEPT {
  if (h == nullptr) return nullptr;
  try {
    std::call_once(h->image_once, [h] {
      const auto& hm = h->heatmap;
      auto im = std::make_unique<medvision::Image>(1, hm.depth, hm.height, hm.width,
                                                   medvision::kDefaultMaxValues, "heat map");
      std::copy(hm.map.begin(), hm.map.end(), im->data());
      im->geometry = hm.geometry;
      im->format = MV_FORMAT_PIXELS;
      im->photometric = MV_PHOTOMETRIC_MONOCHROME2;
      im->set_meta("SeriesDescription",
                   h->model_name + " " + h->model_version + " heat map " + hm.label);
      h->image = std::make_unique<mv_image>(mv_image{std::move(im)});
    });
  } catch (...) {
    medvision::set_last_error("mv_heatmap_image: out of memory");
    return nullptr;
  }
  return h->image.get();
}

int64_t mv_heatmap_depth(const mv_heatmap* h) MV_NOEXCEPT { return h ? h->heatmap.depth : 0; }

int64_t mv_heatmap_slice(const mv_heatmap* h) MV_NOEXCEPT { return h ? h->heatmap.slice : 0; }

int64_t mv_heatmap_region_voxels(const mv_heatmap* h) MV_NOEXCEPT {
  return h ? h->heatmap.region_voxels : -1;
}

mv_status mv_heatmap_overlay(const mv_heatmap* h, const mv_image* image, float alpha, uint8_t* buf,
                             size_t cap, size_t* out_needed) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(h != nullptr && image != nullptr, "mv_heatmap_overlay: heatmap or image is NULL");
  MV_CHECK_ARG(out_needed != nullptr, "mv_heatmap_overlay: out_needed is NULL");
  MV_CHECK_ARG(alpha >= 0.0f && alpha <= 1.0f, "mv_heatmap_overlay: alpha must be in [0, 1]");
  const size_t needed = static_cast<size_t>(h->heatmap.height * h->heatmap.width * 3);
  if (buf != nullptr && cap >= needed) {
    const auto rgb = medvision::explain::overlay(*image->image, h->heatmap, alpha);
    std::memcpy(buf, rgb.data(), needed);
  }
  *out_needed = needed;
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_heatmap_write_png(const mv_heatmap* h, const mv_image* image, float alpha,
                               const char* path) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(h != nullptr, "mv_heatmap_write_png: heatmap is NULL");
  MV_CHECK_ARG(path != nullptr && *path != '\0', "mv_heatmap_write_png: path is NULL or empty");
  MV_CHECK_ARG(alpha >= 0.0f && alpha <= 1.0f, "mv_heatmap_write_png: alpha must be in [0, 1]");
  std::vector<uint8_t> rgb;
  if (image != nullptr) {
    rgb = medvision::explain::overlay(*image->image, h->heatmap, alpha);
  } else {
    rgb = medvision::explain::overlay(blank_like(h->heatmap), h->heatmap, 1.0f);
  }
  int64_t ah = 0, aw = 0;
  const auto annotated =
      medvision::io::annotate(rgb, h->heatmap.height, h->heatmap.width, annotation(*h), &ah, &aw);
  medvision::io::write_png_rgb(path, annotated, ah, aw);
  return MV_OK;
  MV_CAPI_END
}

mv_status mv_heatmap_write_dicom_sc(const mv_heatmap* h, const mv_image* source, float alpha,
                                    const char* path) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(h != nullptr, "mv_heatmap_write_dicom_sc: heatmap is NULL");
  MV_CHECK_ARG(source != nullptr, "mv_heatmap_write_dicom_sc: source is NULL");
  MV_CHECK_ARG(path != nullptr && *path != '\0',
               "mv_heatmap_write_dicom_sc: path is NULL or empty");
  MV_CHECK_ARG(alpha >= 0.0f && alpha <= 1.0f,
               "mv_heatmap_write_dicom_sc: alpha must be in [0, 1]");
  const auto rgb = medvision::explain::overlay(*source->image, h->heatmap, alpha);
  medvision::io::DerivedInfo info;
  info.model_name = h->model_name;
  info.model_version = h->model_version;
  info.notice = h->notice;
  // e.g. "cxr-pneumonia 1.0 Grad-CAM pneumonia": what a reader sees in the series list.
  static const char* const kMethod[] = {"Grad-CAM", "Grad-CAM++", "CAM"};
  info.series_description = h->model_name + " " + h->model_version + " " +
                            kMethod[static_cast<int>(h->heatmap.method)] + " " + h->heatmap.label;
  // The picture a PACS shows carries the model, the notice and the colour bar burned in (below
  // the rendering, which is unchanged); no patient value is ever drawn.
  int64_t ah = 0, aw = 0;
  const auto annotated =
      medvision::io::annotate(rgb, h->heatmap.height, h->heatmap.width, annotation(*h), &ah, &aw);
  medvision::io::write_dicom_secondary_capture(annotated.data(), ah, aw, *source->image, info, path,
                                               h->heatmap.slice);
  return MV_OK;
  MV_CAPI_END
}

}  // extern "C"
