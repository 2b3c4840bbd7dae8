#pragma once
// medvision::Error: the one exception type internals throw. The C API maps it to its status.

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

// Thread-local last error (see mv_last_error()). Never throws.
void set_last_error(const char* message) noexcept;
void clear_last_error() noexcept;
const char* last_error() noexcept;

// Multiplies sizes, throwing MV_ERR_OUT_OF_MEMORY on overflow or when the product exceeds `limit`.
// `what` names the thing being sized (e.g. the file) for the message.
uint64_t checked_volume(const uint64_t* dims, int n, uint64_t limit, const std::string& what);

}  // namespace medvision
