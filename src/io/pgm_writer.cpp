// PGM writer (scratch, checklist trial): one slice of channel 0 as a 16-bit binary greymap.

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/writers.hpp"

namespace medvision::io {

void write_pgm(const Image& image, const std::string& path, int64_t slice) {
  if (slice < 0 || slice >= image.depth()) {
    throw Error(
        MV_ERR_INVALID_ARGUMENT,
        fmt::format("{}: slice {} is outside the image's {} slices", path, slice, image.depth()));
  }
  const size_t n = image.plane_size();
  const float* p = image.data() + static_cast<size_t>(slice) * n;
  std::vector<uint8_t> out;
  const std::string header = fmt::format("P5\n{} {}\n65535\n", image.width(), image.height());
  out.assign(header.begin(), header.end());
  for (size_t i = 0; i < n; ++i) {
    if (!(p[i] >= 0.0f && p[i] <= 65535.0f && p[i] == std::floor(p[i]))) {
      throw Error(MV_ERR_INVALID_ARGUMENT, fmt::format("{}: value {:f} does not fit a 16-bit PGM",
                                                       path, static_cast<double>(p[i])));
    }
    const auto v = static_cast<uint16_t>(p[i]);
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v & 0xff));
  }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f)
    throw Error(MV_ERR_IO,
                fmt::format("{}: cannot open for writing ({})", path, std::strerror(errno)));
  if (std::fwrite(out.data(), 1, out.size(), f.get()) != out.size() || std::fflush(f.get()) != 0) {
    throw Error(MV_ERR_IO, fmt::format("{}: write failed ({})", path, std::strerror(errno)));
  }
}

}  // namespace medvision::io
