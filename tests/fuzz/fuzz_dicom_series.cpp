// The DICOM series loader over a folder of fuzzed slices: the input is split at each occurrence
// of the 8-byte separator "MVSLICE|" into up to 6 files, written to a scratch folder, read both
// as a list (mv_image_load_series) and as a folder (mv_image_load).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto dir = mvfuzz::scratch("series");
  const std::vector<std::string> paths = mvfuzz::split_to_files(data, size, dir, 6);
  if (paths.empty()) return 0;
  std::vector<const char*> c_paths;
  for (const auto& p : paths) c_paths.push_back(p.c_str());
  const mv_image_load_options o = mvfuzz::load_options();
  mv_image* image = nullptr;
  mv_status st = mv_image_load_series(c_paths.data(), c_paths.size(), &o, &image);
  mvfuzz::check_result(st, image);
  image = nullptr;
  st = mv_image_load(dir.c_str(), &o, &image);
  mvfuzz::check_result(st, image);
  return 0;
}
