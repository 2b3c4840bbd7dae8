#pragma once
// medvision info (examples/cli/info.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct InfoArgs {
  std::vector<std::string> files;
  bool json = false;
  int frame = 0;  // --frame's default: mv_image_load_options_init()'s
  CLI::App* command = nullptr;
};

void add_info_command(CLI::App& app, InfoArgs& args);
int run_info(const InfoArgs& args);

}  // namespace mvcli
