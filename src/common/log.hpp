#pragma once
// Library logging: silent unless the application installs a callback (mv_set_log_callback).

#include <string>
#include <vector>

#include "medvision/medvision.h"

namespace medvision {

void set_log_callback(mv_log_fn fn, void* user, mv_log_level min_level) noexcept;
bool log_enabled(mv_log_level level) noexcept;
// Sends `message` to the callback if one is installed and the level passes. Never throws.
// Never pass patient-identifying values.
void log(mv_log_level level, const std::string& message) noexcept;
// Logs each warning an object recorded (image decode, model load, preprocessing), prefixed with
// `context` (a file or model name); a no-op without a callback.
void log_warnings(const std::string& context, const std::vector<std::string>& warnings) noexcept;

}  // namespace medvision
