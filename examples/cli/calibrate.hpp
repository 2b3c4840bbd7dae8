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
  // The flags' defaults are mv_calibrate_options_init()'s, set in add_calibrate_command().
  std::string method;
  std::string rule;
  double target = 0.0;
  std::string refer_band;
  double refer = 0.0;
  double refer_logit = 0.0;
  double refer_npv = 0.0;
  double refer_ppv = 0.0;
  double alpha = 0.0;  // --conformal: 0 (unset) fits no conformal sets
  std::string conformal_score;
  std::string device;  // "": the library's default (mv_model_options)
  int batch = 16;
  std::string version;
  // --prior-shift FOLDER: re-estimate the label priors from the unlabelled images there.
  std::string prior_shift;
  std::vector<double> source_prior;  // --source-prior: one per label (empty: the manifest's)
  CLI::App* command = nullptr;
  CLI::Option* refer_band_option = nullptr;  // --refer-band, to see whether it was given
  CLI::Option* refer_option = nullptr;       // --refer
};

void add_calibrate_command(CLI::App& app, CalibrateArgs& args);
int run_calibrate(const CalibrateArgs& args);

}  // namespace mvcli
