// Rules -> jobs: which model runs on which instances of a study.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config.hpp"
#include "study_queue.hpp"

namespace mvnode {

/** One model run: a single image, a series as a volume, or named series stacked as channels. */
struct Job {
  std::string model;
  std::vector<std::string> channel_names;       ///< e.g. {"FLAIR", "T1"}; one "" otherwise
  std::vector<std::vector<Instance>> channels;  ///< the instances of each channel
  std::string input;                            ///< for logs: SOP or series UID(s)

  std::vector<std::string> sop_uids() const;
};

/** Returns the number of spatial dimensions a model takes (2 or 3); throws if it cannot load. */
using ModelNdim = std::function<int(const std::string& model)>;

/** The jobs that the rules give for a study's instances (every matching rule applies; a model
 *  runs once per input). Instances no rule matches get no job. */
std::vector<Job> route(const std::vector<Rule>& rules, const std::vector<Instance>& instances,
                       const ModelNdim& model_ndim);

}  // namespace mvnode
