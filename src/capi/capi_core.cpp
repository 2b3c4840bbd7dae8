// Version, status, last error, logging and small helpers of the C API.

#include <exception>
#include <string>

#include "capi/capi_guard.hpp"
#include "common/log.hpp"

namespace medvision::capi {

mv_status fail_with(const std::exception_ptr& e) noexcept {
  try {
    const ErrorInfo info = error_info(e);
    return fail(info.status, info.message.c_str());
  } catch (...) {  // building the message itself ran out of memory
    return fail(MV_ERR_OUT_OF_MEMORY, "out of memory");
  }
}

}  // namespace medvision::capi

extern "C" {

const char* mv_status_name(mv_status status) MV_NOEXCEPT {
  switch (status) {
    case MV_OK:
      return "MV_OK";
    case MV_ERR_INVALID_ARGUMENT:
      return "MV_ERR_INVALID_ARGUMENT";
    case MV_ERR_OUT_OF_MEMORY:
      return "MV_ERR_OUT_OF_MEMORY";
    case MV_ERR_IO:
      return "MV_ERR_IO";
    case MV_ERR_UNSUPPORTED_FORMAT:
      return "MV_ERR_UNSUPPORTED_FORMAT";
    case MV_ERR_CORRUPT_DATA:
      return "MV_ERR_CORRUPT_DATA";
    case MV_ERR_MODEL:
      return "MV_ERR_MODEL";
    case MV_ERR_DEVICE:
      return "MV_ERR_DEVICE";
    case MV_ERR_SHAPE_MISMATCH:
      return "MV_ERR_SHAPE_MISMATCH";
    case MV_ERR_ABI_MISMATCH:
      return "MV_ERR_ABI_MISMATCH";
    case MV_ERR_CANCELLED:
      return "MV_ERR_CANCELLED";
    case MV_ERR_NOT_IMPLEMENTED:
      return "MV_ERR_NOT_IMPLEMENTED";
    case MV_ERR_INTERNAL:
      return "MV_ERR_INTERNAL";
    case MV_ERR_UNKNOWN:
      return "MV_ERR_UNKNOWN";
  }
  return "MV_ERR_UNKNOWN_STATUS";
}

const char* mv_last_error(void) MV_NOEXCEPT { return medvision::last_error(); }

uint32_t mv_version_number(void) MV_NOEXCEPT { return MV_VERSION_NUMBER; }
const char* mv_version_string(void) MV_NOEXCEPT { return MV_VERSION_STRING; }
uint32_t mv_abi_version(void) MV_NOEXCEPT { return MV_ABI_VERSION; }

void mv_set_log_callback(mv_log_fn fn, void* user, mv_log_level min_level) MV_NOEXCEPT {
  medvision::set_log_callback(fn, user, min_level);
}

size_t mv_dtype_size(mv_dtype dtype) MV_NOEXCEPT {
  switch (dtype) {
    case MV_DTYPE_UINT8:
    case MV_DTYPE_INT8:
      return 1;
    case MV_DTYPE_UINT16:
    case MV_DTYPE_INT16:
      return 2;
    case MV_DTYPE_FLOAT32:
    case MV_DTYPE_UINT32:
    case MV_DTYPE_INT32:
      return 4;
    case MV_DTYPE_FLOAT64:
      return 8;
  }
  return 0;
}

}  // extern "C"
