// Layout of the public structs is ABI: these must never change within a major version
// (fields are only appended, which changes sizeof but never an existing offset).
#include <catch2/catch.hpp>
#include <cstddef>

#include "medvision/medvision.h"

static_assert(offsetof(mv_tensor_view, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_tensor_view, dtype) == 4, "ABI");
static_assert(offsetof(mv_tensor_view, data) == 8, "ABI");
static_assert(offsetof(mv_tensor_view, ndim) == 16, "ABI");
static_assert(offsetof(mv_tensor_view, shape) == 24, "ABI");
static_assert(offsetof(mv_tensor_view, strides) == 24 + 8 * MV_MAX_DIMS, "ABI");
static_assert(sizeof(mv_tensor_view) == 24 + 16 * MV_MAX_DIMS, "ABI");

static_assert(offsetof(mv_image_load_options, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_image_load_options, frame) == 4, "ABI");
static_assert(offsetof(mv_image_load_options, apply_voi) == 8, "ABI");
static_assert(offsetof(mv_image_load_options, max_values) == 16, "ABI");
static_assert(offsetof(mv_image_load_options, series_uid) == 24, "ABI");
static_assert(offsetof(mv_image_load_options, pixel_spacing) == 32, "ABI 0.2: appended");
static_assert(sizeof(mv_image_load_options) == 48, "ABI");

static_assert(offsetof(mv_image_geometry, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_image_geometry, spacing) == 8, "ABI");
static_assert(offsetof(mv_image_geometry, origin) == 32, "ABI");
static_assert(offsetof(mv_image_geometry, direction) == 56, "ABI");
static_assert(offsetof(mv_image_geometry, photometric) == 128, "ABI");
static_assert(sizeof(mv_image_geometry) == 136, "ABI");

static_assert(offsetof(mv_calibrate_options, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_calibrate_options, method) == 4, "ABI");
static_assert(offsetof(mv_calibrate_options, rule) == 8, "ABI");
static_assert(offsetof(mv_calibrate_options, target) == 16, "ABI");
static_assert(offsetof(mv_calibrate_options, refer_half_width) == 24, "ABI");
static_assert(offsetof(mv_calibrate_options, conformal) == 32, "ABI");
static_assert(offsetof(mv_calibrate_options, alpha) == 40, "ABI");
static_assert(offsetof(mv_calibrate_options, data_description) == 48, "ABI");
static_assert(offsetof(mv_calibrate_options, version) == 56, "ABI");
// Appended (refer-band rules): everything above keeps its offset.
static_assert(offsetof(mv_calibrate_options, refer_mode) == 64, "ABI");
static_assert(offsetof(mv_calibrate_options, refer_logit_half_width) == 72, "ABI");
static_assert(offsetof(mv_calibrate_options, refer_npv) == 80, "ABI");
static_assert(offsetof(mv_calibrate_options, refer_ppv) == 88, "ABI");
// Appended (conformal score): everything above keeps its offset.
static_assert(offsetof(mv_calibrate_options, conformal_score) == 96, "ABI");
static_assert(sizeof(mv_calibrate_options) == 104, "ABI");

static_assert(offsetof(mv_prior_shift_options, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_prior_shift_options, max_iterations) == 4, "ABI");
static_assert(offsetof(mv_prior_shift_options, tolerance) == 8, "ABI");
static_assert(offsetof(mv_prior_shift_options, source_prior) == 16, "ABI");
static_assert(offsetof(mv_prior_shift_options, source_prior_count) == 24, "ABI");
static_assert(offsetof(mv_prior_shift_options, data_description) == 32, "ABI");
static_assert(offsetof(mv_prior_shift_options, version) == 40, "ABI");
static_assert(sizeof(mv_prior_shift_options) == 48, "ABI");

static_assert(offsetof(mv_dicom_sr_options, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_dicom_sr_options, seg_path) == 8, "ABI");
static_assert(sizeof(mv_dicom_sr_options) == 16, "ABI");

static_assert(offsetof(mv_pipeline_options, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_pipeline_options, batch_size) == 4, "ABI");
static_assert(offsetof(mv_pipeline_options, decode_threads) == 8, "ABI");
static_assert(offsetof(mv_pipeline_options, queue_batches) == 12, "ABI");
static_assert(offsetof(mv_pipeline_options, progress) == 16, "ABI");
static_assert(offsetof(mv_pipeline_options, progress_user) == 24, "ABI");
static_assert(offsetof(mv_pipeline_options, load) == 32, "ABI");
static_assert(sizeof(mv_pipeline_options) == 40, "ABI");

static_assert(offsetof(mv_label_map_options, struct_size) == 0, "struct_size first");
static_assert(offsetof(mv_label_map_options, labels) == 8, "ABI");
static_assert(offsetof(mv_label_map_options, values) == 16, "ABI");
static_assert(offsetof(mv_label_map_options, label_count) == 24, "ABI");
static_assert(offsetof(mv_label_map_options, overlap) == 32, "ABI");
static_assert(offsetof(mv_label_map_options, fractional_threshold) == 40, "ABI");
static_assert(sizeof(mv_label_map_options) == 48, "ABI");

static_assert(sizeof(mv_status) == sizeof(int), "enums are int-sized");

TEST_CASE("abi: public struct layouts are pinned (compile-time checks)", "[abi]") {
  SUCCEED("static_asserts hold");
}
