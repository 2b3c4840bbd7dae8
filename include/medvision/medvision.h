/**
 * @file medvision.h
 * @defgroup medvision medvision stable C API
 * @brief The stable C ABI of libmedvision: decoding of medical images, and (later) inference.
 *
 * Rules that hold for every function in this header:
 * - Every fallible function returns an ::mv_status and writes its results through trailing
 *   out-parameters named `out` / `out_*`. On failure the out-parameters are left untouched.
 * - Every fallible function clears the thread-local last error on entry; on failure it sets a
 *   UTF-8 message (see mv_last_error()) that names the file or DICOM tag involved. Messages never
 *   contain patient-identifying values.
 * - No C++ exception crosses this boundary. The library never prints and never exits.
 * - Every `_free` function accepts NULL and returns void.
 * - Strings are UTF-8. Returned `const char *` values are borrowed: valid while their owner lives.
 * - Options structs start with `struct_size`; initialise them with their `_init` function.
 *
 * This header is C99, self-contained, and includes only <stddef.h> and <stdint.h>.
 * @{
 */
#ifndef MEDVISION_H
#define MEDVISION_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------- */
/* Versions */
/* ---------------------------------------------------------------------------------------------- */

#define MV_VERSION_MAJOR 0
#define MV_VERSION_MINOR 1
#define MV_VERSION_PATCH 0
/** The ABI version: equals the shared library's SOVERSION; bumped only on a breaking change. */
#define MV_ABI_VERSION 0
#define MV_VERSION_NUMBER (MV_VERSION_MAJOR * 10000 + MV_VERSION_MINOR * 100 + MV_VERSION_PATCH)
#define MV_STRINGIFY_INNER_(x) #x
#define MV_STRINGIFY_(x) MV_STRINGIFY_INNER_(x)
#define MV_VERSION_STRING         \
  MV_STRINGIFY_(MV_VERSION_MAJOR) \
  "." MV_STRINGIFY_(MV_VERSION_MINOR) "." MV_STRINGIFY_(MV_VERSION_PATCH)
/** True when the headers are at least version a.b.c. */
#define MV_VERSION_CHECK(a, b, c) (MV_VERSION_NUMBER >= ((a)*10000 + (b)*100 + (c)))

/* ---------------------------------------------------------------------------------------------- */
/* Portability */
/* ---------------------------------------------------------------------------------------------- */

#if defined(MV_STATIC)
#define MV_API
#elif defined(_WIN32)
#if defined(MV_BUILDING)
#define MV_API __declspec(dllexport)
#else
#define MV_API __declspec(dllimport)
#endif
#else
#define MV_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#define MV_BEGIN_DECL extern "C" {
#define MV_END_DECL }
#define MV_NOEXCEPT noexcept
#else
#define MV_BEGIN_DECL
#define MV_END_DECL
#define MV_NOEXCEPT
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MV_NODISCARD __attribute__((warn_unused_result))
#define MV_DEPRECATED(msg) __attribute__((deprecated(msg)))
#elif defined(_MSC_VER)
#define MV_NODISCARD _Check_return_
#define MV_DEPRECATED(msg) __declspec(deprecated(msg))
#else
#define MV_NODISCARD
#define MV_DEPRECATED(msg)
#endif

MV_BEGIN_DECL

/* ---------------------------------------------------------------------------------------------- */
/* Status codes and errors */
/* ---------------------------------------------------------------------------------------------- */

/**
 * Status codes. Values are pinned forever; new ones are only appended. Callers must treat any
 * unknown non-zero value as a failure.
 * @since 0.1
 */
typedef enum mv_status {
  MV_OK = 0,
  MV_ERR_INVALID_ARGUMENT = 1,   /**< a NULL pointer, a bad option value, a bad index */
  MV_ERR_OUT_OF_MEMORY = 2,      /**< an allocation failed, or a size limit was exceeded */
  MV_ERR_IO = 3,                 /**< a file could not be opened or read */
  MV_ERR_UNSUPPORTED_FORMAT = 4, /**< a format, transfer syntax or pixel layout we cannot decode */
  MV_ERR_CORRUPT_DATA = 5,       /**< a file is truncated or malformed */
  MV_ERR_MODEL = 6,              /**< a model package or the model itself failed */
  MV_ERR_DEVICE = 7,             /**< the requested compute device is missing or failed */
  MV_ERR_SHAPE_MISMATCH = 8,     /**< tensor shapes do not agree */
  MV_ERR_ABI_MISMATCH = 9,       /**< an options struct is smaller than any version we know */
  MV_ERR_CANCELLED = 10,         /**< a progress callback asked to stop */
  MV_ERR_NOT_IMPLEMENTED = 11,   /**< the feature is not available in this build */
  MV_ERR_INTERNAL = 12,          /**< a bug in medvision */
  MV_ERR_UNKNOWN = 13            /**< an unexpected error from a dependency */
} mv_status;

/**
 * @brief The name of a status code, e.g. "MV_ERR_IO".
 * @return A static string; "MV_ERR_UNKNOWN_STATUS" for values this version does not know.
 * Ownership: static storage. Thread-safety: safe. @since 0.1
 */
MV_API const char* mv_status_name(mv_status status) MV_NOEXCEPT;

/**
 * @brief The message of the last failed medvision call on this thread.
 * @return Never NULL; "" when the last fallible call on this thread succeeded.
 * Ownership: borrowed; valid until the next medvision call on this thread.
 * Thread-safety: thread-local. @since 0.1
 */
MV_API const char* mv_last_error(void) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Version queries */
/* ---------------------------------------------------------------------------------------------- */

/** @brief MV_VERSION_NUMBER of the linked library. Thread-safety: safe. @since 0.1 */
MV_API uint32_t mv_version_number(void) MV_NOEXCEPT;
/** @brief MV_VERSION_STRING of the linked library. Ownership: static. Thread-safety: safe. @since
 * 0.1 */
MV_API const char* mv_version_string(void) MV_NOEXCEPT;
/** @brief MV_ABI_VERSION of the linked library. Thread-safety: safe. @since 0.1 */
MV_API uint32_t mv_abi_version(void) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Logging */
/* ---------------------------------------------------------------------------------------------- */

/** Log levels. @since 0.1 */
typedef enum mv_log_level {
  MV_LOG_DEBUG = 0,
  MV_LOG_INFO = 1,
  MV_LOG_WARN = 2,
  MV_LOG_ERROR = 3,
  MV_LOG_OFF = 4
} mv_log_level;

/** A log sink. `message` is UTF-8, borrowed for the duration of the call, and never holds PHI. */
typedef void (*mv_log_fn)(mv_log_level level, const char* message, void* user);

/**
 * @brief Installs (or, with fn == NULL, removes) the process-wide log callback.
 * Without a callback the library is silent: it never writes to stdout or stderr.
 * The callback may be called from any thread that calls into medvision, and must not call back
 * into medvision.
 * @param[in] fn the sink, or NULL.
 * @param[in] user passed through to fn.
 * @param[in] min_level messages below this level are dropped.
 * Ownership: `user` stays the caller's. Thread-safety: safe (callers of the old callback finish
 * before this returns is NOT guaranteed; keep `user` alive until the process ends or set it once).
 * @since 0.1
 */
MV_API void mv_set_log_callback(mv_log_fn fn, void* user, mv_log_level min_level) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Tensor views */
/* ---------------------------------------------------------------------------------------------- */

/** Element types. @since 0.1 */
typedef enum mv_dtype {
  MV_DTYPE_FLOAT32 = 0,
  MV_DTYPE_UINT8 = 1,
  MV_DTYPE_INT8 = 2,
  MV_DTYPE_UINT16 = 3,
  MV_DTYPE_INT16 = 4,
  MV_DTYPE_UINT32 = 5,
  MV_DTYPE_INT32 = 6,
  MV_DTYPE_FLOAT64 = 7
} mv_dtype;

/** The size in bytes of one element of `dtype`, or 0 for an unknown value. @since 0.1 */
MV_API size_t mv_dtype_size(mv_dtype dtype) MV_NOEXCEPT;

/** Maximum number of dimensions of a tensor view. */
#define MV_MAX_DIMS 8

/**
 * A non-owning view of a strided array (numpy conventions: strides in bytes).
 * The library reads it only for the duration of the call it is passed to.
 * @since 0.1
 */
typedef struct mv_tensor_view {
  uint32_t struct_size; /**< sizeof(mv_tensor_view) */
  uint32_t dtype;       /**< an ::mv_dtype */
  const void* data;
  int64_t ndim;
  int64_t shape[MV_MAX_DIMS];
  int64_t strides[MV_MAX_DIMS]; /**< in bytes; may be 0 for broadcast axes */
} mv_tensor_view;

/* ---------------------------------------------------------------------------------------------- */
/* Images */
/* ---------------------------------------------------------------------------------------------- */

/**
 * A decoded image or volume. Opaque and immutable once created: safe to read from many threads.
 *
 * Pixels are float32 in physical units (after the DICOM Modality LUT or NIfTI scl_slope/inter,
 * e.g. Hounsfield units), stored planar and C-contiguous as [channels][depth][height][width].
 * Geometry follows DICOM patient coordinates (LPS, millimetres): index (i, j, k) = (column, row,
 * slice) maps to origin + direction * diag(spacing) * (i, j, k).
 */
typedef struct mv_image mv_image;

/** Where an image came from. @since 0.1 */
typedef enum mv_image_format {
  MV_FORMAT_UNKNOWN = 0,
  MV_FORMAT_DICOM = 1,
  MV_FORMAT_NIFTI = 2,
  MV_FORMAT_PNG = 3,
  MV_FORMAT_JPEG = 4,
  MV_FORMAT_TIFF = 5,
  MV_FORMAT_BMP = 6,
  MV_FORMAT_PIXELS = 7 /**< built by mv_image_from_pixels() */
} mv_image_format;

/** Photometric interpretation of the decoded pixels. @since 0.1 */
typedef enum mv_photometric {
  MV_PHOTOMETRIC_UNKNOWN = 0,
  MV_PHOTOMETRIC_MONOCHROME1 = 1, /**< minimum value is displayed white (not inverted by decode) */
  MV_PHOTOMETRIC_MONOCHROME2 = 2, /**< minimum value is displayed black */
  MV_PHOTOMETRIC_RGB = 3          /**< colour: YBR and palette colour are converted to RGB */
} mv_photometric;

/** VOI LUT function of a window preset (DICOM (0028,1056)). @since 0.1 */
typedef enum mv_voi_function {
  MV_VOI_LINEAR = 0,
  MV_VOI_LINEAR_EXACT = 1,
  MV_VOI_SIGMOID = 2,
  MV_VOI_TABLE = 3 /**< a VOI LUT Sequence table rather than centre/width */
} mv_voi_function;

/** Options for mv_image_load() and friends. Initialise with mv_image_load_options_init(). */
typedef struct mv_image_load_options {
  uint32_t struct_size; /**< sizeof(mv_image_load_options) as the caller compiled it */
  /** Multi-frame DICOM: the frame to decode, or -1 (default) for all frames as depth. */
  int32_t frame;
  /**
   * Apply a VOI transform: -1 (default) leaves physical units; i >= 0 applies window preset i
   * (see mv_image_window()) and maps the result to [0, 1].
   */
  int32_t apply_voi;
  /** Refuse images with more than this many values (channels x depth x height x width) before
   *  allocating them. 0 selects the default, 2^30. */
  uint64_t max_values;
  /** Series: keep only this SeriesInstanceUID when a folder holds several; NULL or "" means the
   *  folder must hold exactly one series. Borrowed for the call. */
  const char* series_uid;
  /** In-plane pixel spacing {column, row} in mm supplied by the user, for sources that give
   *  none (PNG, JPEG, DICOM without a spacing attribute) or give a wrong one: both > 0 replace
   *  the file's spacing and mv_image_spacing_source() says "user"; {0, 0} (default) keeps the
   *  file's. @since 0.1 */
  double pixel_spacing[2];
} mv_image_load_options;

/**
 * @brief Fills `opts` with defaults.
 * @param[out] opts the options to initialise.
 * @param[in] struct_size sizeof(*opts) as the caller compiled it.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT for NULL; MV_ERR_ABI_MISMATCH when struct_size is
 *         smaller than version 0.1 of the struct.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_load_options_init(mv_image_load_options* opts,
                                                         size_t struct_size) MV_NOEXCEPT;

/** @brief mv_image_load_options_init() with the size this header was compiled with. */
static inline mv_status mv_image_load_options_default(mv_image_load_options* opts) {
  return mv_image_load_options_init(opts, sizeof *opts);
}

/**
 * @brief Decodes a file or a folder. The format is found from the content, not the name.
 *
 * A folder, or a DICOM file that is one slice of a series, is NOT expanded: pass a folder path to
 * read a whole DICOM series as one volume (sorted along the slice normal).
 *
 * @param[in] path UTF-8 path of a DICOM, NIfTI (.nii/.nii.gz), PNG, JPEG, TIFF or BMP file, or of
 *            a folder holding one DICOM series.
 * @param[in] opts options, or NULL for defaults.
 * @param[out] out the new image.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT; MV_ERR_IO (missing or unreadable file);
 *         MV_ERR_UNSUPPORTED_FORMAT; MV_ERR_CORRUPT_DATA (truncated or malformed);
 *         MV_ERR_OUT_OF_MEMORY (including max_values exceeded); MV_ERR_ABI_MISMATCH.
 * Ownership: the caller owns *out; release it with mv_image_free().
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_load(const char* path, const mv_image_load_options* opts,
                                            mv_image** out) MV_NOEXCEPT;

/**
 * @brief Decodes an image held in memory (any single-file format mv_image_load() reads).
 * @param[in] data the encoded bytes; read only during the call.
 * @param[in] size their count.
 * @param[in] opts options, or NULL.
 * @param[out] out the new image.
 * @return as mv_image_load().
 * Ownership: the caller owns *out. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_load_memory(const void* data, size_t size,
                                                   const mv_image_load_options* opts,
                                                   mv_image** out) MV_NOEXCEPT;

/**
 * @brief Reads the given DICOM files as one series and stacks them into a volume sorted along the
 * slice normal. Slice gaps and uneven spacing are reported through mv_image_warning(); files of
 * several series are an error unless opts->series_uid picks one.
 * @param[in] paths `count` UTF-8 paths.
 * @param[in] count number of paths (at least 1).
 * @param[in] opts options, or NULL.
 * @param[out] out the new volume.
 * @return as mv_image_load().
 * Ownership: the caller owns *out. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_load_series(const char* const* paths, size_t count,
                                                   const mv_image_load_options* opts,
                                                   mv_image** out) MV_NOEXCEPT;

/** Geometry passed to mv_image_from_pixels(). Initialise with mv_image_geometry_init(). */
typedef struct mv_image_geometry {
  uint32_t struct_size;
  double spacing[3];    /**< column, row, slice spacing in mm (default 1, 1, 1) */
  double origin[3];     /**< LPS position of the first voxel's centre in mm (default 0) */
  double direction[9];  /**< row-major 3x3; column c is the LPS direction of index axis c */
  uint32_t photometric; /**< an ::mv_photometric (default: see mv_image_from_pixels()) */
} mv_image_geometry;

/** @brief Fills `geom` with defaults (identity). @return MV_OK, MV_ERR_INVALID_ARGUMENT,
 *  MV_ERR_ABI_MISMATCH. Thread-safety: safe. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_image_geometry_init(mv_image_geometry* geom,
                                                     size_t struct_size) MV_NOEXCEPT;

/**
 * @brief Builds an image from a caller's pixel buffer (copied and converted to float32).
 * @param[in] pixels a 2-D [H, W], 3-D [H, W, C] (C = 1, 3 or 4; interleaved, as viewers hold RGB;
 *            the alpha of RGBA is dropped), or 4-D [C, D, H, W] view (planar channels of any
 *            meaning, all kept) of any ::mv_dtype. Default photometric: MONOCHROME2 for one
 *            channel, RGB for three, else UNKNOWN.
 * @param[in] geom geometry, or NULL for identity.
 * @param[out] out the new image.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, bad shape, bad strides, unknown dtype);
 *         MV_ERR_ABI_MISMATCH; MV_ERR_OUT_OF_MEMORY.
 * Ownership: the caller keeps `pixels`; the caller owns *out. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_from_pixels(const mv_tensor_view* pixels,
                                                   const mv_image_geometry* geom,
                                                   mv_image** out) MV_NOEXCEPT;

/** @brief Releases an image. Accepts NULL. Thread-safety: not with concurrent use of the same
 *  image. @since 0.1 */
MV_API void mv_image_free(mv_image* image) MV_NOEXCEPT;

/**
 * @brief The image's shape as {channels, depth, height, width}.
 * @param[in] image the image (NULL gives zeros).
 * @param[out] out_shape four values.
 * Thread-safety: safe. @since 0.1
 */
MV_API void mv_image_shape(const mv_image* image, int64_t out_shape[4]) MV_NOEXCEPT;

/**
 * @brief The float32 pixel buffer: channels*depth*height*width values, planar, C-contiguous.
 * @return NULL for a NULL image. Ownership: borrowed, valid while the image lives.
 * Thread-safety: safe. @since 0.1
 */
MV_API const float* mv_image_data(const mv_image* image) MV_NOEXCEPT;

/**
 * @brief Describes the pixel buffer as a 4-D tensor view [C, D, H, W] of float32.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT for NULL arguments or a view whose struct_size is too
 *         small (set out->struct_size before the call).
 * Ownership: the view borrows the image's buffer. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_view(const mv_image* image, mv_tensor_view* out) MV_NOEXCEPT;

/** @brief Voxel spacing {column, row, slice} in mm. Thread-safety: safe. @since 0.1 */
MV_API void mv_image_spacing(const mv_image* image, double out_spacing[3]) MV_NOEXCEPT;

/**
 * @brief Where the in-plane spacing came from: "PixelSpacing" (DICOM, in the patient),
 * "ImagerPixelSpacing" (DICOM, at the detector: not corrected for magnification, so sizes in
 * the patient are overestimated by the magnification factor), "NominalScannedPixelSpacing"
 * (DICOM, a digitised film), "NIfTI", "PNG pHYs", "caller" (mv_image_from_pixels() with a
 * geometry), "user" (mv_image_load_options.pixel_spacing), or "" when the source gives none:
 * mv_image_spacing() is then a placeholder {1, 1} and segmentation measurements are reported in
 * pixels/voxels (mv_region_stats.spacing_known is 0). DICOM sources are tried in that order
 * (PS3.3 C.7.6.2.1.1). NULL gives "".
 * Ownership: borrowed, static storage or valid while the image lives. Thread-safety: safe.
 * @since 0.1
 */
MV_API const char* mv_image_spacing_source(const mv_image* image) MV_NOEXCEPT;
/** @brief LPS position of the first voxel's centre in mm. Thread-safety: safe. @since 0.1 */
MV_API void mv_image_origin(const mv_image* image, double out_origin[3]) MV_NOEXCEPT;
/** @brief Row-major 3x3 direction cosines (column c = index axis c in LPS). @since 0.1 */
MV_API void mv_image_direction(const mv_image* image, double out_direction[9]) MV_NOEXCEPT;
/** @brief The format the image was decoded from. @since 0.1 */
MV_API mv_image_format mv_image_get_format(const mv_image* image) MV_NOEXCEPT;
/** @brief The photometric interpretation of the decoded pixels. @since 0.1 */
MV_API mv_photometric mv_image_photometric(const mv_image* image) MV_NOEXCEPT;
/** @brief The element type the pixels were stored with in the file (before the Modality LUT). */
MV_API mv_dtype mv_image_stored_dtype(const mv_image* image) MV_NOEXCEPT;
/** @brief BitsStored (DICOM), or the bit depth of the source (8, 16, 32). @since 0.1 */
MV_API int32_t mv_image_bits_stored(const mv_image* image) MV_NOEXCEPT;

/** @brief Number of window presets (DICOM VOI: centre/width pairs and VOI LUT tables). */
MV_API size_t mv_image_window_count(const mv_image* image) MV_NOEXCEPT;

/**
 * @brief One window preset, in physical units (after the Modality LUT).
 * @param[in] index 0 .. mv_image_window_count()-1.
 * @param[out] out_center, out_width the window; for MV_VOI_TABLE presets, the centre and width
 *             that span the table's input range.
 * @param[out] out_function an ::mv_voi_function (may be NULL).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT for NULL or an index out of range.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_window(const mv_image* image, size_t index,
                                              double* out_center, double* out_width,
                                              mv_voi_function* out_function) MV_NOEXCEPT;

/**
 * @brief Non-identifying metadata by DICOM keyword.
 *
 * Known keys: Modality, BodyPartExamined, ViewPosition, Manufacturer, ManufacturerModelName,
 * StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID, TransferSyntaxUID,
 * PhotometricInterpretation (as stored), ImageLaterality, SeriesDescription (NIfTI: descrip),
 * NumberOfFrames. Patient names, IDs, birth dates and other PHI are never read into the image, so
 * they can never be returned.
 * @return the value, or NULL when absent or not an allowed key. Ownership: borrowed.
 * Thread-safety: safe. @since 0.1
 */
MV_API const char* mv_image_meta(const mv_image* image, const char* key) MV_NOEXCEPT;

/**
 * @brief The keys mv_image_meta() knows, one by one, so that callers need not copy the list:
 * `for (size_t i = 0; (key = mv_image_meta_key(i)) != NULL; ++i)`. The order is fixed within a
 * release; keys are only ever added.
 * @param[in] index 0, 1, ...
 * @return the key (a DICOM keyword), or NULL when `index` is past the last one.
 * Ownership: static storage. Thread-safety: safe. @since 0.1
 */
MV_API const char* mv_image_meta_key(size_t index) MV_NOEXCEPT;

/** @brief Number of warnings raised while decoding (slice gaps, ignored elements...). */
MV_API size_t mv_image_warning_count(const mv_image* image) MV_NOEXCEPT;
/** @brief Warning `index` as UTF-8, or NULL when out of range. Ownership: borrowed. */
MV_API const char* mv_image_warning(const mv_image* image, size_t index) MV_NOEXCEPT;

/**
 * @brief Writes the image as a NIfTI-1 file: gzip-compressed when `path` ends in ".nii.gz",
 * plain when it ends in ".nii".
 *
 * The data type is the smallest that holds every value exactly: uint8 when all values are
 * integers in [0, 255] (label maps), int16 when they are integers in [-32768, 32767] (CT), else
 * float32. The LPS geometry becomes a RAS affine (x and y negated, as nibabel reads it), written
 * as the sform and, as its nearest rigid approximation, the qform, both with code 1 (scanner
 * anatomical). More than one channel is written as a 4-D volume (dim[4]). Units are mm.
 * @param[in] image the image.
 * @param[in] path UTF-8 path ending in .nii or .nii.gz; an existing file is replaced.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, another file extension, a dimension above
 *         32767); MV_ERR_IO (the file cannot be written; the message names the path).
 * Ownership: the caller keeps `image`. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_write_nifti(const mv_image* image,
                                                   const char* path) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Models and results */
/* ---------------------------------------------------------------------------------------------- */

/**
 * A loaded model package (manifest + TorchScript). Immutable once loaded: one model may be shared
 * by many threads, and mv_model_run() may be called on it concurrently.
 */
typedef struct mv_model mv_model;

/** The outcome of running a model on one image. Immutable; safe to read from many threads. */
typedef struct mv_result mv_result;

/** What a model does. @since 0.1 */
typedef enum mv_task { MV_TASK_CLASSIFICATION = 0, MV_TASK_SEGMENTATION = 1 } mv_task;

/** Arithmetic precision of inference. @since 0.1 */
typedef enum mv_precision {
  MV_PRECISION_FLOAT32 = 0,
  MV_PRECISION_REDUCED = 1 /**< bf16 on CPUs with native support, fp16 on CUDA */
} mv_precision;

/** Options for mv_model_load(). Initialise with mv_model_options_init(). */
typedef struct mv_model_options {
  uint32_t struct_size;
  /** "auto" (the default, also for NULL): CUDA device 0 when available, else the CPU;
   *  "cpu"; "cuda" or "cuda:N". Borrowed for the call. */
  const char* device;
  /** Intra-op threads for CPU inference: N > 0 that many; 0 (the default) every CPU this process
   *  may run on (sched_getaffinity, so taskset and cgroup CPU sets count; LibTorch's own default
   *  is the physical cores, 1 on a 2-vCPU VM); -1 leaves LibTorch's pool as the host set it.
   *  LibTorch's pool is process-wide: the last model loaded with N >= 0 sets it. */
  int32_t num_threads;
  /** An ::mv_precision (default MV_PRECISION_FLOAT32). */
  int32_t precision;
  /** Non-zero (default): run one warm-up batch at load, which also checks the output shape. */
  int32_t warmup;
  /** Non-zero (default): apply the package's inference graph pass (manifest `inference.graph`:
   *  on the CPU in float32 freeze + torch::jit::optimize_for_inference by default, or freeze
   *  only; CUDA and reduced precision freeze only; docs/performance.md). Zero: run the module as
   *  loaded. */
  int32_t optimize;
} mv_model_options;

/** @brief Fills `opts` with defaults. @return MV_OK, MV_ERR_INVALID_ARGUMENT,
 *  MV_ERR_ABI_MISMATCH. Thread-safety: safe. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_model_options_init(mv_model_options* opts,
                                                    size_t struct_size) MV_NOEXCEPT;

/** @brief mv_model_options_init() with the size this header was compiled with. */
static inline mv_status mv_model_options_default(mv_model_options* opts) {
  return mv_model_options_init(opts, sizeof *opts);
}

/**
 * @brief Loads a model package: a folder holding manifest.json and the TorchScript file, one
 * archive file of it (.tar, .tar.gz, .tgz, .mvpkg; extracted into a private temporary folder
 * that lives as long as the model), or a package name looked up on the search path
 * (MEDVISION_MODEL_PATH, then the models/ folders medvision knows; <name>/ or <name>.mvpkg).
 * The manifest is validated and the model file's SHA-256 checked.
 * @param[in] name_or_path package folder, archive or name.
 * @param[in] opts options, or NULL for defaults.
 * @param[out] out the model.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT; MV_ERR_IO (not found); MV_ERR_CORRUPT_DATA or
 *         MV_ERR_UNSUPPORTED_FORMAT (a bad archive); MV_ERR_MODEL (bad manifest,
 *         checksum mismatch, not TorchScript, output shape not matching the labels);
 *         MV_ERR_DEVICE (CUDA requested but absent); MV_ERR_ABI_MISMATCH.
 * Ownership: the caller owns *out; release with mv_model_free().
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_load(const char* name_or_path, const mv_model_options* opts,
                                            mv_model** out) MV_NOEXCEPT;

/** @brief Releases a model. Accepts NULL. Results made by the model stay valid.
 *  Thread-safety: not while other threads use the same model. @since 0.1 */
MV_API void mv_model_free(mv_model* model) MV_NOEXCEPT;

/** @brief The package name (manifest "name"). Ownership: borrowed. @since 0.1 */
MV_API const char* mv_model_name(const mv_model* model) MV_NOEXCEPT;
/** @brief The package version (manifest "version"). Ownership: borrowed. @since 0.1 */
MV_API const char* mv_model_version(const mv_model* model) MV_NOEXCEPT;
/** @brief The notice results must carry (e.g. "Not for diagnostic use..."). Borrowed. */
MV_API const char* mv_model_notice(const mv_model* model) MV_NOEXCEPT;
/** @brief The task. @since 0.1 */
MV_API mv_task mv_model_task(const mv_model* model) MV_NOEXCEPT;

/** A model's output activation (the manifest's output.activation). @since 0.1 */
typedef enum mv_activation {
  MV_ACTIVATION_SIGMOID = 0, /**< independent labels (multi-label): labels per image are 0/1 */
  MV_ACTIVATION_SOFTMAX = 1  /**< mutually exclusive classes: one class index per image */
} mv_activation;

/** @brief The model's output activation, which says how calibration and evaluation labels are
 *  laid out (MV_ACTIVATION_SIGMOID for NULL). Thread-safety: safe. @since 0.1 */
MV_API mv_activation mv_model_activation(const mv_model* model) MV_NOEXCEPT;
/** @brief Number of labels (classification outputs or segmentation classes). @since 0.1 */
MV_API size_t mv_model_label_count(const mv_model* model) MV_NOEXCEPT;
/** @brief Label `index`, or NULL when out of range. Ownership: borrowed. @since 0.1 */
MV_API const char* mv_model_label(const mv_model* model, size_t index) MV_NOEXCEPT;
/** @brief The device the model runs on, e.g. "cpu" or "cuda:0". Borrowed. @since 0.1 */
MV_API const char* mv_model_device(const mv_model* model) MV_NOEXCEPT;
/** @brief The whole manifest as JSON text. Ownership: borrowed. @since 0.1 */
MV_API const char* mv_model_manifest_json(const mv_model* model) MV_NOEXCEPT;

/**
 * @brief Lists the model packages on the search path (see mv_model_load()), one package folder
 * per line (UTF-8, '\n'-separated), using the size-query pattern.
 * @param[out] buf where to write, or NULL to query the size.
 * @param[in] cap bytes available at buf.
 * @param[out] out_needed bytes needed, including the terminating NUL.
 * @return MV_OK (buf filled when cap >= *out_needed); MV_ERR_INVALID_ARGUMENT (out_needed NULL).
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_list(char* buf, size_t cap, size_t* out_needed) MV_NOEXCEPT;

/**
 * @brief Runs a model on one image: preprocessing as the manifest declares, inference, and the
 * output activation (and calibration, when the package carries one).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT; MV_ERR_SHAPE_MISMATCH (e.g. the image cannot become
 *         the model's input); MV_ERR_MODEL (the model failed or returned NaN); MV_ERR_DEVICE;
 *         MV_ERR_OUT_OF_MEMORY.
 * Ownership: the caller owns *out; release with mv_result_free().
 * Thread-safety: safe; many threads may run the same model at once. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_run(const mv_model* model, const mv_image* image,
                                           mv_result** out) MV_NOEXCEPT;

/**
 * @brief Runs a model on `count` images as one batch.
 * @param[out] out an array of `count` result pointers, filled only on success.
 * @return as mv_model_run(); on failure no result is returned.
 * Ownership: the caller owns each out[i]. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_run_batch(const mv_model* model,
                                                 const mv_image* const* images, size_t count,
                                                 mv_result** out) MV_NOEXCEPT;

/** @brief Releases a result. Accepts NULL. @since 0.1 */
MV_API void mv_result_free(mv_result* result) MV_NOEXCEPT;

/** @brief Number of labels in a result. @since 0.1 */
MV_API size_t mv_result_label_count(const mv_result* result) MV_NOEXCEPT;
/** @brief Label `index` (manifest order), or NULL when out of range. Borrowed. @since 0.1 */
MV_API const char* mv_result_label(const mv_result* result, size_t index) MV_NOEXCEPT;
/** @brief The raw model output for label `index` (NaN when out of range). @since 0.1 */
MV_API float mv_result_logit(const mv_result* result, size_t index) MV_NOEXCEPT;
/** @brief The probability after the output activation (NaN when out of range). @since 0.1 */
MV_API float mv_result_probability(const mv_result* result, size_t index) MV_NOEXCEPT;
/** @brief The calibrated probability, or NaN when the package carries no calibration. */
MV_API float mv_result_calibrated(const mv_result* result, size_t index) MV_NOEXCEPT;
/** @brief 1 positive / 0 negative at the package's operating point; -1 when it has none. */
MV_API int32_t mv_result_decision(const mv_result* result, size_t index) MV_NOEXCEPT;
/** @brief 1 when the calibrated probability is in the "refer to a human" band, else 0. */
MV_API int32_t mv_result_refer(const mv_result* result, size_t index) MV_NOEXCEPT;
/** @brief Out-of-distribution score of a classification result: how far the image's logits lie
 *  from the calibration-time distribution (the package's drift reference), as the largest over
 *  labels of |logit - median| / (IQR / 1.349), in robust standard deviations. Not a
 *  probability; above 3 counts as far (docs/calibration.md) and adds a warning. NaN when the
 *  package has no drift reference or for segmentation results. Thread-safety: safe. @since 0.1 */
MV_API double mv_result_ood_score(const mv_result* result) MV_NOEXCEPT;

/** Bits of mv_result_conformal(). @since 0.1 */
typedef enum mv_conformal_set {
  MV_CONFORMAL_EMPTY = 0,    /**< sigmoid: neither answer is in the label's set */
  MV_CONFORMAL_NEGATIVE = 1, /**< sigmoid: "negative" is in the label's set */
  MV_CONFORMAL_POSITIVE = 2, /**< sigmoid: "positive" is in the label's set */
  MV_CONFORMAL_BOTH = 3,     /**< sigmoid: both answers are (the model cannot tell at alpha) */
  MV_CONFORMAL_IN_SET = 1    /**< softmax: this class is in the image's prediction set */
} mv_conformal_set;

/**
 * @brief The split-conformal prediction set of label `index` (docs/calibration.md), when the
 * package was calibrated with conformal sets (manifest "calibration.conformal").
 * Sigmoid (multi-label) models: a set within {negative, positive} per label, as ::mv_conformal_set
 * bits; the true answer lies in it for at least 1 - alpha of images like the calibration data.
 * An empty set (0) means neither answer is likely enough; both (3) means the model cannot decide.
 * Softmax models: 1 when class `index` is in the image's prediction set, else 0; the set holds
 * the true class for at least 1 - alpha of images.
 * @return the bits (0..3), or -1 when the package has no conformal calibration, `index` is out
 *         of range, `result` is NULL or a segmentation result.
 * Thread-safety: safe. @since 0.1
 */
MV_API int32_t mv_result_conformal(const mv_result* result, size_t index) MV_NOEXCEPT;

/**
 * @brief The miscoverage level alpha of the result's conformal sets (e.g. 0.1 for 90% coverage),
 * or NaN when the package has no conformal calibration (or `result` is NULL).
 * Thread-safety: safe. @since 0.1
 */
MV_API double mv_result_conformal_alpha(const mv_result* result) MV_NOEXCEPT;

/** @brief The label index at rank `rank` (0 = most probable), or SIZE_MAX out of range. Ranked
 *  by the calibrated probability when the package carries a calibration (since 0.2; before,
 *  by mv_result_probability()), else by mv_result_probability(). */
MV_API size_t mv_result_ranked(const mv_result* result, size_t rank) MV_NOEXCEPT;
/** @brief Name, version and notice of the model that made the result. Borrowed. @since 0.1 */
MV_API const char* mv_result_model_name(const mv_result* result) MV_NOEXCEPT;
MV_API const char* mv_result_model_version(const mv_result* result) MV_NOEXCEPT;
MV_API const char* mv_result_notice(const mv_result* result) MV_NOEXCEPT;
/** @brief Warnings: the input looked wrong for the model (modality, photometric, range...). */
MV_API size_t mv_result_warning_count(const mv_result* result) MV_NOEXCEPT;
MV_API const char* mv_result_warning(const mv_result* result, size_t index) MV_NOEXCEPT;
/** @brief The whole result as one JSON object (model, notice, ranked labels, warnings, and
 *  "conformal": null or {"alpha", "set": [classes]} (softmax) / {"alpha", "labels": {label:
 *  ["negative"|"positive", ...]}} (sigmoid)).
 *  Ownership: borrowed, valid while the result lives. @since 0.1 */
MV_API const char* mv_result_json(const mv_result* result) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Segmentation */
/* ---------------------------------------------------------------------------------------------- */

/**
 * Progress of a long operation: `done` of `total` units (sliding windows) so far. Return non-zero
 * to go on, 0 to cancel (the operation then fails with MV_ERR_CANCELLED). Called on the thread
 * that made the call. @since 0.1
 */
typedef int32_t (*mv_progress_fn)(uint64_t done, uint64_t total, void* user);

/** Options for mv_model_segment(). Initialise with mv_segment_options_init(). Negative values
 *  (and 0 for batch_size) keep what the model's manifest says. */
typedef struct mv_segment_options {
  uint32_t struct_size;
  /** Sliding-window overlap in [0, 1); < 0 (default) takes the manifest's (else 0.5). */
  double overlap;
  /** Windows per forward pass; 0 (default) takes the manifest's (else 1). */
  int32_t batch_size;
  /** Mirror test-time augmentation (each window also run flipped along every combination of
   *  spatial axes, outputs averaged): 1 on, 0 off, -1 (default) the manifest's (else off). */
  int32_t mirror;
  /** Non-zero: keep the per-class probability maps (mv_result_probability_map()). Default 0. */
  int32_t probabilities;
  /** Keep only the largest connected component of each class: 1, 0, or -1 (default) manifest. */
  int32_t largest_component;
  /** Fill holes enclosed by each class (only background voxels change): 1, 0, or -1 manifest. */
  int32_t fill_holes;
  /** Called after every batch of windows; may be NULL (default). */
  mv_progress_fn progress;
  /** Passed to `progress`. */
  void* progress_user;
} mv_segment_options;

/** @brief Fills `opts` with defaults. @return MV_OK, MV_ERR_INVALID_ARGUMENT,
 *  MV_ERR_ABI_MISMATCH. Thread-safety: safe. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_segment_options_init(mv_segment_options* opts,
                                                      size_t struct_size) MV_NOEXCEPT;

/** @brief mv_segment_options_init() with the size this header was compiled with. */
static inline mv_status mv_segment_options_default(mv_segment_options* opts) {
  return mv_segment_options_init(opts, sizeof *opts);
}

/**
 * @brief Segments a 2D image or a 3D volume with a segmentation model: preprocessing as the
 * manifest declares, sliding-window inference with Gaussian blending (windows of the manifest's
 * input size, batched), the output activation, the probabilities mapped back onto the input
 * image's grid (crop/pad, resampling and reorientation undone), a label map, optional
 * post-processing, and per-region measurements. mv_model_run() on a segmentation model does the
 * same with the manifest's settings.
 *
 * Multi-channel models (e.g. FLAIR + T1) take one multi-channel image: a 4D NIfTI, or single
 * images stacked with mv_image_stack().
 * @param[in] opts options, or NULL for the manifest's settings.
 * @param[out] out the result: see mv_result_mask(), mv_result_region().
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, bad option, not a segmentation model);
 *         MV_ERR_SHAPE_MISMATCH (wrong channel count or dimensionality); MV_ERR_MODEL (the model
 *         failed, returned a wrong shape or non-finite values); MV_ERR_CANCELLED;
 *         MV_ERR_OUT_OF_MEMORY; MV_ERR_ABI_MISMATCH.
 * Ownership: the caller owns *out; release with mv_result_free().
 * Thread-safety: safe; many threads may segment with one model. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_segment(const mv_model* model, const mv_image* image,
                                               const mv_segment_options* opts,
                                               mv_result** out) MV_NOEXCEPT;

/**
 * @brief Stacks images on the same grid into the channels of one image (e.g. the FLAIR and T1
 * volumes of one study, in the order the model's manifest names them).
 * @param[in] images `count` images, each with any number of channels; all must have the same
 *            depth, height and width, and the same geometry (within 1e-3 mm / 1e-4).
 * @param[out] out the stacked image, with the first image's geometry and metadata.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, count 0); MV_ERR_SHAPE_MISMATCH (sizes or
 *         geometry differ: the message names the image); MV_ERR_OUT_OF_MEMORY.
 * Ownership: the caller owns *out. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_image_stack(const mv_image* const* images, size_t count,
                                             mv_image** out) MV_NOEXCEPT;

/** Measurements of one region of a segmentation (a class, or a union of classes). @since 0.1 */
typedef struct mv_region_stats {
  uint32_t struct_size; /**< set by the caller to sizeof(mv_region_stats) */
  uint32_t reserved;
  uint64_t voxels;                   /**< voxels (pixels in 2D) in the region */
  double volume_ml;                  /**< 3D: volume in millilitres (0 for 2D images) */
  double area_mm2;                   /**< 2D: area in mm^2 (0 for volumes) */
  int64_t bbox_min[3];               /**< (column, row, slice) inclusive; -1 when empty */
  int64_t bbox_max[3];               /**< (column, row, slice) inclusive; -1 when empty */
  uint64_t components;               /**< connected components (4/6-connectivity) */
  uint64_t largest_component_voxels; /**< size of the largest component */
  double centroid[3];                /**< LPS mm centroid of the largest component; NaN if empty */
  double centroid_index[3];          /**< the same as (column, row, slice); NaN if empty */
  /** 1 when the image's pixel spacing is known (mv_image_spacing_source() not ""); 0 when it is
   *  not: area_mm2 and volume_ml are then NaN (never a pixel count dressed as mm), `voxels` is
   *  the measurement and `centroid` is in index units. @since 0.1 */
  uint32_t spacing_known;
} mv_region_stats;

/** @brief MV_TASK_SEGMENTATION for results of segmentation models. @since 0.1 */
MV_API mv_task mv_result_task(const mv_result* result) MV_NOEXCEPT;

/**
 * @brief The label map of a segmentation result: one channel on exactly the input image's grid
 * and geometry, each voxel holding a class value: mv_result_label(result, value) names it, value
 * 0 being the background. For sigmoid (multi-label) models whose classes overlap, the later class
 * wins (nested regions such as whole tumour / core / enhancing).
 * @return NULL for classification results. Ownership: borrowed; valid while the result lives.
 * Thread-safety: safe. @since 0.1
 */
MV_API const mv_image* mv_result_mask(const mv_result* result) MV_NOEXCEPT;

/**
 * @brief The probability maps on the input grid, one channel per model output (softmax models:
 * channel c is label-map value c; sigmoid models: channel c is value c + 1), or NULL when not
 * asked for (mv_segment_options.probabilities) or for classification results.
 * Ownership: borrowed; valid while the result lives. Thread-safety: safe. @since 0.1
 */
MV_API const mv_image* mv_result_probability_map(const mv_result* result) MV_NOEXCEPT;

/** @brief Number of measured regions: every foreground class, then the unions of classes the
 *  manifest names (e.g. "lungs"). 0 for classification results. @since 0.1 */
MV_API size_t mv_result_region_count(const mv_result* result) MV_NOEXCEPT;
/** @brief Name of region `index`, or NULL out of range. Ownership: borrowed. @since 0.1 */
MV_API const char* mv_result_region_name(const mv_result* result, size_t index) MV_NOEXCEPT;

/**
 * @brief Measurements of region `index`.
 * @param[out] out filled; set out->struct_size first.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, index out of range); MV_ERR_ABI_MISMATCH.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_result_region(const mv_result* result, size_t index,
                                               mv_region_stats* out) MV_NOEXCEPT;

/**
 * @brief Writes the label map as NIfTI-1 (.nii or .nii.gz, chosen by the name) with the input
 * image's affine (LPS geometry converted to the NIfTI RAS convention).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, not a segmentation result); MV_ERR_IO.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_result_write_nifti(const mv_result* result,
                                                    const char* path) MV_NOEXCEPT;

/**
 * @brief Writes a PNG of the image with each class's outline drawn in its colour.
 * @param[in] image the image that was segmented.
 * @param[in] slice the slice of a volume; -1 picks the slice with the largest foreground.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT; MV_ERR_SHAPE_MISMATCH (another image's grid); MV_ERR_IO.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_result_write_overlay_png(const mv_result* result,
                                                          const mv_image* image, int64_t slice,
                                                          const char* path) MV_NOEXCEPT;

/**
 * @brief Writes the label map as a DICOM Segmentation object (binary, one segment per foreground
 * class) in the source's study, referencing the source instances frame by frame. The patient
 * and study modules are copied from the source files on disk.
 * @param[in] source the DICOM image or series that was segmented (loaded from files).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, not DICOM, decoded from memory);
 *         MV_ERR_SHAPE_MISMATCH; MV_ERR_IO.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_result_write_dicom_seg(const mv_result* result,
                                                        const mv_image* source,
                                                        const char* path) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* DICOM Structured Reports */
/* ---------------------------------------------------------------------------------------------- */

/** Options for mv_result_write_dicom_sr(). Initialise with mv_dicom_sr_options_init().
 *  @since 0.1 */
typedef struct mv_dicom_sr_options {
  uint32_t struct_size; /**< sizeof(mv_dicom_sr_options) as the caller compiled it */
  /** NULL (default), or the DICOM SEG file written for the same result
   *  (mv_result_write_dicom_seg()): each region's measurement group then references that SEG's
   *  instance and segment number. Borrowed for the call. */
  const char* seg_path;
} mv_dicom_sr_options;

/** @brief Fills `opts` with defaults. @return MV_OK, MV_ERR_INVALID_ARGUMENT (NULL),
 *  MV_ERR_ABI_MISMATCH (struct_size smaller than the first version). Thread-safety: safe.
 *  @since 0.1 */
MV_API MV_NODISCARD mv_status mv_dicom_sr_options_init(mv_dicom_sr_options* opts,
                                                       size_t struct_size) MV_NOEXCEPT;

/** @brief mv_dicom_sr_options_init() with the size this header was compiled with. */
static inline mv_status mv_dicom_sr_options_default(mv_dicom_sr_options* o) {
  return mv_dicom_sr_options_init(o, sizeof *o);
}

/**
 * @brief Writes a result as a DICOM Comprehensive 3D SR following TID 1500 (Measurement Report),
 * as IHE AI Results (AIR) describes it, in the source's study.
 *
 * The report is a new series (new Series and SOP Instance UIDs) in the source's study: the
 * Patient and Study modules are copied from the source's DICOM file, re-read from disk (optional
 * values invalid for their VR are left out); there is no Frame of Reference module (the IOD has
 * it only with SCOORD3D content; a referenced SEG carries it). The observer is a device (medvision,
 * the model's name and version); the image library lists the source instances. Classification
 * results get one measurement group per label: the finding, coded as the package's manifest
 * "codes" say; a qualitative evaluation (present / absent) from the decision at the package's
 * operating point (absent when it has none); the probability and the calibrated probability as
 * numeric measurements (UCUM "1"), each with the algorithm's name and version; the refer flag and
 * the conformal prediction set. Segmentation results get one group per region: the volume (mL,
 * 3D), the area (mm2, 2D) or, when the source gives no pixel spacing, the pixel count; with
 * `opts->seg_path`, each class's group references its segment in that SEG. The report is
 * PRELIMINARY, PARTIAL and UNVERIFIED; the series description says "NOT FOR DIAGNOSTIC USE"; the
 * Contributing Equipment Sequence names medvision and the model. docs/writers.md has the tree.
 * @param[in] result a classification or segmentation result.
 * @param[in] source the DICOM image or series the result was computed from, loaded from files
 *            (mv_image_load() or mv_image_load_series(); not mv_image_load_memory()).
 * @param[in] opts options, or NULL for defaults.
 * @param[in] path UTF-8 output path; an existing file is replaced.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, a source that was not read from DICOM files or
 *         whose files no longer hold the same instances, a seg_path that is not a DICOM SEG of
 *         the source's study or lacks a segment of the result); MV_ERR_SHAPE_MISMATCH (a
 *         segmentation result of another image's grid); MV_ERR_ABI_MISMATCH; MV_ERR_IO (a file
 *         cannot be read or the output written; the message names the path).
 * Ownership: the caller keeps every handle. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_result_write_dicom_sr(const mv_result* result,
                                                       const mv_image* source,
                                                       const mv_dicom_sr_options* opts,
                                                       const char* path) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Explanations */
/* ---------------------------------------------------------------------------------------------- */

/** A class activation map on the original image's grid. Immutable. */
typedef struct mv_heatmap mv_heatmap;

/** CAM methods. @since 0.1 */
typedef enum mv_cam_method {
  MV_CAM_GRADCAM = 0,           /**< Grad-CAM (Selvaraju et al. 2017) */
  MV_CAM_GRADCAM_PLUS_PLUS = 1, /**< Grad-CAM++ (Chattopadhyay et al. 2018) */
  MV_CAM_CAM = 2                /**< gradient-free CAM for global-pooling + linear heads */
} mv_cam_method;

/** Options for mv_explain(). Initialise with mv_explain_options_init(). */
typedef struct mv_explain_options {
  uint32_t struct_size;
  int32_t method; /**< an ::mv_cam_method (default MV_CAM_GRADCAM) */
  /** label index to explain; -1 (default): the most probable label (classification), the only
   *  foreground class (segmentation; an error when there are several) */
  int32_t label;
  /** Segmentation models: called after every sliding window (a 3D volume takes minutes); may be
   *  NULL (default). Returning 0 cancels (MV_ERR_CANCELLED). Classification maps ignore it. */
  mv_progress_fn progress;
  /** Passed to `progress`. */
  void* progress_user;
} mv_explain_options;

/** @brief Fills `opts` with defaults. @return MV_OK, MV_ERR_INVALID_ARGUMENT,
 *  MV_ERR_ABI_MISMATCH. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_explain_options_init(mv_explain_options* opts,
                                                      size_t struct_size) MV_NOEXCEPT;

/** @brief mv_explain_options_init() with the size this header was compiled with. */
static inline mv_status mv_explain_options_default(mv_explain_options* opts) {
  return mv_explain_options_init(opts, sizeof *opts);
}

/**
 * @brief Computes a heat map of where a model looked for a label, mapped back onto the original
 * image (the preprocessing's resize, crop, letterbox, resampling and reorientation undone).
 *
 * Classification models (2D images): Grad-CAM, Grad-CAM++ or CAM of the label's logit.
 * Segmentation models (2D or 3D): Grad-CAM or Grad-CAM++ of the class's logits
 * summed over the region where the model predicts the class, window by window over the sliding
 * window, blended as the segmentation is; the map has the input's depth
 * (mv_heatmap_image()), mv_heatmap_probability() is the class's mean probability over the region
 * and mv_heatmap_region_voxels() its size. docs/explain.md has the details.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, label out of range, CAM on a segmentation model,
 *         no label for a segmentation model with several classes); MV_ERR_CANCELLED (by the
 *         progress callback);
 *         MV_ERR_MODEL (the package declares no explain methods, or the model failed);
 *         MV_ERR_SHAPE_MISMATCH (classification: not a 2D image); MV_ERR_DEVICE;
 *         MV_ERR_ABI_MISMATCH.
 * Ownership: the caller owns *out; release with mv_heatmap_free().
 * Thread-safety: safe; many threads may explain with one model. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_explain(const mv_model* model, const mv_image* image,
                                         const mv_explain_options* opts,
                                         mv_heatmap** out) MV_NOEXCEPT;

/** @brief Releases a heat map. Accepts NULL. @since 0.1 */
MV_API void mv_heatmap_free(mv_heatmap* heatmap) MV_NOEXCEPT;
/** @brief {height, width} of the map (the original image's). @since 0.1 */
MV_API void mv_heatmap_shape(const mv_heatmap* heatmap, int64_t out_shape[2]) MV_NOEXCEPT;
/** @brief The map, depth*height*width floats in [0, 1], row-major (depth is 1 except for 3D
 *  segmentation maps; see mv_heatmap_image()). Borrowed. @since 0.1 */
MV_API const float* mv_heatmap_data(const mv_heatmap* heatmap) MV_NOEXCEPT;
/** @brief The explained label. Borrowed. @since 0.1 */
MV_API const char* mv_heatmap_label(const mv_heatmap* heatmap) MV_NOEXCEPT;
/** @brief Classification: the model's probability for the explained label. Segmentation: the
 *  class's mean probability over the explained region (NaN when the region is empty). @since 0.1 */
MV_API float mv_heatmap_probability(const mv_heatmap* heatmap) MV_NOEXCEPT;

/**
 * @brief The map as an image: one float32 channel, the source image's depth, size and geometry
 * (spacing, origin, direction), so that mv_image_write_nifti() writes it in register with the
 * source. Made on first call.
 * @return the image, or NULL for a NULL heat map or when memory runs out (mv_last_error() says
 *         so).
 * Ownership: borrowed; valid until mv_heatmap_free(). Thread-safety: safe. @since 0.1
 */
MV_API const mv_image* mv_heatmap_image(const mv_heatmap* heatmap) MV_NOEXCEPT;

/** @brief Slices of the map: 1 except for maps of 3D segmentation inputs. Thread-safety: safe.
 *  @since 0.1 */
MV_API int64_t mv_heatmap_depth(const mv_heatmap* heatmap) MV_NOEXCEPT;

/** @brief The slice that overlays, PNGs and Secondary Captures show: the one with the most heat
 *  (0 for 2D maps). Thread-safety: safe. @since 0.1 */
MV_API int64_t mv_heatmap_slice(const mv_heatmap* heatmap) MV_NOEXCEPT;

/** @brief Segmentation maps: voxels of the explained region (where the model predicts the
 *  class) on the source grid; 0 means the map is empty. -1 for classification maps.
 *  Thread-safety: safe. @since 0.1 */
MV_API int64_t mv_heatmap_region_voxels(const mv_heatmap* heatmap) MV_NOEXCEPT;

/**
 * @brief Renders the heat map over the image as interleaved RGB (height x width x 3 bytes; 3D
 * maps: the slice mv_heatmap_slice()), using the size-query pattern: pass buf = NULL to learn
 * *out_needed.
 * @param[in] image the image the map was computed for.
 * @param[in] alpha opacity of the colour map at its warmest, in [0, 1] (0.5 is a good default).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT; MV_ERR_SHAPE_MISMATCH (another image's size).
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_heatmap_overlay(const mv_heatmap* heatmap, const mv_image* image,
                                                 float alpha, uint8_t* buf, size_t cap,
                                                 size_t* out_needed) MV_NOEXCEPT;

/**
 * @brief Writes the overlay (or, with image == NULL, the coloured map alone) as a PNG file.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT; MV_ERR_SHAPE_MISMATCH; MV_ERR_IO.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_heatmap_write_png(const mv_heatmap* heatmap, const mv_image* image,
                                                   float alpha, const char* path) MV_NOEXCEPT;

/**
 * @brief Writes the overlay as a DICOM Secondary Capture image in the source's study.
 *
 * The object is a new series (new Series and SOP Instance UIDs) in the source's study: the
 * Patient and Study modules are copied from the source's DICOM file, re-read from disk (the image
 * itself never holds patient data), and nothing else about the patient is added. SeriesDescription
 * names the model, its version, the method and the label; ImageComments and DerivationDescription
 * carry the model's notice (e.g. "not for diagnostic use"); Source Image Sequence references the
 * source instance (3D maps: the instance of the slice shown, mv_heatmap_slice()).
 * @param[in] heatmap a heat map from mv_explain().
 * @param[in] source the image the map was computed for, loaded from a DICOM file (mv_image_load()
 *            or mv_image_load_series(); not mv_image_load_memory()).
 * @param[in] alpha opacity of the colour map at its warmest, in [0, 1] (0.5 is a good default).
 * @param[in] path UTF-8 output path; an existing file is replaced.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, alpha out of range, a source that was not read
 *         from a DICOM file or whose file no longer holds the same instance);
 *         MV_ERR_SHAPE_MISMATCH (another image's size); MV_ERR_IO (the source cannot be re-read
 *         or the output written; the message names the path).
 * Ownership: the caller keeps both handles. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_heatmap_write_dicom_sc(const mv_heatmap* heatmap,
                                                        const mv_image* source, float alpha,
                                                        const char* path) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Calibration */
/* ---------------------------------------------------------------------------------------------- */

/** Calibration methods. @since 0.1 */
typedef enum mv_calibration_method {
  MV_CALIBRATION_TEMPERATURE = 0, /**< one temperature per label (sigmoid) or per model (softmax) */
  MV_CALIBRATION_PLATT = 1,       /**< logistic a*z + b per label */
  MV_CALIBRATION_ISOTONIC = 2     /**< monotone step function per label */
} mv_calibration_method;

/** How each label's operating point is chosen. @since 0.1 */
typedef enum mv_operating_rule {
  MV_OPERATING_YOUDEN = 0,      /**< maximise sensitivity + specificity - 1 */
  MV_OPERATING_SENSITIVITY = 1, /**< highest threshold reaching `target` sensitivity */
  MV_OPERATING_SPECIFICITY = 2  /**< lowest threshold reaching `target` specificity */
} mv_operating_rule;

/** How the "refer to a human" band around each label's threshold is drawn. @since 0.1 */
typedef enum mv_refer_mode {
  /** [sigmoid(logit(t) - w), sigmoid(logit(t) + w)], w = refer_logit_half_width: the band
   *  scales with the threshold, [0.40, 0.60] at t = 0.5 but [0.020, 0.044] at t = 0.03 */
  MV_REFER_LOGIT = 0,
  MV_REFER_FIXED = 1, /**< [t - refer_half_width, t + refer_half_width], clipped to [0, 1] */
  /** (default) below: the largest cut whose lower group reaches NPV refer_npv; above: the
   *  smallest cut whose upper group reaches PPV refer_ppv (on the calibration data; when a target
   *  is out of reach the band runs to the lowest / highest score) */
  MV_REFER_PREDICTIVE_VALUE = 2,
  MV_REFER_NONE = 3 /**< no band */
} mv_refer_mode;

/** The nonconformity score of split-conformal sets (docs/calibration.md). @since 0.1 */
typedef enum mv_conformal_score {
  /** (default) LAC, 1 - p(true class): the smallest sets on average; sigmoid models: per label */
  MV_CONFORMAL_SCORE_LAC = 0,
  /** APS (non-randomised): the probability mass of the classes ranked at or above the true one;
   *  sets adapt to how sure the model is about each image. Softmax (single-label) models only. */
  MV_CONFORMAL_SCORE_APS = 1
} mv_conformal_score;

/** Options for mv_model_calibrate(). Initialise with mv_calibrate_options_init(). */
typedef struct mv_calibrate_options {
  uint32_t struct_size;
  int32_t method; /**< an ::mv_calibration_method (default temperature) */
  int32_t rule;   /**< an ::mv_operating_rule (default Youden) */
  double target;  /**< sensitivity or specificity target (default 0.9) */
  /** MV_REFER_FIXED: the band is threshold +/- this (default 0.1). 0 disables the band in every
   *  mode (as in the first layout of this struct). */
  double refer_half_width;
  int32_t conformal;            /**< non-zero: also fit split conformal prediction sets */
  double alpha;                 /**< conformal miscoverage (default 0.1) */
  const char* data_description; /**< free text recorded as provenance (borrowed; may be NULL) */
  const char* version;          /**< version of the new package (NULL: "<old>+cal") */
  /* Appended in 0.1 (after `version`): */
  int32_t refer_mode;            /**< an ::mv_refer_mode (default MV_REFER_PREDICTIVE_VALUE) */
  double refer_logit_half_width; /**< MV_REFER_LOGIT: half-width in log-odds (default 0.4) */
  double refer_npv;              /**< MV_REFER_PREDICTIVE_VALUE: NPV below the band (0.95) */
  double refer_ppv;              /**< MV_REFER_PREDICTIVE_VALUE: PPV above the band (0.9) */
  /* Appended in 0.1 (after `refer_ppv`): */
  /** an ::mv_conformal_score (default MV_CONFORMAL_SCORE_LAC); used when `conformal` is set.
   *  MV_CONFORMAL_SCORE_APS on a sigmoid model is MV_ERR_INVALID_ARGUMENT. @since 0.1 */
  int32_t conformal_score;
} mv_calibrate_options;

/** @brief Fills `opts` with defaults. @return MV_OK, MV_ERR_INVALID_ARGUMENT,
 *  MV_ERR_ABI_MISMATCH. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_calibrate_options_init(mv_calibrate_options* opts,
                                                        size_t struct_size) MV_NOEXCEPT;

/** @brief mv_calibrate_options_init() with the size this header was compiled with. */
static inline mv_status mv_calibrate_options_default(mv_calibrate_options* opts) {
  return mv_calibrate_options_init(opts, sizeof *opts);
}

/**
 * @brief Fits calibration and operating points on a labelled validation set and writes a new
 * package version to `out_dir`: the same model file, and a manifest whose "calibration" and
 * "thresholds" carry the fit, plus the metrics before and after and where they came from. Also
 * writes `calibration-report.json` and `reliability.png` there.
 * @param[in] logits `count` x label_count raw outputs (mv_result_logit() of each image).
 * @param[in] labels for sigmoid models `count` x label_count values in {0, 1}; for softmax
 *            models `count` class indices.
 * @param[in] out_dir a folder to create (must not hold a manifest already).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (sizes, label values, a label with one class only for
 *         the operating point, an unknown option value, APS conformal sets on a sigmoid model);
 *         MV_ERR_IO; MV_ERR_ABI_MISMATCH.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_calibrate(const mv_model* model, const float* logits,
                                                 const int32_t* labels, size_t count,
                                                 const mv_calibrate_options* opts,
                                                 const char* out_dir) MV_NOEXCEPT;

/**
 * @brief Compares a batch of a calibrated model's raw outputs with the score distribution
 * recorded when it was calibrated (a two-sample Kolmogorov-Smirnov test and the population
 * stability index per label), e.g. to notice that a new site needs recalibration.
 * @param[in] logits `count` x label_count raw outputs (mv_result_logit()).
 * @param[out] buf, cap, out_needed the report as JSON (size-query pattern): {"batch_size",
 *             "shifted", "labels": [{"label", "ks", "p_value", "psi", "shifted"}]}.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, count 0, or a package calibrated without a drift
 *         reference).
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_drift_check(const mv_model* model, const float* logits,
                                                   size_t count, char* buf, size_t cap,
                                                   size_t* out_needed) MV_NOEXCEPT;

/* ---- Evaluation ------------------------------------------------------------------------ */

/** The result of mv_evaluate(): the evaluation as JSON text. @since 0.1 */
typedef struct mv_evaluation mv_evaluation;

/** Options for mv_evaluate(). Initialise with mv_evaluate_options_init(). @since 0.1 */
typedef struct mv_evaluate_options {
  uint32_t struct_size;
  uint32_t bootstrap; /**< resamples of the AUROC CI and of the paired bootstrap (default 1000) */
  uint32_t bins;      /**< ECE bins (default 15) */
  uint32_t reserved;  /**< 0 */
  uint64_t seed;      /**< std::mt19937_64 seed of every bootstrap (default 20240601) */
  double level;       /**< CI level (default 0.95) */
  double threshold;   /**< also decide at this threshold in [0, 1]; negative: not (default -1) */
  double sensitivity; /**< also decide at the highest threshold reaching this sensitivity in
                           (0, 1]; 0: not (default 0) */
} mv_evaluate_options;

/** @brief Fills `opts` with the defaults. @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL);
 * MV_ERR_ABI_MISMATCH (struct_size smaller than version 1). Thread-safety: safe. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_evaluate_options_init(mv_evaluate_options* opts,
                                                       size_t struct_size) MV_NOEXCEPT;

/** @brief mv_evaluate_options_init() with the size this header was compiled with. */
static inline mv_status mv_evaluate_options_default(mv_evaluate_options* opts) {
  return mv_evaluate_options_init(opts, sizeof *opts);
}

/**
 * @brief Evaluates one or more classification models on the same labelled test set
 * (docs/evaluate.md): per label AUROC with a bootstrap CI, sensitivity / specificity / PPV / NPV
 * at each package's operating point (and at opts->threshold / opts->sensitivity), ECE, adaptive
 * ECE, Brier and NLL raw and calibrated, refer-band and conformal coverage, ROC / PR / reliability
 * curves, and for two or more models a paired comparison (DeLong's test, paired bootstrap).
 * @param[in] models `model_count` classification models with the same labels and activation.
 * @param[in] logits per model, `count` x label_count raw outputs (mv_result_logit()), same images
 *            in the same order.
 * @param[in] labels as for mv_model_calibrate(): `count` x label_count 0/1 (sigmoid) or `count`
 *            class indices (softmax).
 * @param[in] opts NULL for defaults.
 * @param[out] out the evaluation; free with mv_evaluation_free().
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, counts 0, models that differ in labels, labels out
 *         of range, bad options); MV_ERR_ABI_MISMATCH; MV_ERR_OUT_OF_MEMORY.
 * Ownership: the caller owns *out. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_evaluate(const mv_model* const* models, const float* const* logits,
                                          size_t model_count, const int32_t* labels, size_t count,
                                          const mv_evaluate_options* opts,
                                          mv_evaluation** out) MV_NOEXCEPT;

/** @brief The evaluation as UTF-8 JSON text ("" for NULL). Ownership: borrowed, valid until
 * mv_evaluation_free(). Thread-safety: safe. @since 0.1 */
MV_API const char* mv_evaluation_json(const mv_evaluation* evaluation) MV_NOEXCEPT;

/** @brief Frees an evaluation; NULL is a no-op. @since 0.1 */
MV_API void mv_evaluation_free(mv_evaluation* evaluation) MV_NOEXCEPT;

/* ---- Labels CSV ------------------------------------------------------------------------ */

/** A labelled image set read from a labels CSV by mv_labels_csv_read(). @since 0.1 */
typedef struct mv_labels_csv mv_labels_csv;

/**
 * @brief Reads the labels CSV that `medvision calibrate --labels` and `medvision evaluate` take
 * (docs/calibration.md): `path,label` (label names, '|'-separated for multi-label; "normal",
 * "none", "no finding" or empty mean no positive label unless the model has a label of that name)
 * or `path,<label>,...` with 0/1 columns named as the model's labels. Relative paths are relative
 * to the CSV's folder. The labels come out as mv_model_calibrate() and mv_evaluate() take them.
 * @param[in] labels, label_count the model's label names (mv_model_label()), matched
 *            case-insensitively.
 * @param[in] softmax non-zero for a softmax (single-label) model: one class per image.
 * @param[out] out the set; free with mv_labels_csv_free(). Untouched on error.
 * @return MV_OK; MV_ERR_IO (cannot open); MV_ERR_INVALID_ARGUMENT (NULL, no labels, or a problem
 *         in the file: mv_last_error() names the file, the line and the problem).
 * Ownership: the caller owns *out. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_labels_csv_read(const char* path, const char* const* labels,
                                                 size_t label_count, int32_t softmax,
                                                 mv_labels_csv** out) MV_NOEXCEPT;

/** @brief Number of images (0 for NULL). Thread-safety: safe. @since 0.1 */
MV_API size_t mv_labels_csv_count(const mv_labels_csv* csv) MV_NOEXCEPT;

/** @brief Image `index`'s path ("" for NULL or out of range). Ownership: borrowed, valid until
 * mv_labels_csv_free(). Thread-safety: safe. @since 0.1 */
MV_API const char* mv_labels_csv_path(const mv_labels_csv* csv, size_t index) MV_NOEXCEPT;

/** @brief The labels: count x label_count values in {0, 1} (sigmoid) or count class indices
 * (softmax); `*out_count` (if not NULL) receives their number. NULL for NULL. Ownership:
 * borrowed, valid until mv_labels_csv_free(). Thread-safety: safe. @since 0.1 */
MV_API const int32_t* mv_labels_csv_labels(const mv_labels_csv* csv, size_t* out_count) MV_NOEXCEPT;

/** @brief Frees a set; NULL is a no-op. @since 0.1 */
MV_API void mv_labels_csv_free(mv_labels_csv* csv) MV_NOEXCEPT;
/* ---- Calibration with its report ----------------------------------------------------------- */

/** The outcome of mv_model_calibrate_report(): the new package and the calibration report.
 *  Immutable. @since 0.1 */
typedef struct mv_calibration_report mv_calibration_report;

/**
 * @brief mv_model_calibrate(), also returning what was fitted and measured, so that a caller
 * need not read the new package back from disk.
 * @param[out] out the report; free with mv_calibration_report_free(). Untouched on error.
 * @return as mv_model_calibrate(); MV_ERR_INVALID_ARGUMENT also for a NULL `out`.
 * Ownership: the caller owns *out. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_calibrate_report(const mv_model* model, const float* logits,
                                                        const int32_t* labels, size_t count,
                                                        const mv_calibrate_options* opts,
                                                        const char* out_dir,
                                                        mv_calibration_report** out) MV_NOEXCEPT;

/** @brief The report as UTF-8 JSON text: {"dir", "name", "version", "calibration", "thresholds",
 *  "report"}, "report" being the content of calibration-report.json ({"before", "after",
 *  "warnings"}) and "calibration" / "thresholds" the new manifest's ("" for NULL). Ownership:
 *  borrowed, valid until mv_calibration_report_free(). Thread-safety: safe. @since 0.1 */
MV_API const char* mv_calibration_report_json(const mv_calibration_report* report) MV_NOEXCEPT;

/** @brief Frees a report; NULL is a no-op. @since 0.1 */
MV_API void mv_calibration_report_free(mv_calibration_report* report) MV_NOEXCEPT;

/* ---- Names of enum values ----------------------------------------------------------------- */
/*
 * One spelling of every option value, for command lines, configuration files and bindings:
 * mv_<enum>_name() returns a static lower-case string (NULL for a value out of range);
 * mv_<enum>_parse() reads it back (exact match; a few aliases noted below) and writes *out, or
 * returns MV_ERR_INVALID_ARGUMENT with a message listing the accepted names (*out untouched).
 * Thread-safety: safe. @since 0.1
 */

/** "temperature", "platt", "isotonic". @since 0.1 */
MV_API const char* mv_calibration_method_name(mv_calibration_method value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_calibration_method_parse(const char* name,
                                                          mv_calibration_method* out) MV_NOEXCEPT;
/** "youden", "sensitivity", "specificity". @since 0.1 */
MV_API const char* mv_operating_rule_name(mv_operating_rule value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_operating_rule_parse(const char* name,
                                                      mv_operating_rule* out) MV_NOEXCEPT;
/** "logit", "fixed", "predictive-value", "none". @since 0.1 */
MV_API const char* mv_refer_mode_name(mv_refer_mode value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_refer_mode_parse(const char* name, mv_refer_mode* out) MV_NOEXCEPT;
/** "lac", "aps". @since 0.1 */
MV_API const char* mv_conformal_score_name(mv_conformal_score value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_conformal_score_parse(const char* name,
                                                       mv_conformal_score* out) MV_NOEXCEPT;
/** "gradcam", "gradcam++" (parse also accepts "gradcampp"), "cam". @since 0.1 */
MV_API const char* mv_cam_method_name(mv_cam_method value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_cam_method_parse(const char* name, mv_cam_method* out) MV_NOEXCEPT;
/** "float32", "reduced". @since 0.1 */
MV_API const char* mv_precision_name(mv_precision value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_precision_parse(const char* name, mv_precision* out) MV_NOEXCEPT;
/** "classification", "segmentation". @since 0.1 */
MV_API const char* mv_task_name(mv_task value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_task_parse(const char* name, mv_task* out) MV_NOEXCEPT;
/** "sigmoid", "softmax". @since 0.1 */
MV_API const char* mv_activation_name(mv_activation value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_activation_parse(const char* name, mv_activation* out) MV_NOEXCEPT;
/**
 * Evaluates segmentation models against reference label maps, one case at a time (nothing
 * image-sized is kept): per region (every foreground class, then the manifest's unions) the Dice
 * coefficient, the 95th-percentile Hausdorff distance between surfaces (mm when the image's pixel
 * spacing is known, else pixels / voxels, and the JSON says which) and the volume (area) error,
 * with case-level bootstrap CIs, and for two or more models a paired bootstrap of the differences
 * (docs/evaluate.md, "Segmentation"). @since 0.1
 */
typedef struct mv_segmentation_evaluator mv_segmentation_evaluator;

/**
 * @brief Starts a segmentation evaluation of `model_count` segmentation models with the same
 * labels and regions. Of the options, bootstrap, seed and level are used.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, count 0, a classification model, models that
 *         differ in labels or regions, bad options); MV_ERR_ABI_MISMATCH.
 * Ownership: the caller owns *out; free with mv_segmentation_evaluator_free().
 * Thread-safety: one evaluator per thread. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_segmentation_evaluator_create(
    const mv_model* const* models, size_t model_count, const mv_evaluate_options* opts,
    mv_segmentation_evaluator** out) MV_NOEXCEPT;

/**
 * @brief Adds one case: the reference label map and each model's mv_result_mask() of the image.
 * @param[in] case_name names the case in the JSON and in messages (e.g. the image path).
 * @param[in] reference one channel on the image's grid whose values are label-map values as
 *            mv_result_mask() gives them (0 background; softmax packages: value v is label v;
 *            sigmoid packages: value v is label v - 1).
 * @param[in] masks `model_count` predicted label maps, in the order of the models.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, a value that is not a label index, a case whose
 *         spacing is known when earlier ones' was not or the reverse, 2D and 3D mixed);
 *         MV_ERR_SHAPE_MISMATCH (the reference is not on the image's grid). @since 0.1
 */
MV_API MV_NODISCARD mv_status
mv_segmentation_evaluator_add(mv_segmentation_evaluator* evaluator, const char* case_name,
                              const mv_image* reference, const mv_image* const* masks) MV_NOEXCEPT;

/**
 * @brief The evaluation of the cases added so far, as JSON (mv_evaluation_json()).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, no case added).
 * Ownership: the caller owns *out; free with mv_evaluation_free(). @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_segmentation_evaluator_finish(
    const mv_segmentation_evaluator* evaluator, mv_evaluation** out) MV_NOEXCEPT;

/** @brief Frees an evaluator; NULL is a no-op. @since 0.1 */
MV_API void mv_segmentation_evaluator_free(mv_segmentation_evaluator* evaluator) MV_NOEXCEPT;

/* ---------------------------------------------------------------------------------------------- */
/* Many images: the streaming pipeline */
/* ---------------------------------------------------------------------------------------------- */

/** The results of mv_model_run_many(): one result or one error per input, in input order.
 *  @since 0.1 */
typedef struct mv_result_list mv_result_list;

/** Options for mv_model_run_many(). Initialise with mv_pipeline_options_init(). @since 0.1 */
typedef struct mv_pipeline_options {
  uint32_t struct_size;
  /** Classification: images per inference batch (>= 1); 0 (default) means 8. Segmentation models
   *  run one image at a time whatever this says. */
  int32_t batch_size;
  /** Decode/preprocess worker threads; 0 (default) means min(2, the CPUs this process may use).
   *  They run while the calling thread runs inference on LibTorch's intra-op threads
   *  (mv_model_options.num_threads): decode_threads + num_threads <= CPUs avoids
   *  oversubscription. */
  int32_t decode_threads;
  /** Prepared, model-sized inputs that may wait for inference, in batches (>= 1); 0 (default)
   *  means 2. Segmentation: whole decoded images, this many. Bounds the memory. */
  int32_t queue_batches;
  /** Called on the calling thread after each inference batch and each failed input, with the
   *  inputs finished so far (`done`) of `total`; return 0 to cancel. May be NULL (default). */
  mv_progress_fn progress;
  /** Passed to `progress`. */
  void* progress_user;
  /* Appended in 0.1 (after `progress_user`): */
  /** How `paths` are decoded (frame, VOI preset, series, value limit, pixel spacing), exactly
   *  as mv_image_load() with these options; NULL (default): mv_image_load()'s defaults. Borrowed
   *  for the duration of the call; invalid options fail the call with
   *  MV_ERR_INVALID_ARGUMENT before any input is read. @since 0.1 */
  const mv_image_load_options* load;
} mv_pipeline_options;

/** @brief Fills `opts` with defaults. @return MV_OK, MV_ERR_INVALID_ARGUMENT,
 *  MV_ERR_ABI_MISMATCH. Thread-safety: safe. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_pipeline_options_init(mv_pipeline_options* opts,
                                                       size_t struct_size) MV_NOEXCEPT;

/** @brief mv_pipeline_options_init() with the size this header was compiled with. */
static inline mv_status mv_pipeline_options_default(mv_pipeline_options* opts) {
  return mv_pipeline_options_init(opts, sizeof *opts);
}

/**
 * @brief Runs a model on many inputs, streaming: decode and preprocessing on a few worker threads
 * into a bounded queue of model-sized inputs, batched inference on the calling thread, so that
 * decoding the next images overlaps inference of the current batch and at most
 * `decode_threads` full-size decoded images exist at once. Results equal mv_model_run_batch()'s
 * on the same batches (with batch_size 1, mv_model_run()'s), in input order.
 *
 * Input i is `paths[i]` when `paths` is not NULL and `paths[i]` is not NULL (decoded as
 * mv_image_load() with `opts->load`), else `images[i]` (borrowed for the duration of the
 * call). One bad input never fails the others: each gets its own status and a message naming the
 * file (or "images[i]") and the problem (mv_result_list_status(), mv_result_list_message()).
 * @param[in] paths `count` UTF-8 paths (entries may be NULL), or NULL.
 * @param[in] images `count` images (entries may be NULL where a path is given), or NULL.
 * @param[in] opts options, or NULL for defaults.
 * @param[out] out the per-input results, set only when the call returns MV_OK.
 * @return MV_OK (even if some or all inputs failed: see mv_result_list_status()) and
 *         count 0 gives an empty list; MV_ERR_INVALID_ARGUMENT (NULL model or out, both arrays
 *         NULL with count > 0, an input with neither a path nor an image, bad options);
 *         MV_ERR_CANCELLED (the progress callback returned 0: every worker has stopped and
 *         nothing is returned); MV_ERR_ABI_MISMATCH; MV_ERR_OUT_OF_MEMORY.
 * Ownership: the caller owns *out; free with mv_result_list_free().
 * Thread-safety: safe; many threads may run the same model at once. The progress callback is
 * called on the calling thread. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_run_many(const mv_model* model, const char* const* paths,
                                                const mv_image* const* images, size_t count,
                                                const mv_pipeline_options* opts,
                                                mv_result_list** out) MV_NOEXCEPT;

/** @brief The number of inputs (0 for NULL). Thread-safety: safe. @since 0.1 */
MV_API size_t mv_result_list_count(const mv_result_list* list) MV_NOEXCEPT;

/** @brief Input i's status: MV_OK when it has a result; MV_ERR_INVALID_ARGUMENT when `list` is
 *  NULL or i is out of range. Thread-safety: safe. @since 0.1 */
MV_API mv_status mv_result_list_status(const mv_result_list* list, size_t i) MV_NOEXCEPT;

/** @brief Input i's error message (UTF-8, names the file and the problem; never PHI), "" when it
 *  succeeded, NULL when out of range. Ownership: borrowed, valid while the list lives. @since 0.1
 */
MV_API const char* mv_result_list_message(const mv_result_list* list, size_t i) MV_NOEXCEPT;

/** @brief Input i's result, NULL when it failed, was taken, or i is out of range.
 *  Ownership: borrowed, valid while the list lives. Thread-safety: safe. @since 0.1 */
MV_API const mv_result* mv_result_list_get(const mv_result_list* list, size_t i) MV_NOEXCEPT;

/** @brief Takes input i's result out of the list (NULL when there is none); the list then holds
 *  none for i. Ownership: the caller owns the result; free with mv_result_free().
 *  Thread-safety: not with other calls on the same list. @since 0.1 */
MV_API mv_result* mv_result_list_take(mv_result_list* list, size_t i) MV_NOEXCEPT;

/** @brief Frees a list and the results still in it; NULL is a no-op. @since 0.1 */
MV_API void mv_result_list_free(mv_result_list* list) MV_NOEXCEPT;

/* ---- Prior shift: a site's label prevalence from unlabelled images -------------------------- */

/** Options for mv_model_estimate_prior() and mv_model_adapt_prior(). Initialise with
 *  mv_prior_shift_options_init(). @since 0.1 */
typedef struct mv_prior_shift_options {
  uint32_t struct_size;
  int32_t max_iterations; /**< EM iterations at most (default 1000) */
  double tolerance;       /**< EM stops when every prior moves less than this (default 1e-8) */
  /** The priors the calibration was fitted at, `source_prior_count` == label_count values in
   *  (0, 1) (softmax models: summing to 1). NULL (default): the manifest's
   *  calibration.fitted_on.positives / n; a package calibrated before those were recorded needs
   *  them here. Borrowed for the duration of the call. */
  const double* source_prior;
  size_t source_prior_count;
  const char* data_description; /**< free text recorded as provenance (borrowed; may be NULL) */
  const char* version; /**< mv_model_adapt_prior(): the new version (NULL: "<old>+prior") */
} mv_prior_shift_options;

/** @brief Fills `opts` with defaults. @return MV_OK, MV_ERR_INVALID_ARGUMENT,
 *  MV_ERR_ABI_MISMATCH. Thread-safety: safe. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_prior_shift_options_init(mv_prior_shift_options* opts,
                                                          size_t struct_size) MV_NOEXCEPT;

/** @brief mv_prior_shift_options_init() with the size this header was compiled with. */
static inline mv_status mv_prior_shift_options_default(mv_prior_shift_options* opts) {
  return mv_prior_shift_options_init(opts, sizeof *opts);
}

/**
 * @brief Estimates the prevalence of each label at a new site from a calibrated classification
 * model's raw outputs on unlabelled images there: the EM algorithm of Saerens, Latinne &
 * Decaestecker (2002) on the calibrated probabilities (per label for sigmoid models, over the
 * classes jointly for softmax models), started at the calibration set's priors, with their
 * likelihood-ratio test of "the priors changed", and the drift check of the same outputs
 * (mv_model_drift_check()) so that a change in p(x | y), which EM assumes away, shows.
 * Writes nothing.
 * @param[in] logits `count` x label_count raw outputs (mv_result_logit()).
 * @param[in] opts NULL for defaults.
 * @param[out] buf, cap, out_needed the report as JSON (size-query pattern): {"model", "version",
 *             "labels", "prior_shift": {"method": "em_saerens2002", "source_prior",
 *             "target_prior", "images", "iterations", "converged", "log_likelihood",
 *             "lr_test": {"statistic", "dof", "p_value"}, "warnings", "data", "date"},
 *             "thresholds" (as the adapted package would carry them), "drift" (null without a
 *             drift reference), "mean_probability": {"before", "after"}} (docs/calibration.md).
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, count 0, a model that is not a calibrated
 *         classification model, no recorded source prior and none given, a non-finite output);
 *         MV_ERR_ABI_MISMATCH.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_estimate_prior(const mv_model* model, const float* logits,
                                                      size_t count,
                                                      const mv_prior_shift_options* opts, char* buf,
                                                      size_t cap, size_t* out_needed) MV_NOEXCEPT;

/**
 * @brief mv_model_estimate_prior(), then writes a new package version to `out_dir`: the same
 * model file, a manifest whose calibration carries "prior_shift" (applied to every result after
 * the calibration map) and whose thresholds are mapped so that every image keeps its decision,
 * and `prior-shift-report.json` (the report).
 * @param[in] out_dir a folder to create (must not hold a manifest already).
 * @return as mv_model_estimate_prior(); MV_ERR_INVALID_ARGUMENT also for a NULL or existing
 *         `out_dir`; MV_ERR_IO.
 * Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_adapt_prior(const mv_model* model, const float* logits,
                                                   size_t count, const mv_prior_shift_options* opts,
                                                   const char* out_dir) MV_NOEXCEPT;

/**
 * @brief mv_model_adapt_prior(), also returning the report ({"dir", "name", "version"} added) as
 * an ::mv_calibration_report (read it with mv_calibration_report_json()).
 * @param[out] out the report; free with mv_calibration_report_free(). Untouched on error.
 * @return as mv_model_adapt_prior(); MV_ERR_INVALID_ARGUMENT also for a NULL `out`.
 * Ownership: the caller owns `*out`. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_model_adapt_prior_report(const mv_model* model,
                                                          const float* logits, size_t count,
                                                          const mv_prior_shift_options* opts,
                                                          const char* out_dir,
                                                          mv_calibration_report** out) MV_NOEXCEPT;

/* ---- Reference label maps (DICOM SEG) ------------------------------------------------------ */

/** What mv_label_map_load() does where segments of a DICOM SEG overlap. @since 0.1 */
typedef enum mv_label_overlap {
  MV_LABEL_OVERLAP_ERROR = 0,  /**< refuse the SEG (MV_ERR_INVALID_ARGUMENT) */
  MV_LABEL_OVERLAP_LOWEST = 1, /**< the lowest label-map value wins */
  MV_LABEL_OVERLAP_HIGHEST = 2 /**< the highest label-map value wins */
} mv_label_overlap;

/** Options for mv_label_map_load(). Initialise with mv_label_map_options_init(). @since 0.1 */
typedef struct mv_label_map_options {
  uint32_t struct_size;
  /** Segment labels (SegmentLabel, 0062,0005) and the label-map value each becomes: segment
   *  `labels[i]` gets `values[i]` (values NULL: i + 1). Matched exactly, else ignoring case and
   *  treating ' ', '_' and '-' alike. NULL labels (label_count 0): the segment number is the
   *  value. Borrowed for the call. Default NULL / 0. */
  const char* const* labels;
  const int32_t* values;
  size_t label_count;
  int32_t overlap;             /**< an ::mv_label_overlap; default MV_LABEL_OVERLAP_ERROR */
  double fractional_threshold; /**< FRACTIONAL SEGs: in the segment where value / max >= this;
                                    default 0.5 */
} mv_label_map_options;

/** @brief Fills `opts` with defaults and sets struct_size. @return MV_OK; MV_ERR_INVALID_ARGUMENT
 *  for NULL; MV_ERR_ABI_MISMATCH for a struct_size below version 1. @since 0.1 */
MV_API MV_NODISCARD mv_status mv_label_map_options_init(mv_label_map_options* opts,
                                                        size_t struct_size) MV_NOEXCEPT;

/** @brief mv_label_map_options_init() with the size this header was compiled with. */
static inline mv_status mv_label_map_options_default(mv_label_map_options* opts) {
  return mv_label_map_options_init(opts, sizeof *opts);
}

/**
 * @brief Reads a reference label map for `image` (e.g. for evaluation): one channel on exactly
 * `image`'s grid (its geometry copied), value 0 = background.
 *
 * A DICOM Segmentation object (SOP Class 1.2.840.10008.5.1.4.1.1.66.4; BINARY, or FRACTIONAL
 * thresholded at opts->fractional_threshold) is placed on the grid: each segment becomes the
 * value its SegmentLabel maps to (opts), each frame goes to the slice whose SOP instance (and
 * frame) its Derivation Image / Source Image Sequence references among `image`'s DICOM sources,
 * else to the slice at its Image Position (Patient) along `image`'s geometry (Rows, Columns,
 * orientation and pixel spacing must be `image`'s; a SEG of another frame of reference than a
 * DICOM image's is refused); for a single 2D image without a frame of reference, every frame
 * lies on it. Slices without a frame are background. Any other file medvision loads (NIfTI,
 * PNG, DICOM image) is returned as loaded, after checking that it has one channel and `image`'s
 * width, height and depth. docs/evaluate.md has the rules in full.
 * @param[in] path UTF-8 path of the label map file.
 * @param[in] image the image the label map belongs to (its grid and DICOM sources).
 * @param[in] opts NULL for defaults.
 * @param[out] out the label map; free with mv_image_free(). Untouched on error.
 * @return MV_OK; MV_ERR_INVALID_ARGUMENT (NULL, a segment label not in opts->labels, segments
 *         that overlap under MV_LABEL_OVERLAP_ERROR, a frame without a segment or a place on the
 *         grid); MV_ERR_SHAPE_MISMATCH (another grid: size, orientation, spacing, position,
 *         frame of reference); MV_ERR_UNSUPPORTED_FORMAT (a LABELMAP SEG); MV_ERR_CORRUPT_DATA
 *         (a frame missing from the pixel data or functional groups); MV_ERR_IO;
 *         MV_ERR_ABI_MISMATCH. Messages name the file, the frame or the segment; never patient
 *         values.
 * Ownership: the caller owns `*out`. Thread-safety: safe. @since 0.1
 */
MV_API MV_NODISCARD mv_status mv_label_map_load(const char* path, const mv_image* image,
                                                const mv_label_map_options* opts,
                                                mv_image** out) MV_NOEXCEPT;

/* ---- Names of enum values (continued) ------------------------------------------------------ */
/* As the names above: static strings, NULL out of range; parse is exact and lists the names.
 * Thread-safety: safe. */

/** "error", "lowest", "highest" (mv_label_map_options.overlap). @since 0.1 */
MV_API const char* mv_label_overlap_name(mv_label_overlap value) MV_NOEXCEPT;
/** @since 0.1 */
MV_API MV_NODISCARD mv_status mv_label_overlap_parse(const char* name,
                                                     mv_label_overlap* out) MV_NOEXCEPT;

MV_END_DECL

/** @} */
#endif /* MEDVISION_H */
