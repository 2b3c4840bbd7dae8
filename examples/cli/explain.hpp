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
  std::string method;  // --method's default: mv_explain_options_init()'s
  std::string device;  // "": the library's default (mv_model_options)
  float alpha = 0.5f;
  bool json = false;
  CLI::App* command = nullptr;
};

void add_explain_command(CLI::App& app, ExplainArgs& args);
int run_explain(const ExplainArgs& args);

}  // namespace mvcli
