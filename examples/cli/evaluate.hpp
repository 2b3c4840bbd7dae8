#pragma once
// medvision evaluate (examples/cli/evaluate.cpp).

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace mvcli {

struct EvaluateArgs {
  std::vector<std::string> models;
  std::string labels;
  std::string masks;            // segmentation: CSV of image,mask (docs/evaluate.md)
  std::vector<double> spacing;  // segmentation: COL[,ROW] mm for images that give none
  std::string seg_overlap;      // segmentation: an mv_label_overlap name; default the library's
  std::string out = "evaluation";
  double sensitivity = 0.0;  // read only when --sensitivity is given
  double threshold = 0.0;    // read only when --threshold is given
  // --bootstrap's and --seed's defaults: mv_evaluate_options_init()'s.
  uint32_t bootstrap = 0;
  uint64_t seed = 0;
  std::string device;  // "": the library's default (mv_model_options)
  int batch = 16;
  bool json = false;
  CLI::App* command = nullptr;
};

void add_evaluate_command(CLI::App& app, EvaluateArgs& args);
int run_evaluate(const EvaluateArgs& args);

}  // namespace mvcli
