#pragma once
// medvision models (examples/cli/models.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct ModelsArgs {
  bool json = false;
  CLI::App* command = nullptr;
};

void add_models_command(CLI::App& app, ModelsArgs& args);
int run_models(const ModelsArgs& args);

}  // namespace mvcli
