#pragma once
// medvision bench (examples/cli/bench.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct BenchArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string device;  // "": the library's default (mv_model_options)
  int threads = 0;     // --threads' default: mv_model_options_init()'s
  int batch = 1;
  int repeat = 10;
  int warmup = 1;
  bool json = false;
  CLI::App* command = nullptr;
};

void add_bench_command(CLI::App& app, BenchArgs& args);
int run_bench(const BenchArgs& args);

}  // namespace mvcli
