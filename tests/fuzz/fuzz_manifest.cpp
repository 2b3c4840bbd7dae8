// The model package manifest validator (src/model/manifest.cpp, parse_manifest) on arbitrary
// JSON. A manifest that is not valid JSON is refused by the parser; one that is must be accepted
// or refused with medvision::Error (MV_ERR_MODEL and a message naming the key). Any other
// exception escaping the validator (a nlohmann type_error from an unchecked .get<>()) is a bug:
// the C API would turn it into MV_ERR_INTERNAL without saying which key is wrong.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "fuzz_common.hpp"
#include "model/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    (void)medvision::model::parse_manifest(j, "/nonexistent/fuzz-package", "manifest.json");
  } catch (const medvision::Error& e) {
    if (e.what()[0] == '\0') __builtin_trap();
  }
  return 0;
}
