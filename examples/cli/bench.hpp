#pragma once
// medvision bench (examples/cli/bench.cpp).

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mvcli {

struct BenchArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string device = "auto";
  int threads = 0;
  int batch = 1;
  int repeat = 10;
  int warmup = 1;
  bool json = false;
  CLI::App* command = nullptr;
};

void add_bench_command(CLI::App& app, BenchArgs& args);
int run_bench(const BenchArgs& args);

}  // namespace mvcli
