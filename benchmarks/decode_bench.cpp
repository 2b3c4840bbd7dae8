// decode_bench: times mv_image_load (file -> float32 physical units, Modality LUT included) with
// the public C API only. Prints one JSON object: per file, every repetition's time in ms.
//
//   decode_bench [--repeat N] [--warmup N] FILE...
//
// The peer is benchmarks/decode_peer.py (pydicom); benchmarks/run_bench.py runs both alternately.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "medvision/medvision.h"

namespace {

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

// Loads `path` once; returns the elapsed ms, or a negative value on failure.
double time_load(const char* path, double* checksum) {
  mv_image* img = nullptr;
  const double t0 = now_ms();
  const mv_status s = mv_image_load(path, nullptr, &img);
  const double t1 = now_ms();
  if (s != MV_OK) {
    std::fprintf(stderr, "decode_bench: %s: %s: %s\n", path, mv_status_name(s), mv_last_error());
    return -1.0;
  }
  // Touch the result so the work cannot be skipped, outside the timed region.
  int64_t shape[4];
  mv_image_shape(img, shape);
  const float* p = mv_image_data(img);
  *checksum += p[0] + p[shape[2] * shape[3] / 2];
  mv_image_free(img);
  return t1 - t0;
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 10, warmup = 1;
  std::vector<const char*> files;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--warmup") && i + 1 < argc) {
      warmup = std::atoi(argv[++i]);
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "usage: decode_bench [--repeat N] [--warmup N] FILE...\n");
      return 1;
    } else {
      files.push_back(argv[i]);
    }
  }
  if (files.empty() || repeat < 1) {
    std::fprintf(stderr, "usage: decode_bench [--repeat N] [--warmup N] FILE...\n");
    return 1;
  }
  double checksum = 0.0;
  std::printf("{\"tool\": \"medvision\", \"version\": \"%s\", \"files\": {", mv_version_string());
  for (size_t f = 0; f < files.size(); ++f) {
    for (int w = 0; w < warmup; ++w) {
      if (time_load(files[f], &checksum) < 0) return 2;
    }
    std::printf("%s\"%s\": [", f ? ", " : "", files[f]);
    for (int r = 0; r < repeat; ++r) {
      const double ms = time_load(files[f], &checksum);
      if (ms < 0) return 2;
      std::printf("%s%.4f", r ? ", " : "", ms);
    }
    std::printf("]");
  }
  std::printf("}, \"checksum\": %.6g}\n", checksum);
  return 0;
}
