#pragma once
// Helpers of the conformance dump tools (tests/conformance/*_dump.cpp): JSON strings and arrays,
// and float32 arrays as NumPy .npy files, so that Python references can be compared with what
// medvision decoded through the public C API.

#include <cstdint>
#include <cstdio>
#include <string>

namespace mvtest {

inline std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s; *p; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

inline std::string json_array(const double* v, int n) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v[i]);
    out += (i ? ", " : "") + std::string(buf);
  }
  return out + "]";
}

inline bool write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

// NPY 1.0: magic, version, little-endian header length, then the dict padded with spaces to a
// multiple of 64 bytes and ending in a newline; the data follow in host (little endian) order.
inline bool write_npy(const std::string& path, const float* data, const int64_t shape[4]) {
  char dict[160];
  std::snprintf(dict, sizeof dict,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld, %lld, %lld), }",
                static_cast<long long>(shape[0]), static_cast<long long>(shape[1]),
                static_cast<long long>(shape[2]), static_cast<long long>(shape[3]));
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  const char pre[10] = {'\x93',
                        'N',
                        'U',
                        'M',
                        'P',
                        'Y',
                        1,
                        0,
                        static_cast<char>(header.size() & 0xff),
                        static_cast<char>(header.size() >> 8)};
  size_t count = 1;
  for (int i = 0; i < 4; ++i) count *= static_cast<size_t>(shape[i]);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(pre, 1, sizeof pre, f) == sizeof pre &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(data, sizeof(float), count, f) == count;
  ok = std::fclose(f) == 0 && ok;
  return ok;
}

}  // namespace mvtest
