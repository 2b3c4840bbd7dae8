#pragma once
// medvision classify (examples/cli/classify.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct ClassifyArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string device;  // "": the library's default (mv_model_options)
  int threads = 0;     // --threads' default: mv_model_options_init()'s
  int batch = 8;
  int decode_threads = 0;  // pipeline decode workers; 0: min(2, CPUs)
  bool json = false;
  bool reduced = false;
  std::string dicom_sr;  // folder for <stem>.sr.dcm (DICOM SR per image), or empty
  CLI::App* command = nullptr;
};

void add_classify_command(CLI::App& app, ClassifyArgs& args);
int run_classify(const ClassifyArgs& args);

}  // namespace mvcli
