#include "common/log.hpp"

#include <atomic>
#include <mutex>

#include "common/utf8.hpp"

namespace medvision {
namespace {

struct Sink {
  mv_log_fn fn = nullptr;
  void* user = nullptr;
  int min_level = MV_LOG_OFF;
};

std::mutex g_mutex;
Sink g_sink;
// Read without the lock on the fast path so that disabled logging costs one atomic load.
std::atomic<int> g_min_level{MV_LOG_OFF};

}  // namespace

void set_log_callback(mv_log_fn fn, void* user, mv_log_level min_level) noexcept {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_sink.fn = fn;
  g_sink.user = user;
  g_sink.min_level = fn ? static_cast<int>(min_level) : MV_LOG_OFF;
  g_min_level.store(fn ? static_cast<int>(min_level) : MV_LOG_OFF, std::memory_order_release);
}

bool log_enabled(mv_log_level level) noexcept {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_acquire) &&
         level != MV_LOG_OFF;
}

void log(mv_log_level level, const std::string& message) noexcept {
  if (!log_enabled(level)) return;
  Sink sink;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    sink = g_sink;
  }
  if (sink.fn == nullptr) return;
  // The level is checked again against the callback that was copied: another thread may have
  // installed a callback with a higher min_level since log_enabled() passed, and that callback
  // must not get messages below the level it asked for.
  if (static_cast<int>(level) < sink.min_level) return;
  // Log lines may quote file names or damaged files' bytes: hand out valid UTF-8 only.
  if (is_valid_utf8(message)) {
    sink.fn(level, message.c_str(), sink.user);
    return;
  }
  try {
    sink.fn(level, to_valid_utf8(message).c_str(), sink.user);
  } catch (...) {
    // Out of memory while replacing: logging is best effort.
  }
}

void log_warnings(const std::string& context, const std::vector<std::string>& warnings) noexcept {
  if (!log_enabled(MV_LOG_WARN)) return;
  try {
    for (const auto& w : warnings) log(MV_LOG_WARN, context + ": " + w);
  } catch (...) {
    // Building the message failed (out of memory): logging is best effort.
  }
}

}  // namespace medvision
