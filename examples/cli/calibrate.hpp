#pragma once
// medvision calibrate (examples/cli/calibrate.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct CalibrateArgs {
  bool check = false;
  std::vector<std::string> inputs;
  std::string model;
  std::string labels;
  std::string out;
  std::string method = "temperature";
  std::string rule = "youden";
  double target = 0.9;
  std::string refer_band = "predictive-value";
  double refer = 0.1;
  double refer_logit = 0.4;
  double refer_npv = 0.95;
  double refer_ppv = 0.9;
  double alpha = 0.0;
  std::string conformal_score = "lac";
  std::string device = "auto";
  int batch = 16;
  std::string version;
  CLI::App* command = nullptr;
  CLI::Option* refer_band_option = nullptr;  // --refer-band, to see whether it was given
  CLI::Option* refer_option = nullptr;       // --refer
};

void add_calibrate_command(CLI::App& app, CalibrateArgs& args);
int run_calibrate(const CalibrateArgs& args);

}  // namespace mvcli
