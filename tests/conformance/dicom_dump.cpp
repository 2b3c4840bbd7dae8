// dicom_dump: batch decoder for the DICOM conformance test. One process for the whole corpus, as
// loading libmedvision (and what it links) costs more than decoding most test files.
//
//   dicom_dump LIST OUT_DIR  ->  for line i of LIST (a path): OUT_DIR/i.json with the status and
//                                message, and OUT_DIR/i.npy (float32, [C, D, H, W]) on success.
// Uses only the public C API. The exit code is 0 when every output was written.

#include <cstdio>
#include <fstream>
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

bool write_file(const std::string& path, const std::string& head, const float* data, size_t count) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  if (data != nullptr) ok = ok && std::fwrite(data, sizeof(float), count, f) == count;
  return std::fclose(f) == 0 && ok;
}

// NPY 1.0 header: magic, version, little endian length, dict padded to 64 bytes with a newline.
std::string npy_header(const int64_t shape[4]) {
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
  return std::string(pre, sizeof pre) + header;
}

bool dump_one(const std::string& input, const std::string& prefix) {
  mv_image* image = nullptr;
  const mv_status st = mv_image_load(input.c_str(), nullptr, &image);
  const std::string json = "{\"status\": " + json_string(mv_status_name(st)) +
                           ", \"message\": " + json_string(mv_last_error()) + "}\n";
  bool ok = write_file(prefix + ".json", json, nullptr, 0);
  if (st == MV_OK) {
    int64_t shape[4];
    mv_image_shape(image, shape);
    const auto count = static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]);
    ok = write_file(prefix + ".npy", npy_header(shape), mv_image_data(image), count) && ok;
    mv_image_free(image);
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: dicom_dump LIST OUT_DIR\n");
    return 2;
  }
  std::ifstream list(argv[1]);
  std::string line;
  int index = 0, failed = 0;
  while (std::getline(list, line)) {
    if (!dump_one(line, std::string(argv[2]) + "/" + std::to_string(index++))) ++failed;
  }
  return failed == 0 ? 0 : 1;
}
