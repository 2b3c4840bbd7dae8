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
  std::string out = "evaluation";
  double sensitivity = 0.0;
  double threshold = -1.0;
  uint32_t bootstrap = 1000;
  uint64_t seed = 20240601;
  std::string device = "auto";
  int batch = 16;
  bool json = false;
  CLI::App* command = nullptr;
};

void add_evaluate_command(CLI::App& app, EvaluateArgs& args);
int run_evaluate(const EvaluateArgs& args);

}  // namespace mvcli
