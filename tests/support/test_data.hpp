#pragma once
// Finding ../shared/data from tests: MEDVISION_DATA, set by CTest. A test that needs it and does
// not find it is SKIPPED with the reason on a user's machine, and FAILS where CI=true.

#include <cstdlib>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

namespace mvtest {

inline std::string data_root() {
  const char* env = std::getenv("MEDVISION_DATA");
  return env ? env : "../shared/data";
}

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Returns the path of `rel` under the data root, or an empty string after reporting the skip.
inline std::string data_path(const std::string& rel) {
  const std::filesystem::path p = std::filesystem::path(data_root()) / rel;
  if (std::filesystem::exists(p)) return p.string();
  if (in_ci()) FAIL("test data missing in CI: " << p.string());
  WARN("SKIPPED: test data not found: " << p.string() << " (set MEDVISION_DATA)");
  return {};
}

}  // namespace mvtest
