#pragma once
// The human-readable classification result that `classify` and `explain` print.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "medvision/medvision.hpp"

namespace mvcli {

// A probability as a percentage that never rounds to certainty: ">99.9%" rather than "100.0%".
std::string percent(double p);

// A threshold or band limit: one decimal, two below 1% (a threshold of 0.43% must not read 0.4%).
std::string percent_limit(double p);

// "positive, threshold 1.2%, chosen for sensitivity 0.80": the decision and the operating point
// that made it, from the result JSON's "operating_point" (the manifest's thresholds record).
std::string decision_text(int32_t decision, const nlohmann::json& op);

// One image's result; `first` also prints the model line with its notice.
void print_result_human(const std::string& file, const medvision::Result& r, bool first);

}  // namespace mvcli
