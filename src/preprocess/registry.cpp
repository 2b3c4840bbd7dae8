// The one table of preprocessing steps: a new step is a parser here plus its type in
// intensity_steps.cpp or geometry_steps.cpp (docs/architecture.md, "Add a preprocessing step").

#include "preprocess/step.hpp"

namespace medvision::preprocess {

const std::vector<StepKind>& step_table() {
  static const std::vector<StepKind> table{
      {"monochrome", StepFamily::kIntensity, false, parse_monochrome},
      {"window", StepFamily::kIntensity, false, parse_window},
      {"scale", StepFamily::kIntensity, false, parse_scale},
      {"resize", StepFamily::kGeometry, false, parse_resize},
      {"center_crop", StepFamily::kGeometry, false, parse_center_crop},
      {"channels", StepFamily::kIntensity, false, parse_channels},
      {"normalize", StepFamily::kIntensity, false, parse_normalize},
      {"resample", StepFamily::kGeometry, true, parse_resample},
      {"reorient", StepFamily::kGeometry, true, parse_reorient},
      {"crop_pad", StepFamily::kGeometry, true, parse_crop_pad},
      {"clip", StepFamily::kIntensity, false, parse_clip},
  };
  return table;
}

const StepKind* find_step(const std::string& op) {
  for (const StepKind& k : step_table()) {
    if (op == k.op) return &k;
  }
  return nullptr;
}

}  // namespace medvision::preprocess
