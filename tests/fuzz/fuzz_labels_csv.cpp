// The labels CSV reader of `medvision calibrate --labels` (examples/cli/labels_csv.hpp). The
// first byte picks a softmax or a sigmoid model; the rest is the CSV. Refusals must be
// medvision::Exception.

#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"
#include "labels_csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto dir = mvfuzz::scratch("csv");
  const auto path = dir / "labels.csv";
  if (!mvfuzz::write_file(path, data + 1, size - 1)) return 0;
  try {
    const auto set =
        mvcli::read_labels_csv(path.string(), {"normal", "pneumonia", "Effusion"}, data[0] & 1);
    if (set.paths.empty()) __builtin_trap();
  } catch (const medvision::Exception& e) {
    if (e.what()[0] == '\0') __builtin_trap();
  }
  return 0;
}
