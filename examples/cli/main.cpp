// medvision: the command-line tool. Uses only the public API (medvision.hpp over the C ABI).
// Exit codes: 0 success, 1 usage error, 10 + mv_status for a library failure (e.g. 13 = MV_ERR_IO).
//
// One file per command (<command>.cpp/.hpp: its arguments, add_<command>_command to declare its
// options, run_<command> to run it); this file is the table of commands.

#include <CLI/CLI.hpp>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "bench.hpp"
#include "calibrate.hpp"
#include "classify.hpp"
#include "cli_util.hpp"
#include "evaluate.hpp"
#include "explain.hpp"
#include "info.hpp"
#include "medvision/medvision.hpp"
#include "models.hpp"
#include "segment.hpp"

namespace {

// A declared subcommand and what runs it once parsed.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// Declares a command whose arguments live as long as the returned Command.
template <class Args>
Command command(CLI::App& app, void (*add)(CLI::App&, Args&), int (*run)(const Args&)) {
  auto args = std::make_shared<Args>();
  add(app, *args);
  return {args->command, [args, run] { return run(*args); }};
}

// An application's choice (the library never changes malloc's settings), made for the commands
// that decode many large images one after another (classify, calibrate): glibc maps every block
// over its adaptive threshold afresh and returns it on free, so each image's buffers (OpenJPEG's
// tiles, the float32 image) are page-faulted and zeroed again; keeping blocks up to 32 MiB in the
// heap reuses them. 48 JPEG 2000 radiographs through `classify`: page faults 397 k -> 75 k,
// system time 1.3 -> 0.3 s of ~17 s CPU, peak RSS +0.6 % (docs/performance.md). Not for
// `segment`: there the retained heap raised a BraTS volume's peak RSS by 6 %.
void keep_large_blocks() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "medvision: decode medical images and run medvision models.\n"
      "Results support clinicians; they are not for diagnostic use."};
  app.set_version_flag("--version", std::string("medvision ") + medvision::version());
  app.require_subcommand(1);

  // In the order `medvision --help` lists them.
  const Command commands[] = {
      command(app, mvcli::add_info_command, mvcli::run_info),
      command(app, mvcli::add_classify_command, mvcli::run_classify),
      command(app, mvcli::add_explain_command, mvcli::run_explain),
      command(app, mvcli::add_bench_command, mvcli::run_bench),
      command(app, mvcli::add_calibrate_command, mvcli::run_calibrate),
      command(app, mvcli::add_segment_command, mvcli::run_segment),
      command(app, mvcli::add_evaluate_command, mvcli::run_evaluate),
      command(app, mvcli::add_models_command, mvcli::run_models),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : mvcli::kUsageError;
  }
  try {
    for (const auto& c : commands) {
      if (!c.app->parsed()) continue;
      const std::string name = c.app->get_name();
      if (name == "classify" || name == "calibrate") keep_large_blocks();
      return c.run();
    }
  } catch (const medvision::Exception& e) {
    std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
    return mvcli::exit_code(e.status());
  }
  return mvcli::kUsageError;
}
