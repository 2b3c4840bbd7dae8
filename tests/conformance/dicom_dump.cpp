// dicom_dump: batch decoder for the DICOM conformance test. One process for the whole corpus, as
// loading libmedvision (and what it links) costs more than decoding most test files.
//
//   dicom_dump LIST OUT_DIR  ->  for line i of LIST (a path): OUT_DIR/i.json with the status,
//                                message, metadata (mv_image_meta) and warnings, and OUT_DIR/i.npy
//                                (float32, [C, D, H, W]) on success.
// Strings are copied byte for byte (only quotes, backslashes and controls escaped), so a reader
// with a strict JSON/UTF-8 parser sees exactly what the library handed out.
// Uses only the public C API. The exit code is 0 when every output was written.

#include <cstdio>
#include <fstream>
#include <string>

#include "dump_util.hpp"
#include "medvision/medvision.h"

namespace {

using mvtest::json_string;

bool dump_one(const std::string& input, const std::string& prefix) {
  mv_image* image = nullptr;
  const mv_status st = mv_image_load(input.c_str(), nullptr, &image);
  std::string json = "{\"status\": " + json_string(mv_status_name(st)) +
                     ", \"message\": " + json_string(mv_last_error());
  if (st == MV_OK) {
    json += ", \"meta\": {";
    const char* key = nullptr;
    bool first = true;
    for (size_t i = 0; (key = mv_image_meta_key(i)) != nullptr; ++i) {
      if (const char* v = mv_image_meta(image, key)) {
        json += (first ? "" : ", ") + json_string(key) + ": " + json_string(v);
        first = false;
      }
    }
    json += "}, \"warnings\": [";
    for (size_t i = 0; i < mv_image_warning_count(image); ++i) {
      json += (i ? ", " : "") + json_string(mv_image_warning(image, i));
    }
    json += "]";
  }
  json += "}\n";
  bool ok = mvtest::write_text(prefix + ".json", json);
  if (st == MV_OK) {
    int64_t shape[4];
    mv_image_shape(image, shape);
    ok = mvtest::write_npy(prefix + ".npy", mv_image_data(image), shape) && ok;
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
