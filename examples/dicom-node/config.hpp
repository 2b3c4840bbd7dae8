// medvision-node configuration: the JSON file, parsed and validated once at start.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mvnode {

/** The DICOM peer that receives the results (usually the PACS that sent the study). */
struct Destination {
  std::string ae_title;
  std::string host;
  uint16_t port = 0;
  double retry_initial_seconds = 2.0;  ///< first back-off delay; doubles on each failure
  double retry_max_seconds = 60.0;     ///< the longest delay between two attempts
  double give_up_seconds = 3600.0;     ///< stop retrying this long after the first failure
};

/** One routing rule: which instances go to which models. */
struct Rule {
  std::vector<std::string> modality;   ///< Modality values; empty = any
  std::vector<std::string> body_part;  ///< BodyPartExamined values ("" = absent); empty = any
  /// Named series stacked as channels, in this order: (channel name, regex on SeriesDescription).
  std::vector<std::pair<std::string, std::string>> series;
  std::vector<std::string> models;  ///< package names or folders
};

enum class HeatmapPolicy { kPositive, kAll, kNone };

struct Config {
  std::filesystem::path file;  ///< the config file itself
  std::string ae_title = "MEDVISION";
  uint16_t port = 11112;
  std::filesystem::path data_dir;
  std::vector<std::string> accept_from;  ///< calling AE titles; empty = any
  Destination destination;
  double idle_seconds = 5.0;
  int workers = 1;
  int threads = 2;
  /// Classification of a study's single-image inputs: images per inference batch of the
  /// streaming pipeline (medvision::run_many; 1: results equal one run per image exactly).
  int batch_size = 8;
  std::string device = "cpu";
  HeatmapPolicy heatmaps = HeatmapPolicy::kPositive;
  std::vector<Rule> rules;
};

/** The two default rules (chest X-ray; brain MR with FLAIR and T1 series). */
std::vector<Rule> default_rules();

/** Reads and validates a config file. Throws std::runtime_error naming the file and the key. */
Config load_config(const std::filesystem::path& path);

}  // namespace mvnode
