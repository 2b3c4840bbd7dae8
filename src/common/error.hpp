#pragma once
// medvision::Error: the one exception type internals throw. The C API maps it to its status.

#include <exception>
#include <stdexcept>
#include <string>

#include "medvision/medvision.h"

namespace medvision {

class Error : public std::runtime_error {
 public:
  Error(mv_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  mv_status status() const noexcept { return status_; }

 private:
  mv_status status_;
};

// The one mapping from an exception to a status and a message, used at the C boundary
// (MV_CAPI_END) and for the per-input errors of the streaming pipeline, so that both report the
// same status for the same failure: medvision::Error keeps its status and message,
// std::bad_alloc is MV_ERR_OUT_OF_MEMORY, any other std::exception MV_ERR_INTERNAL ("internal
// error: ..."), anything else MV_ERR_UNKNOWN. The message is valid UTF-8. Throws only
// std::bad_alloc (building the message); callers that must not throw catch it.
struct ErrorInfo {
  mv_status status;
  std::string message;
};
ErrorInfo error_info(const std::exception_ptr& e);

// Thread-local last error (see mv_last_error()). Never throws.
void set_last_error(const char* message) noexcept;
void clear_last_error() noexcept;
const char* last_error() noexcept;

// Multiplies sizes, throwing MV_ERR_OUT_OF_MEMORY on overflow or when the product exceeds `limit`.
// `what` names the thing being sized (e.g. the file) for the message.
uint64_t checked_volume(const uint64_t* dims, int n, uint64_t limit, const std::string& what);

}  // namespace medvision
