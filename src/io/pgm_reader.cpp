// Netpbm PGM (binary "P5") greymaps: 8- or 16-bit (big endian) samples, no geometry.

#include <cctype>
#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "common/error.hpp"
#include "io/io.hpp"

namespace medvision::io {
namespace {

// The next decimal header field after whitespace and # comments; advances `pos`.
int64_t header_field(const uint8_t* d, size_t n, size_t& pos, const char* what,
                     const std::string& name) {
  while (pos < n) {
    if (d[pos] == '#') {
      while (pos < n && d[pos] != '\n') ++pos;
    } else if (std::isspace(d[pos])) {
      ++pos;
    } else {
      break;
    }
  }
  int64_t v = 0;
  size_t digits = 0;
  while (pos < n && std::isdigit(d[pos]) && digits < 9) v = v * 10 + (d[pos++] - '0'), ++digits;
  if (digits == 0 || v <= 0) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: PGM header: {} is missing or invalid", name, what));
  }
  return v;
}

}  // namespace

std::unique_ptr<Image> read_pgm_memory(const uint8_t* data, size_t size, const LoadOptions& options,
                                       const std::string& name) {
  size_t pos = 2;
  const int64_t width = header_field(data, size, pos, "width", name);
  const int64_t height = header_field(data, size, pos, "height", name);
  const int64_t maxval = header_field(data, size, pos, "maxval", name);
  if (maxval > 65535) {
    throw Error(MV_ERR_CORRUPT_DATA, fmt::format("{}: PGM maxval {} is over 65535", name, maxval));
  }
  if (pos >= size || !std::isspace(data[pos])) {
    throw Error(MV_ERR_CORRUPT_DATA, fmt::format("{}: PGM header ends without whitespace", name));
  }
  ++pos;
  const uint64_t bytes_per_sample = maxval > 255 ? 2 : 1;
  const uint64_t needed =
      static_cast<uint64_t>(width) * static_cast<uint64_t>(height) * bytes_per_sample;
  if (size - pos < needed) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: PGM pixel data is truncated ({} bytes, {} needed)", name,
                            size - pos, needed));
  }
  auto image = std::make_unique<Image>(1, 1, height, width, options.max_values, name);
  const uint8_t* p = data + pos;
  float* out = image->data();
  for (size_t i = 0; i < image->size(); ++i) {
    out[i] = bytes_per_sample == 1 ? p[i] : static_cast<float>(p[2 * i] << 8 | p[2 * i + 1]);
  }
  image->format = MV_FORMAT_PGM;
  image->photometric = MV_PHOTOMETRIC_MONOCHROME2;
  image->stored_dtype = bytes_per_sample == 1 ? MV_DTYPE_UINT8 : MV_DTYPE_UINT16;
  image->bits_stored = bytes_per_sample == 1 ? 8 : 16;
  return image;
}

}  // namespace medvision::io
