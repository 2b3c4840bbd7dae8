/**
 * @file medvision.hpp
 * @defgroup medvision_cpp medvision C++ wrapper
 * @brief Header-only C++17 RAII wrapper over the stable C ABI (medvision.h).
 *
 * Everything here is inline and calls only the C functions, so a C++ program depends on the C
 * ABI alone. Failures throw medvision::Exception, which carries the ::mv_status and the message
 * of mv_last_error().
 * @{
 */
#ifndef MEDVISION_HPP
#define MEDVISION_HPP

#include <array>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "medvision/medvision.h"

namespace medvision {

/** The exception the wrapper throws: the status of the failed call and its message. */
class Exception : public std::runtime_error {
 public:
  Exception(mv_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  mv_status status() const noexcept { return status_; }
  const char* status_name() const noexcept { return mv_status_name(status_); }

 private:
  mv_status status_;
};

/** Throws medvision::Exception for any status other than MV_OK. */
inline void check(mv_status status) {
  if (status != MV_OK) throw Exception(status, mv_last_error());
}

/** The linked library's version string (may differ from MV_VERSION_STRING of the headers). */
inline std::string version() { return mv_version_string(); }

/**
 * Options for Image::load(): the C struct filled by mv_image_load_options_init() (the library's
 * defaults, never restated here) with a chainable setter and a getter per field, as
 * CalibrateOptions. The series UID is copied and owned here.
 */
class LoadOptions {
 public:
  LoadOptions() { check(mv_image_load_options_default(&c_)); }
  /** Multi-frame DICOM: the frame to decode; -1 all frames as depth. */
  LoadOptions& set_frame(int32_t v) {
    c_.frame = v;
    return *this;
  }
  /** -1 physical units; i >= 0 applies window preset i and maps to [0, 1]. */
  LoadOptions& set_apply_voi(int32_t v) {
    c_.apply_voi = v;
    return *this;
  }
  /** Refuse images with more values than this; 0 the library's limit. */
  LoadOptions& set_max_values(uint64_t v) {
    c_.max_values = v;
    return *this;
  }
  /** Keep only this SeriesInstanceUID of a folder ("" for the folder's only series). */
  LoadOptions& set_series_uid(std::string v) {
    series_uid_ = std::move(v);
    return *this;
  }
  /** {column, row} mm supplied by the user; {0, 0}: the file's (see mv_image_load_options). */
  LoadOptions& set_pixel_spacing(double column, double row) {
    c_.pixel_spacing[0] = column;
    c_.pixel_spacing[1] = row;
    return *this;
  }

  int32_t frame() const noexcept { return c_.frame; }
  int32_t apply_voi() const noexcept { return c_.apply_voi; }
  uint64_t max_values() const noexcept { return c_.max_values; }
  const std::string& series_uid() const noexcept { return series_uid_; }
  std::array<double, 2> pixel_spacing() const noexcept {
    return {{c_.pixel_spacing[0], c_.pixel_spacing[1]}};
  }

  /** The C struct, its strings pointing into this object (valid while it lives unchanged). */
  const mv_image_load_options* c() const noexcept {
    c_.series_uid = series_uid_.empty() ? nullptr : series_uid_.c_str();
    return &c_;
  }

 private:
  mutable mv_image_load_options c_;
  std::string series_uid_;
};

/**
 * Geometry for Image::from_pixels(): the C struct filled by mv_image_geometry_init() (identity),
 * with chainable setters and getters.
 */
class ImageGeometry {
 public:
  ImageGeometry() { check(mv_image_geometry_init(&c_, sizeof c_)); }
  /** Column, row, slice spacing in mm. */
  ImageGeometry& set_spacing(const std::array<double, 3>& v) {
    for (size_t i = 0; i < 3; ++i) c_.spacing[i] = v[i];
    return *this;
  }
  /** LPS position of the first voxel's centre in mm. */
  ImageGeometry& set_origin(const std::array<double, 3>& v) {
    for (size_t i = 0; i < 3; ++i) c_.origin[i] = v[i];
    return *this;
  }
  /** Row-major 3x3; column c is the LPS direction of index axis c. */
  ImageGeometry& set_direction(const std::array<double, 9>& v) {
    for (size_t i = 0; i < 9; ++i) c_.direction[i] = v[i];
    return *this;
  }
  ImageGeometry& set_photometric(mv_photometric v) {
    c_.photometric = static_cast<uint32_t>(v);
    return *this;
  }

  std::array<double, 3> spacing() const noexcept {
    return {{c_.spacing[0], c_.spacing[1], c_.spacing[2]}};
  }
  std::array<double, 3> origin() const noexcept {
    return {{c_.origin[0], c_.origin[1], c_.origin[2]}};
  }
  std::array<double, 9> direction() const noexcept {
    std::array<double, 9> v{};
    for (size_t i = 0; i < 9; ++i) v[i] = c_.direction[i];
    return v;
  }
  mv_photometric photometric() const noexcept {
    return static_cast<mv_photometric>(c_.photometric);
  }

  /** The C struct. */
  const mv_image_geometry* c() const noexcept { return &c_; }

 private:
  mv_image_geometry c_;
};

/** A window preset (VOI) in physical units. */
struct Window {
  double center = 0.0;
  double width = 0.0;
  mv_voi_function function = MV_VOI_LINEAR;
};

/** A decoded image or volume (owning; movable, not copyable). */
namespace detail {
/** Deleter of Image handles: owning (frees) or borrowed (does nothing). */
struct ImageFree {
  bool owned = true;
  void operator()(mv_image* p) const noexcept {
    if (owned) mv_image_free(p);
  }
};
}  // namespace detail

class Image {
 public:
  Image() = default;
  /** Takes ownership of a C handle. */
  explicit Image(mv_image* handle) noexcept : handle_(handle) {}

  /** A non-owning Image over a handle that something else owns (e.g. Result::mask()); valid
   *  only while that owner lives. */
  static Image borrow(const mv_image* handle) noexcept {
    Image im;
    im.handle_ = std::unique_ptr<mv_image, detail::ImageFree>(const_cast<mv_image*>(handle),
                                                              detail::ImageFree{false});
    return im;
  }

  /** Stacks images on the same grid into the channels of one image (see mv_image_stack()). */
  static Image stack(const std::vector<const Image*>& images) {
    std::vector<const mv_image*> handles;
    handles.reserve(images.size());
    for (const Image* im : images) handles.push_back(im ? im->get() : nullptr);
    mv_image* h = nullptr;
    check(mv_image_stack(handles.data(), handles.size(), &h));
    return Image(h);
  }

  /** Decodes a file, or a folder holding one DICOM series. */
  static Image load(const std::string& path, const LoadOptions& options = {}) {
    mv_image* h = nullptr;
    check(mv_image_load(path.c_str(), options.c(), &h));
    return Image(h);
  }

  /** Decodes an encoded image held in memory. */
  static Image load_memory(const void* data, size_t size, const LoadOptions& options = {}) {
    mv_image* h = nullptr;
    check(mv_image_load_memory(data, size, options.c(), &h));
    return Image(h);
  }

  /** Reads DICOM files as one series volume. */
  static Image load_series(const std::vector<std::string>& paths, const LoadOptions& options = {}) {
    std::vector<const char*> c_paths;
    c_paths.reserve(paths.size());
    for (const auto& p : paths) c_paths.push_back(p.c_str());
    mv_image* h = nullptr;
    check(mv_image_load_series(c_paths.data(), c_paths.size(), options.c(), &h));
    return Image(h);
  }

  /** Copies a caller's pixels (see mv_image_from_pixels()). */
  static Image from_pixels(const mv_tensor_view& pixels,
                           const mv_image_geometry* geometry = nullptr) {
    mv_image* h = nullptr;
    check(mv_image_from_pixels(&pixels, geometry, &h));
    return Image(h);
  }
  static Image from_pixels(const mv_tensor_view& pixels, const ImageGeometry& geometry) {
    return from_pixels(pixels, geometry.c());
  }

  explicit operator bool() const noexcept { return handle_ != nullptr; }
  mv_image* get() const noexcept { return handle_.get(); }
  /** Gives up ownership; the caller must mv_image_free() the result. */
  mv_image* release() noexcept { return handle_.release(); }

  /** {channels, depth, height, width}. */
  std::array<int64_t, 4> shape() const {
    std::array<int64_t, 4> s{};
    mv_image_shape(get(), s.data());
    return s;
  }
  int64_t channels() const { return shape()[0]; }
  int64_t depth() const { return shape()[1]; }
  int64_t height() const { return shape()[2]; }
  int64_t width() const { return shape()[3]; }
  size_t size() const {
    const auto s = shape();
    return static_cast<size_t>(s[0] * s[1] * s[2] * s[3]);
  }
  /** Planar float32 pixels in physical units; borrowed from this image. */
  const float* data() const noexcept { return mv_image_data(get()); }

  std::array<double, 3> spacing() const {
    std::array<double, 3> v{};
    mv_image_spacing(get(), v.data());
    return v;
  }
  /** Where the in-plane spacing came from; "" when unknown (mv_image_spacing_source()). */
  std::string spacing_source() const { return mv_image_spacing_source(get()); }
  std::array<double, 3> origin() const {
    std::array<double, 3> v{};
    mv_image_origin(get(), v.data());
    return v;
  }
  std::array<double, 9> direction() const {
    std::array<double, 9> v{};
    mv_image_direction(get(), v.data());
    return v;
  }
  mv_image_format format() const noexcept { return mv_image_get_format(get()); }
  mv_photometric photometric() const noexcept { return mv_image_photometric(get()); }
  mv_dtype stored_dtype() const noexcept { return mv_image_stored_dtype(get()); }
  int32_t bits_stored() const noexcept { return mv_image_bits_stored(get()); }

  std::vector<Window> windows() const {
    std::vector<Window> out(mv_image_window_count(get()));
    for (size_t i = 0; i < out.size(); ++i) {
      check(mv_image_window(get(), i, &out[i].center, &out[i].width, &out[i].function));
    }
    return out;
  }

  /** Non-identifying metadata by DICOM keyword (see mv_image_meta()). */
  std::optional<std::string> meta(const std::string& key) const {
    const char* v = mv_image_meta(get(), key.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }

  std::vector<std::string> warnings() const {
    std::vector<std::string> out;
    const size_t n = mv_image_warning_count(get());
    for (size_t i = 0; i < n; ++i) out.emplace_back(mv_image_warning(get(), i));
    return out;
  }

  /** Writes the image as NIfTI-1 (.nii or .nii.gz; see mv_image_write_nifti()). */
  void write_nifti(const std::string& path) const {
    check(mv_image_write_nifti(get(), path.c_str()));
  }

 private:
  std::unique_ptr<mv_image, detail::ImageFree> handle_;
};

/**
 * Options for Model::load(): the C struct filled by mv_model_options_init() with a chainable
 * setter and a getter per field, as CalibrateOptions. The device string is copied and owned here.
 */
class ModelOptions {
 public:
  ModelOptions() {
    check(mv_model_options_default(&c_));
    if (c_.device != nullptr) device_ = c_.device;
  }
  /** "auto", "cpu", "cuda" or "cuda:N"; "" the library's default (NULL in C). */
  ModelOptions& set_device(std::string v) {
    device_ = std::move(v);
    return *this;
  }
  /** Intra-op CPU threads: N > 0, 0 every CPU this process may use, -1 LibTorch's pool. */
  ModelOptions& set_num_threads(int32_t v) {
    c_.num_threads = v;
    return *this;
  }
  ModelOptions& set_precision(mv_precision v) {
    c_.precision = v;
    return *this;
  }
  /** Run one warm-up batch at load. */
  ModelOptions& set_warmup(bool v) {
    c_.warmup = v ? 1 : 0;
    return *this;
  }
  /** Freeze the TorchScript module for inference. */
  ModelOptions& set_optimize(bool v) {
    c_.optimize = v ? 1 : 0;
    return *this;
  }

  /** "" when the library's default (NULL in C) is kept. */
  const std::string& device() const noexcept { return device_; }
  int32_t num_threads() const noexcept { return c_.num_threads; }
  mv_precision precision() const noexcept { return static_cast<mv_precision>(c_.precision); }
  bool warmup() const noexcept { return c_.warmup != 0; }
  bool optimize() const noexcept { return c_.optimize != 0; }

  /** The C struct, its strings pointing into this object (valid while it lives unchanged). */
  const mv_model_options* c() const noexcept {
    c_.device = device_.empty() ? nullptr : device_.c_str();
    return &c_;
  }

 private:
  mutable mv_model_options c_;
  std::string device_;
};

/**
 * Options for Result::write_dicom_sr(): the C struct filled by mv_dicom_sr_options_init() with a
 * chainable setter and a getter per field. The path is copied and owned here.
 */
class DicomSrOptions {
 public:
  DicomSrOptions() {
    check(mv_dicom_sr_options_default(&c_));
    if (c_.seg_path != nullptr) seg_path_ = c_.seg_path;
  }
  /** The DICOM SEG written for the same result, whose segments the region groups reference
   *  ("" for none). */
  DicomSrOptions& set_seg_path(std::string v) {
    seg_path_ = std::move(v);
    return *this;
  }
  const std::string& seg_path() const noexcept { return seg_path_; }

  /** The C struct, its strings pointing into this object (valid while it lives unchanged). */
  const mv_dicom_sr_options* c() const noexcept {
    c_.seg_path = seg_path_.empty() ? nullptr : seg_path_.c_str();
    return &c_;
  }

 private:
  mutable mv_dicom_sr_options c_;
  std::string seg_path_;
};

/** One label's scores in a classification result. */
struct LabelScore {
  std::string label;
  float logit = 0.0f;
  float probability = 0.0f;
  float calibrated = 0.0f;  ///< NaN when the package carries no calibration
  int32_t decision = -1;    ///< 1 / 0 at the operating point, -1 when none is set
  bool refer = false;
  /** Conformal set (mv_result_conformal()): ::mv_conformal_set bits, -1 without conformal
   *  calibration. */
  int32_t conformal = -1;
};

/** The result of running a model on one image (owning; movable). */
class Result {
 public:
  Result() = default;
  explicit Result(mv_result* handle) noexcept : handle_(handle) {}
  mv_result* get() const noexcept { return handle_.get(); }
  explicit operator bool() const noexcept { return handle_ != nullptr; }

  size_t label_count() const noexcept { return mv_result_label_count(get()); }
  LabelScore score(size_t i) const {
    LabelScore s;
    const char* label = mv_result_label(get(), i);
    if (label == nullptr) throw Exception(MV_ERR_INVALID_ARGUMENT, "label index out of range");
    s.label = label;
    s.logit = mv_result_logit(get(), i);
    s.probability = mv_result_probability(get(), i);
    s.calibrated = mv_result_calibrated(get(), i);
    s.decision = mv_result_decision(get(), i);
    s.refer = mv_result_refer(get(), i) != 0;
    s.conformal = mv_result_conformal(get(), i);
    return s;
  }
  /** Miscoverage level of the conformal sets, NaN when the package has none. */
  double conformal_alpha() const noexcept { return mv_result_conformal_alpha(get()); }
  /** Scores, most probable first. */
  std::vector<LabelScore> ranked() const {
    std::vector<LabelScore> out;
    for (size_t r = 0; r < label_count(); ++r) out.push_back(score(mv_result_ranked(get(), r)));
    return out;
  }
  std::string model_name() const { return mv_result_model_name(get()); }
  std::string model_version() const { return mv_result_model_version(get()); }
  std::string notice() const { return mv_result_notice(get()); }
  std::vector<std::string> warnings() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < mv_result_warning_count(get()); ++i)
      out.emplace_back(mv_result_warning(get(), i));
    return out;
  }
  /** The whole result as a JSON object. */
  std::string json() const { return mv_result_json(get()); }

  /** MV_TASK_SEGMENTATION for results of segmentation models. */
  mv_task task() const noexcept { return mv_result_task(get()); }
  /** Segmentation: the label map on the input grid (one channel of class values). Borrowed:
   *  valid while this Result lives; an empty Image for classification results. */
  Image mask() const noexcept { return Image::borrow(mv_result_mask(get())); }
  /** Segmentation: per-class probability maps when they were asked for, else an empty Image.
   *  Borrowed, like mask(). */
  Image probability_map() const noexcept { return Image::borrow(mv_result_probability_map(get())); }
  /** Segmentation: the class name of every label-map value (0 = background). */
  std::vector<std::string> classes() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < mv_result_label_count(get()); ++i)
      out.emplace_back(mv_result_label(get(), i));
    return out;
  }
  /** Segmentation: the measured regions (every foreground class, then the manifest's unions). */
  std::vector<std::pair<std::string, mv_region_stats>> regions() const {
    std::vector<std::pair<std::string, mv_region_stats>> out;
    const size_t n = mv_result_region_count(get());
    for (size_t i = 0; i < n; ++i) {
      mv_region_stats st{};
      st.struct_size = sizeof st;
      check(mv_result_region(get(), i, &st));
      out.emplace_back(mv_result_region_name(get(), i), st);
    }
    return out;
  }
  /** Segmentation: the label map as NIfTI (.nii / .nii.gz) with the input's affine. */
  void write_nifti(const std::string& path) const {
    check(mv_result_write_nifti(get(), path.c_str()));
  }
  /** Segmentation: class outlines over `image` (a volume's `slice`; -1 = most foreground). */
  void write_overlay_png(const Image& image, const std::string& path, int64_t slice = -1) const {
    check(mv_result_write_overlay_png(get(), image.get(), slice, path.c_str()));
  }
  /** Segmentation: a DICOM SEG in the source's study (the source must come from DICOM files). */
  void write_dicom_seg(const Image& source, const std::string& path) const {
    check(mv_result_write_dicom_seg(get(), source.get(), path.c_str()));
  }
  /** A DICOM SR (TID 1500 measurement report) of the result in the source's study. */
  void write_dicom_sr(const Image& source, const std::string& path,
                      const DicomSrOptions& options = {}) const {
    check(mv_result_write_dicom_sr(get(), source.get(), options.c(), path.c_str()));
  }
  /** As above; `seg_path`: "" or the DICOM SEG written for this result, whose segments the
   *  region groups reference. */
  void write_dicom_sr(const Image& source, const std::string& path,
                      const std::string& seg_path) const {
    write_dicom_sr(source, path, DicomSrOptions().set_seg_path(seg_path));
  }

 private:
  struct Free {
    void operator()(mv_result* p) const noexcept { mv_result_free(p); }
  };
  std::unique_ptr<mv_result, Free> handle_;
};

/**
 * Options for Model::segment(): the C struct filled by mv_segment_options_init() with a chainable
 * setter and a getter per field, as CalibrateOptions. The tri-state fields take 1 (on), 0 (off) or
 * a negative value (the manifest's setting); see mv_segment_options.
 */
class SegmentOptions {
 public:
  SegmentOptions() { check(mv_segment_options_default(&c_)); }
  /** Sliding-window overlap in [0, 1); < 0 the manifest's. */
  SegmentOptions& set_overlap(double v) {
    c_.overlap = v;
    return *this;
  }
  /** Windows per forward pass; 0 the manifest's. */
  SegmentOptions& set_batch_size(int32_t v) {
    c_.batch_size = v;
    return *this;
  }
  /** Mirror test-time augmentation: 1, 0, or -1 the manifest's. */
  SegmentOptions& set_mirror(int32_t v) {
    c_.mirror = v;
    return *this;
  }
  /** Keep the per-class probability maps (Result::probability_map()). */
  SegmentOptions& set_probabilities(bool v) {
    c_.probabilities = v ? 1 : 0;
    return *this;
  }
  /** Keep only the largest component of each class: 1, 0, or -1 the manifest's. */
  SegmentOptions& set_largest_component(int32_t v) {
    c_.largest_component = v;
    return *this;
  }
  /** Fill holes enclosed by each class: 1, 0, or -1 the manifest's. */
  SegmentOptions& set_fill_holes(int32_t v) {
    c_.fill_holes = v;
    return *this;
  }
  /** Called on the calling thread after every batch of windows; return 0 to cancel. */
  SegmentOptions& set_progress(mv_progress_fn fn, void* user) {
    c_.progress = fn;
    c_.progress_user = user;
    return *this;
  }

  double overlap() const noexcept { return c_.overlap; }
  int32_t batch_size() const noexcept { return c_.batch_size; }
  int32_t mirror() const noexcept { return c_.mirror; }
  bool probabilities() const noexcept { return c_.probabilities != 0; }
  int32_t largest_component() const noexcept { return c_.largest_component; }
  int32_t fill_holes() const noexcept { return c_.fill_holes; }
  mv_progress_fn progress() const noexcept { return c_.progress; }
  void* progress_user() const noexcept { return c_.progress_user; }

  /** The C struct. */
  const mv_segment_options* c() const noexcept { return &c_; }

 private:
  mv_segment_options c_;
};

/** A loaded model package. Thread-safe: share one Model between threads. */
class Model {
 public:
  Model() = default;
  explicit Model(mv_model* handle) noexcept : handle_(handle) {}

  static Model load(const std::string& name_or_path, const ModelOptions& options = {}) {
    mv_model* h = nullptr;
    check(mv_model_load(name_or_path.c_str(), options.c(), &h));
    return Model(h);
  }

  mv_model* get() const noexcept { return handle_.get(); }
  explicit operator bool() const noexcept { return handle_ != nullptr; }
  std::string name() const { return mv_model_name(get()); }
  std::string version() const { return mv_model_version(get()); }
  std::string notice() const { return mv_model_notice(get()); }
  std::string device() const { return mv_model_device(get()); }
  std::string manifest_json() const { return mv_model_manifest_json(get()); }
  mv_task task() const noexcept { return mv_model_task(get()); }
  /** How calibration and evaluation labels are laid out (see mv_model_activation()). */
  mv_activation activation() const noexcept { return mv_model_activation(get()); }
  std::vector<std::string> labels() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < mv_model_label_count(get()); ++i)
      out.emplace_back(mv_model_label(get(), i));
    return out;
  }

  Result run(const Image& image) const {
    mv_result* r = nullptr;
    check(mv_model_run(get(), image.get(), &r));
    return Result(r);
  }

  /** Segments an image or volume (see mv_model_segment()). */
  Result segment(const Image& image, const SegmentOptions& options = {}) const {
    mv_result* r = nullptr;
    check(mv_model_segment(get(), image.get(), options.c(), &r));
    return Result(r);
  }

  std::vector<Result> run_batch(const std::vector<const Image*>& images) const {
    std::vector<const mv_image*> handles;
    handles.reserve(images.size());
    for (const Image* im : images) handles.push_back(im ? im->get() : nullptr);
    std::vector<mv_result*> raw(images.size(), nullptr);
    check(mv_model_run_batch(get(), handles.data(), handles.size(), raw.data()));
    std::vector<Result> out;
    out.reserve(raw.size());
    for (mv_result* r : raw) out.emplace_back(r);
    return out;
  }

 private:
  struct Free {
    void operator()(mv_model* p) const noexcept { mv_model_free(p); }
  };
  std::unique_ptr<mv_model, Free> handle_;
};

/** A heat map on the original image's grid (owning; movable). */
class Heatmap {
 public:
  Heatmap() = default;
  explicit Heatmap(mv_heatmap* handle) noexcept : handle_(handle) {}
  mv_heatmap* get() const noexcept { return handle_.get(); }
  int64_t height() const { return shape()[0]; }
  int64_t width() const { return shape()[1]; }
  std::array<int64_t, 2> shape() const {
    std::array<int64_t, 2> s{};
    mv_heatmap_shape(get(), s.data());
    return s;
  }
  /** depth*height*width values in [0, 1] (depth 1 but for 3D segmentation maps); borrowed. */
  const float* data() const noexcept { return mv_heatmap_data(get()); }
  std::string label() const { return mv_heatmap_label(get()); }
  /** Classification: the label's probability; segmentation: the class's mean probability over
   *  the explained region (NaN if empty). */
  float probability() const noexcept { return mv_heatmap_probability(get()); }
  /** The map as a float32 image with the source's depth and geometry (borrowed from this heat
   *  map; e.g. `heatmap.image().write_nifti(path)`). Throws when memory runs out. */
  Image image() const {
    const mv_image* im = mv_heatmap_image(get());
    if (im == nullptr) throw Exception(MV_ERR_OUT_OF_MEMORY, "mv_heatmap_image failed");
    return Image::borrow(im);
  }
  int64_t depth() const noexcept { return mv_heatmap_depth(get()); }
  /** The slice overlays show (the one with the most heat; 0 for 2D). */
  int64_t slice() const noexcept { return mv_heatmap_slice(get()); }
  /** Segmentation: voxels of the explained region; -1 for classification. */
  int64_t region_voxels() const noexcept { return mv_heatmap_region_voxels(get()); }
  /** Interleaved RGB overlay over `image`. */
  std::vector<uint8_t> overlay(const Image& image, float alpha = 0.5f) const {
    size_t needed = 0;
    check(mv_heatmap_overlay(get(), image.get(), alpha, nullptr, 0, &needed));
    std::vector<uint8_t> rgb(needed);
    check(mv_heatmap_overlay(get(), image.get(), alpha, rgb.data(), rgb.size(), &needed));
    return rgb;
  }
  /** Writes the overlay (or the map alone when image is null) as PNG. */
  void write_png(const std::string& path, const Image* image = nullptr, float alpha = 0.5f) const {
    check(mv_heatmap_write_png(get(), image ? image->get() : nullptr, alpha, path.c_str()));
  }
  /** Writes the overlay as a DICOM Secondary Capture in `source`'s study (see
   *  mv_heatmap_write_dicom_sc()). */
  void write_dicom_sc(const std::string& path, const Image& source, float alpha = 0.5f) const {
    check(mv_heatmap_write_dicom_sc(get(), source.get(), alpha, path.c_str()));
  }

 private:
  struct Free {
    void operator()(mv_heatmap* p) const noexcept { mv_heatmap_free(p); }
  };
  std::unique_ptr<mv_heatmap, Free> handle_;
};

/**
 * Options for explain(): the C struct filled by mv_explain_options_init() with a chainable setter
 * and a getter per field, as CalibrateOptions.
 */
class ExplainOptions {
 public:
  ExplainOptions() { check(mv_explain_options_default(&c_)); }
  ExplainOptions& set_method(mv_cam_method v) {
    c_.method = v;
    return *this;
  }
  /** Label index to explain; -1 the most probable label (classification) or the only
   *  foreground class (segmentation). */
  ExplainOptions& set_label(int32_t v) {
    c_.label = v;
    return *this;
  }
  /** Segmentation models: called after every window; return 0 to cancel. */
  ExplainOptions& set_progress(mv_progress_fn fn, void* user) {
    c_.progress = fn;
    c_.progress_user = user;
    return *this;
  }

  mv_cam_method method() const noexcept { return static_cast<mv_cam_method>(c_.method); }
  int32_t label() const noexcept { return c_.label; }
  mv_progress_fn progress() const noexcept { return c_.progress; }
  void* progress_user() const noexcept { return c_.progress_user; }

  /** The C struct. */
  const mv_explain_options* c() const noexcept { return &c_; }

 private:
  mv_explain_options c_;
};

/** Computes a heat map (see mv_explain()). */
inline Heatmap explain(const Model& model, const Image& image, const ExplainOptions& options = {}) {
  mv_heatmap* h = nullptr;
  check(mv_explain(model.get(), image.get(), options.c(), &h));
  return Heatmap(h);
}

/** Computes a heat map of `label` (-1: see ExplainOptions::set_label()) by `method`. */
inline Heatmap explain(const Model& model, const Image& image, mv_cam_method method, int32_t label,
                       mv_progress_fn progress = nullptr, void* progress_user = nullptr) {
  return explain(
      model, image,
      ExplainOptions().set_method(method).set_label(label).set_progress(progress, progress_user));
}

/** The model packages on the search path (see mv_model_list()), one folder each. */
inline std::vector<std::string> list_models() {
  size_t needed = 0;
  check(mv_model_list(nullptr, 0, &needed));
  std::string buf(needed, '\0');
  check(mv_model_list(buf.data(), buf.size(), &needed));
  std::vector<std::string> out;
  size_t start = 0;
  const std::string text(buf.c_str());
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/** Options for run_many(); the defaults are mv_pipeline_options_init()'s. */
struct PipelineOptions {
  int32_t batch_size;
  int32_t decode_threads;
  int32_t queue_batches;
  /** Called on the calling thread with (done, total); return false to cancel. An exception it
   *  throws cancels the run and is rethrown by run_many(). */
  std::function<bool(uint64_t, uint64_t)> progress;
  /** How paths are decoded (frame, VOI preset, pixel spacing...), as Image::load() with them. */
  LoadOptions load;

  PipelineOptions() {
    mv_pipeline_options o;
    check(mv_pipeline_options_default(&o));
    batch_size = o.batch_size;
    decode_threads = o.decode_threads;
    queue_batches = o.queue_batches;
  }
};

/** One input's outcome in run_many(): a result, or a status and a message naming the input. */
struct ItemResult {
  mv_status status = MV_OK;
  std::string message;
  Result result;  ///< empty unless status is MV_OK
  bool ok() const noexcept { return status == MV_OK; }
};

namespace detail {

inline std::vector<ItemResult> run_many(const Model& model, const char* const* paths,
                                        const mv_image* const* images, size_t count,
                                        const PipelineOptions& options) {
  mv_pipeline_options o;
  check(mv_pipeline_options_default(&o));
  o.batch_size = options.batch_size;
  o.decode_threads = options.decode_threads;
  o.queue_batches = options.queue_batches;
  o.load = options.load.c();
  struct Progress {
    const std::function<bool(uint64_t, uint64_t)>* fn;
    std::exception_ptr error;
    static int32_t call(uint64_t done, uint64_t total, void* user) noexcept {
      auto* self = static_cast<Progress*>(user);
      try {
        return (*self->fn)(done, total) ? 1 : 0;
      } catch (...) {
        self->error = std::current_exception();
        return 0;
      }
    }
  } progress{&options.progress, nullptr};
  if (options.progress) {
    o.progress = &Progress::call;
    o.progress_user = &progress;
  }
  mv_result_list* raw = nullptr;
  const mv_status s = mv_model_run_many(model.get(), paths, images, count, &o, &raw);
  if (progress.error) std::rethrow_exception(progress.error);
  check(s);
  std::unique_ptr<mv_result_list, void (*)(mv_result_list*)> list(raw, mv_result_list_free);
  std::vector<ItemResult> out(mv_result_list_count(raw));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].status = mv_result_list_status(raw, i);
    out[i].message = mv_result_list_message(raw, i);
    out[i].result = Result(mv_result_list_take(raw, i));
  }
  return out;
}

}  // namespace detail

/** Runs `model` on many files, streaming (mv_model_run_many()): results in input order; a bad
 *  file gets its own status and message and never fails the others. Throws Exception for bad
 *  options and MV_ERR_CANCELLED. Thread-safe like Model::run(). */
inline std::vector<ItemResult> run_many(const Model& model, const std::vector<std::string>& paths,
                                        const PipelineOptions& options = {}) {
  std::vector<const char*> p;
  p.reserve(paths.size());
  for (const auto& s : paths) p.push_back(s.c_str());
  return detail::run_many(model, p.data(), nullptr, p.size(), options);
}

/** run_many() over images in memory (borrowed for the duration of the call). */
inline std::vector<ItemResult> run_many(const Model& model, const std::vector<const Image*>& images,
                                        const PipelineOptions& options = {}) {
  std::vector<const mv_image*> h;
  h.reserve(images.size());
  for (const Image* im : images) h.push_back(im ? im->get() : nullptr);
  return detail::run_many(model, nullptr, h.data(), h.size(), options);
}

/** Options of load_label_map() (mv_label_map_options): segment labels and their label-map values
 *  (values empty: 1, 2, ...), the overlap rule and the FRACTIONAL threshold. */
struct LabelMapOptions {
  std::vector<std::string> labels;
  std::vector<int32_t> values;
  mv_label_overlap overlap;
  double fractional_threshold;
  /** The library's defaults (mv_label_map_options_init()), never restated here. */
  LabelMapOptions() {
    mv_label_map_options o;
    check(mv_label_map_options_default(&o));
    overlap = static_cast<mv_label_overlap>(o.overlap);
    fractional_threshold = o.fractional_threshold;
  }
};

/** A reference label map for `image` from `path`: a DICOM SEG placed on its grid, or any label
 *  map medvision loads on that grid (mv_label_map_load()). */
inline Image load_label_map(const std::string& path, const Image& image,
                            const LabelMapOptions& options = {}) {
  mv_label_map_options o;
  check(mv_label_map_options_default(&o));
  std::vector<const char*> labels;
  labels.reserve(options.labels.size());
  for (const auto& l : options.labels) labels.push_back(l.c_str());
  if (!options.values.empty() && options.values.size() != labels.size()) {
    throw Exception(MV_ERR_INVALID_ARGUMENT, "load_label_map: one value per label is needed");
  }
  o.labels = labels.empty() ? nullptr : labels.data();
  o.values = options.values.empty() ? nullptr : options.values.data();
  o.label_count = labels.size();
  o.overlap = options.overlap;
  o.fractional_threshold = options.fractional_threshold;
  mv_image* h = nullptr;
  check(mv_label_map_load(path.c_str(), image.get(), &o, &h));
  return Image(h);
}

}  // namespace medvision

/** @} */

// Calibration, the drift check, evaluation, and the names of option values.
#include "medvision/medvision_analysis.hpp"

#endif /* MEDVISION_HPP */
