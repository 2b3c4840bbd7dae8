// medvision-node: a DICOM AI node. A PACS sends it studies (C-STORE); it runs the configured
// medvision models and sends the results back into the same study (DICOM SR, SEG and
// Secondary Capture heat maps).
//
//   medvision-node --config node.json          run the node (SIGINT/SIGTERM stop it)
//   medvision-node status --config node.json   print the queue and the last jobs

#include <signal.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/oflog/oflog.h>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "analyse.hpp"
#include "config.hpp"
#include "files.hpp"
#include "log.hpp"
#include "medvision/medvision.hpp"
#include "receiver.hpp"
#include "sender.hpp"
#include "study_queue.hpp"

namespace {

int run_node(const mvnode::Config& config, mvnode::Log& log) {
  // Stop signals are taken by this thread with sigwait(), never by a handler: no global state,
  // and the worker threads (started below, inheriting the mask) are never interrupted.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a peer closing its socket is an error status, not a death

  std::filesystem::create_directories(config.data_dir);
  const mvnode::FileLock lock(config.data_dir / "node.lock");
  mvnode::StudyQueue queue(
      config.data_dir,
      {config.destination.retry_initial_seconds, config.destination.retry_max_seconds,
       config.destination.give_up_seconds},
      log);
  log.info("medvision-node (medvision " + medvision::version() + "): " +
           std::to_string(config.rules.size()) + " rules, " + std::to_string(config.workers) +
           " worker(s), results to " + config.destination.ae_title + " at " +
           config.destination.host + ":" + std::to_string(config.destination.port));
  {
    const mvnode::Analyser analyser(config, queue, log);
    const mvnode::Sender sender(config, queue, log);
    const mvnode::Receiver receiver(config, queue, log);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    log.info(std::string("stopping (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
             "): running analyses finish first");
  }
  log.info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"medvision-node: a DICOM node that analyses the studies a PACS sends it"};
  std::string config_path;
  app.add_option("-c,--config", config_path, "The node's JSON config file (required)");
  app.set_version_flag("--version", "medvision-node " + medvision::version());
  auto* status = app.add_subcommand("status", "Print the queue and the last jobs, then exit");
  size_t last_jobs = 10;
  status->add_option("--jobs", last_jobs, "How many of the last jobs to list")->default_val(10);
  status->add_option("-c,--config", config_path, "The node's JSON config file");
  CLI11_PARSE(app, argc, argv);

  if (config_path.empty()) {
    std::fprintf(stderr, "medvision-node: --config is required\n%s", app.help().c_str());
    return 2;
  }
  mvnode::Log log;
  OFLog::configure(OFLogger::WARN_LOG_LEVEL);
  try {
    const mvnode::Config config = mvnode::load_config(config_path);
    if (status->parsed()) {
      std::fputs(mvnode::StudyQueue::status_text(config.data_dir, last_jobs).c_str(), stdout);
      return 0;
    }
    return run_node(config, log);
  } catch (const std::exception& e) {
    log.error(e.what());
    return 1;
  }
}
