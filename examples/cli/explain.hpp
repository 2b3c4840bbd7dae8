#pragma once
// medvision explain (examples/cli/explain.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct ExplainArgs {
  std::string npy;
  std::string nifti;
  std::string dicom_sc;
  std::vector<std::string> inputs;  // several: stacked into the channels of one image
  std::string model;
  std::string label;
  std::string out = "overlay.png";
  std::string method = "gradcam";
  std::string device = "auto";
  float alpha = 0.5f;
  bool json = false;
  CLI::App* command = nullptr;
};

void add_explain_command(CLI::App& app, ExplainArgs& args);
int run_explain(const ExplainArgs& args);

}  // namespace mvcli
