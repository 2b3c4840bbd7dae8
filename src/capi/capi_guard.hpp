#pragma once
// MV_CAPI_BEGIN / MV_CAPI_END wrap every extern "C" body that can fail: they clear the last error
// on entry and translate every exception into a status plus a message (ONNX Runtime's
// API_IMPL_BEGIN/END). No exception ever crosses the C boundary.

#include <cstring>
#include <exception>
#include <string>

#include "common/error.hpp"
#include "medvision/medvision.h"

namespace medvision::capi {

inline mv_status fail(mv_status status, const char* message) noexcept {
  set_last_error(message);
  return status;
}

// Sets the last error from an exception and returns its status, by the one mapping in
// common/error.hpp (error_info) that the streaming pipeline's per-input errors use too. LibTorch's
// c10::Error never gets here: src/infer rethrows it as medvision::Error with a status.
mv_status fail_with(const std::exception_ptr& e) noexcept;

// Copies a caller's options struct of `caller_size` bytes over a defaulted one, so that old
// clients get new defaults and new clients' extra fields are ignored by an old library.
template <typename T>
mv_status copy_options(const T* in, T* out, size_t min_size, const char* what) noexcept {
  if (in == nullptr) return MV_OK;
  const size_t caller = in->struct_size;
  if (caller < min_size) {
    set_last_error(what);
    return MV_ERR_ABI_MISMATCH;
  }
  const uint32_t own = out->struct_size;
  std::memcpy(static_cast<void*>(out), in, caller < sizeof(T) ? caller : sizeof(T));
  out->struct_size = own;
  return MV_OK;
}

// The body of every `mv_*_options_init(opts, struct_size)`: refuses sizes below version 1,
// zeroes a newer caller's larger struct, and copies the defaults over what both sides know.
template <typename T>
mv_status init_options(T* opts, size_t struct_size, size_t min_size, const T& defaults,
                       const char* name) noexcept {
  if (opts == nullptr) {
    set_last_error((std::string(name) + ": opts is NULL").c_str());
    return MV_ERR_INVALID_ARGUMENT;
  }
  if (struct_size < min_size) {
    set_last_error(
        (std::string(name) + ": struct_size is smaller than any known version of the struct")
            .c_str());
    return MV_ERR_ABI_MISMATCH;
  }
  std::memset(static_cast<void*>(opts), 0, struct_size);
  std::memcpy(static_cast<void*>(opts), &defaults,
              struct_size < sizeof(T) ? struct_size : sizeof(T));
  opts->struct_size = static_cast<uint32_t>(struct_size);
  return MV_OK;
}

}  // namespace medvision::capi

#define MV_CAPI_BEGIN              \
  ::medvision::clear_last_error(); \
  try {
#define MV_CAPI_END                                                \
  }                                                                \
  catch (...) {                                                    \
    return ::medvision::capi::fail_with(std::current_exception()); \
  }

// For NULL checks at the top of a C function.
#define MV_CHECK_ARG(cond, msg)                                                \
  do {                                                                         \
    if (!(cond)) return ::medvision::capi::fail(MV_ERR_INVALID_ARGUMENT, msg); \
  } while (0)
