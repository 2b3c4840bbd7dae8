#include "common/error.hpp"

#include <cstring>
#include <limits>
#include <new>
#include <string>

#include <fmt/format.h>

#include "common/utf8.hpp"

namespace medvision {
namespace {

// A fixed buffer rather than a std::string: setting an error must not allocate, so that an
// out-of-memory condition can still be reported (libgit2 keeps a static OOM message for the
// same reason). Messages longer than the buffer are truncated on a UTF-8 boundary. This is the one
// place every error message passes: bytes quoted from a damaged file or a legacy character set
// become U+FFFD here, so that mv_last_error() is always valid UTF-8 (issue 19).
constexpr size_t kMaxMessage = 2048;
thread_local char tls_message[kMaxMessage] = {0};

}  // namespace

void set_last_error(const char* message) noexcept {
  if (message == nullptr) message = "";
  copy_valid_utf8(message, tls_message, kMaxMessage);
}

void clear_last_error() noexcept { tls_message[0] = '\0'; }

const char* last_error() noexcept { return tls_message; }

ErrorInfo error_info(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& ex) {
    return {ex.status(), to_valid_utf8(ex.what())};
  } catch (const std::bad_alloc&) {
    return {MV_ERR_OUT_OF_MEMORY, "out of memory"};
  } catch (const std::exception& ex) {
    return {MV_ERR_INTERNAL, "internal error: " + to_valid_utf8(ex.what())};
  } catch (...) {
    return {MV_ERR_UNKNOWN, "unknown error"};
  }
}

uint64_t checked_volume(const uint64_t* dims, int n, uint64_t limit, const std::string& what) {
  uint64_t total = 1;
  for (int i = 0; i < n; ++i) {
    if (dims[i] != 0 && total > std::numeric_limits<uint64_t>::max() / dims[i]) {
      throw Error(MV_ERR_OUT_OF_MEMORY, what + ": image size overflows 64 bits");
    }
    total *= dims[i];
  }
  if (total > limit) {
    throw Error(MV_ERR_OUT_OF_MEMORY,
                fmt::format("{}: image has {} values, more than the limit of {} (max_values)", what,
                            total, limit));
  }
  return total;
}

}  // namespace medvision
