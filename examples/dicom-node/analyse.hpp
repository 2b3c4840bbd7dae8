// Runs the models on a study (medvision calls only) on worker threads this object owns, and
// writes the results (SR, SEG, SC heat maps) into the study's out/ folder.
#pragma once

#include <atomic>
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
  /** Runs one job; returns the result files it wrote. `classified`: the job's classification
   *  from the pipeline (classify_pending()), or nullptr to load and run the image here. */
  std::vector<Output> run_job(const Job& job, const AnalysisWork& work,
                              const medvision::ItemResult* classified);
  /** The pending single-image jobs of classification models, run per model through the
   *  streaming pipeline (medvision::run_many: decode workers, batched inference). Returns the
   *  outcome of each such job by its index in `jobs`; a job the pipeline failed for carries its
   *  own status and message. */
  std::map<size_t, medvision::ItemResult> classify_pending(const std::vector<Job>& jobs,
                                                           const std::vector<bool>& pending,
                                                           const AnalysisWork& work,
                                                           std::map<size_t, double>& seconds);
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
