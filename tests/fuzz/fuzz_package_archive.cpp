// The model package archive reader (src/model/archive.cpp): a .mvpkg (tar, optionally gzip)
// written to a scratch folder and extracted. Every refusal must be medvision::Error; extraction
// must stay inside its temporary folder (checked: nothing appears next to the archive).

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "common/error.hpp"
#include "fuzz_common.hpp"
#include "model/archive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = mvfuzz::scratch("archive");
  const auto path = dir / "fuzz.mvpkg";
  if (!mvfuzz::write_file(path, data, size)) return 0;
  try {
    auto pkg = medvision::model::ExtractedPackage::extract(path.string());
    if (pkg->package().rfind(pkg->root(), 0) != 0) __builtin_trap();  // escaped its folder
  } catch (const medvision::Error& e) {
    if (e.what()[0] == '\0') __builtin_trap();
  }
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += e.exists() ? 1 : 0;
  if (entries != 1) __builtin_trap();  // something was written beside the archive
  return 0;
}
