// mv_dump: decodes one file with the public C API and writes what medvision saw, for the Python
// conformance tests (tests/conformance/test_nifti_and_raster.py) to compare with nibabel and PIL.
//
//   mv_dump INPUT OUT_PREFIX  ->  OUT_PREFIX.json (status, message, geometry, metadata) and, on
//                                 success, OUT_PREFIX.npy (float32, C order, [C, D, H, W]).
// The exit code is 0 whenever the outputs were written, whatever the decode status; a failed
// decode is data for the test, not an error of this tool. Format-agnostic, so the DICOM
// conformance tests can use it too.

#include <cstdio>
#include <cstring>
#include <string>

#include "medvision/medvision.h"

namespace {

std::string json_string(const char* s) {
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

std::string json_array(const double* v, int n) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v[i]);
    out += (i ? ", " : "") + std::string(buf);
  }
  return out + "]";
}

bool write_npy(const std::string& path, const float* data, const int64_t shape[4]) {
  char dict[160];
  std::snprintf(dict, sizeof dict,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld, %lld, %lld), }",
                static_cast<long long>(shape[0]), static_cast<long long>(shape[1]),
                static_cast<long long>(shape[2]), static_cast<long long>(shape[3]));
  std::string header = dict;
  // NPY 1.0: magic (6) + version (2) + length (2) + header padded with spaces to a multiple of
  // 64 bytes, ending in a newline.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const unsigned char pre[10] = {0x93,
                                 'N',
                                 'U',
                                 'M',
                                 'P',
                                 'Y',
                                 1,
                                 0,
                                 static_cast<unsigned char>(header.size() & 0xff),
                                 static_cast<unsigned char>(header.size() >> 8)};
  size_t count = 1;
  for (int i = 0; i < 4; ++i) count *= static_cast<size_t>(shape[i]);
  bool ok = std::fwrite(pre, 1, sizeof pre, f) == sizeof pre &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(data, sizeof(float), count, f) == count;  // x86/ARM: little endian
  ok = std::fclose(f) == 0 && ok;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: mv_dump INPUT OUT_PREFIX\n");
    return 2;
  }
  const std::string prefix = argv[2];
  mv_image* image = nullptr;
  const mv_status st = mv_image_load(argv[1], nullptr, &image);
  std::string json = "{\"status\": " + json_string(mv_status_name(st)) +
                     ", \"message\": " + json_string(mv_last_error());
  if (st == MV_OK) {
    int64_t shape[4];
    double spacing[3], origin[3], direction[9];
    mv_image_shape(image, shape);
    mv_image_spacing(image, spacing);
    mv_image_origin(image, origin);
    mv_image_direction(image, direction);
    const double shape_d[4] = {static_cast<double>(shape[0]), static_cast<double>(shape[1]),
                               static_cast<double>(shape[2]), static_cast<double>(shape[3])};
    const char* descr = mv_image_meta(image, "SeriesDescription");
    json += ", \"shape\": " + json_array(shape_d, 4) + ", \"spacing\": " + json_array(spacing, 3) +
            ", \"origin\": " + json_array(origin, 3) +
            ", \"direction\": " + json_array(direction, 9) +
            ", \"format\": " + std::to_string(mv_image_get_format(image)) +
            ", \"photometric\": " + std::to_string(mv_image_photometric(image)) +
            ", \"stored_dtype\": " + std::to_string(mv_image_stored_dtype(image)) +
            ", \"bits_stored\": " + std::to_string(mv_image_bits_stored(image)) +
            ", \"warnings\": " + std::to_string(mv_image_warning_count(image)) +
            ", \"series_description\": " + (descr ? json_string(descr) : std::string("null"));
    if (!write_npy(prefix + ".npy", mv_image_data(image), shape)) {
      std::fprintf(stderr, "mv_dump: cannot write %s.npy\n", prefix.c_str());
      mv_image_free(image);
      return 1;
    }
    mv_image_free(image);
  }
  json += "}\n";
  std::FILE* f = std::fopen((prefix + ".json").c_str(), "wb");
  if (!f || std::fwrite(json.data(), 1, json.size(), f) != json.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "mv_dump: cannot write %s.json\n", prefix.c_str());
    return 1;
  }
  return 0;
}
