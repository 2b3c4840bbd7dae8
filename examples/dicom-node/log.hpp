// One line per event on stderr, with a UTC timestamp. Callers pass UIDs and counts, never
// patient names, IDs or birth dates.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace mvnode {

class Log {
 public:
  void info(const std::string& msg) { write("info", msg); }
  void warn(const std::string& msg) { write("warn", msg); }
  void error(const std::string& msg) { write("error", msg); }

 private:
  void write(const char* level, const std::string& msg) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    const std::lock_guard<std::mutex> lock(mutex_);
    std::fprintf(stderr, "%s.%03dZ %-5s %s\n", stamp, static_cast<int>(ms), level, msg.c_str());
    std::fflush(stderr);
  }
  std::mutex mutex_;
};

/** Seconds since the epoch (wall clock: it is written to disk and must survive a restart). */
inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace mvnode
