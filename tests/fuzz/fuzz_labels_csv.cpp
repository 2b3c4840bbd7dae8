// The labels CSV reader (mv_labels_csv_read(), calibrate/labels_csv.cpp; what `medvision
// calibrate --labels` and `medvision evaluate` read). The first byte picks a softmax or a sigmoid
// model; the rest is the CSV. A refusal must carry a message; a set must be consistent: at least
// one row, a readable path per row, and labels in range for the model.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto dir = mvfuzz::scratch("csv");
  const auto path = dir / "labels.csv";
  if (!mvfuzz::write_file(path, data + 1, size - 1)) return 0;
  // "normal" is a label too: the reader must prefer it over "normal" meaning no finding.
  const char* const labels[] = {"normal", "pneumonia", "Effusion"};
  constexpr size_t kLabels = sizeof labels / sizeof labels[0];
  const bool softmax = (data[0] & 1) != 0;
  mv_labels_csv* csv = nullptr;
  const mv_status st = mv_labels_csv_read(path.c_str(), labels, kLabels, softmax ? 1 : 0, &csv);
  if (st != MV_OK) {
    if (csv != nullptr || mv_last_error()[0] == '\0') __builtin_trap();
    return 0;
  }
  const size_t n = mv_labels_csv_count(csv);
  if (n == 0) __builtin_trap();
  for (size_t i = 0; i < n; ++i) {
    if (std::strlen(mv_labels_csv_path(csv, i)) == 0) __builtin_trap();
  }
  size_t values = 0;
  const int32_t* y = mv_labels_csv_labels(csv, &values);
  if (values != (softmax ? n : n * kLabels)) __builtin_trap();
  for (size_t i = 0; i < values; ++i) {
    const int32_t hi = softmax ? static_cast<int32_t>(kLabels) - 1 : 1;
    if (y[i] < 0 || y[i] > hi) __builtin_trap();
  }
  mv_labels_csv_free(csv);
  return 0;
}
