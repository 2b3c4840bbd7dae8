#pragma once
// medvision regress (examples/cli/regress.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct RegressArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string device = "auto";
  bool json = false;
  CLI::App* command = nullptr;
};

void add_regress_command(CLI::App& app, RegressArgs& args);
int run_regress(const RegressArgs& args);

}  // namespace mvcli
