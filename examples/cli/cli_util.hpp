#pragma once
// Helpers shared by the medvision CLI's commands (public API only).

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "medvision/medvision.hpp"

namespace mvcli {

constexpr int kUsageError = 1;
constexpr int kStatusBase = 10;

// --device: unset keeps mv_model_options_init()'s device (NULL: "auto").
constexpr const char* kDeviceHelp = "auto | cpu | cuda | cuda:N (unset: the library's default)";

inline int exit_code(mv_status s) { return s == MV_OK ? 0 : kStatusBase + static_cast<int>(s); }

// Expands folders into the files they hold (recursively, sorted; hidden files skipped).
inline std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      out.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(in, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec)) found.push_back(it->path().string());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

// A progress bar on stderr, only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(size_t total) : total_(total), enabled_(isatty(fileno(stderr)) && total > 1) {}
  void update(size_t done) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / total_);
    std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu", filled,
                 "==============================", kWidth - filled, "", done, total_);
    if (done == total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  size_t total_;
  bool enabled_;
};

// Writes a float32 array of any shape as a .npy file (NumPy format 1.0).
inline void write_npy(const std::string& path, const float* data,
                      const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= d;
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  const auto len = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.put(static_cast<char>(len & 0xFF));
  f.put(static_cast<char>(len >> 8));
  f << header;
  f.write(reinterpret_cast<const char*>(data),
          static_cast<std::streamsize>(count * static_cast<int64_t>(sizeof(float))));
  if (!f) throw medvision::Exception(MV_ERR_IO, path + ": cannot write");
}

// An option value by the library's name (mv_<enum>_parse); otherwise MV_ERR_INVALID_ARGUMENT
// "<flag>: a, b or c, not 'x'" listing the library's names (mv_<enum>_name), so that no command
// spells them.
template <typename E>
E parse_option(const char* flag, const std::string& value, const char* (*name)(E)) {
  try {
    return medvision::parse<E>(value);
  } catch (const medvision::Exception&) {
    std::vector<std::string> names;
    for (int v = 0; name(static_cast<E>(v)) != nullptr; ++v)
      names.emplace_back(name(static_cast<E>(v)));
    std::string list;
    for (size_t i = 0; i < names.size(); ++i)
      list += (i == 0 ? "" : (i + 1 == names.size() ? " or " : ", ")) + names[i];
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               std::string(flag) + ": " + list + ", not '" + value + "'");
  }
}

}  // namespace mvcli
