// Runs the models on a study (medvision calls only) on worker threads this object owns, and
// writes the results (SR, SEG, SC heat maps) into the study's out/ folder.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "log.hpp"
#include "medvision/medvision.hpp"
#include "router.hpp"
#include "study_queue.hpp"

namespace mvnode {

class Analyser {
 public:
  /** Starts config.workers threads that take ready studies from the queue. */
  Analyser(const Config& config, StudyQueue& queue, Log& log);
  /** Stops taking studies, lets running analyses finish, joins the threads. */
  ~Analyser();
  Analyser(const Analyser&) = delete;
  Analyser& operator=(const Analyser&) = delete;

 private:
  void run();
  void analyse(const AnalysisWork& work);
  /** Runs one job and records it (outcome, result files, seconds + `extra_seconds`). */
  using FinishJob = std::function<void(size_t job, double extra_seconds,
                                       const std::function<std::vector<Output>()>& run)>;
  /** Runs one job on its decoded input (`source`: what derived objects reference; `image`: the
   *  model's input, a stack of channels or `source` itself); returns the result files it wrote.
   *  `classified`: the job's classification from the pipeline, or nullptr to run it here. */
  std::vector<Output> run_job(const Job& job, const AnalysisWork& work,
                              const medvision::Image& source, const medvision::Image& image,
                              const medvision::Result* classified);
  /** The pending single-image jobs of classification models, per model in chunks of two
   *  batches: each instance decoded once, the chunk classified through the streaming pipeline
   *  (medvision::run_many over the images: preprocessing workers, batched inference), then each
   *  job's results written and recorded through `finish`. A job whose file cannot be decoded,
   *  or that the pipeline fails, fails alone with its own status and message. */
  void classify_batched(const std::vector<Job>& jobs, const AnalysisWork& work,
                        const std::vector<bool>& pending, const FinishJob& finish);
  /** The loaded model (shared: medvision models are thread-safe), loading it on first use. */
  const medvision::Model& model(const std::string& name);
  /** A result file name unique in out/: model, time stamp, counter, kind. */
  std::string next_name(const std::string& model, const std::string& kind);

  const Config& config_;
  StudyQueue& queue_;
  Log& log_;
  std::mutex models_mutex_;
  std::map<std::string, medvision::Model> models_;
  std::atomic<uint64_t> counter_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace mvnode
