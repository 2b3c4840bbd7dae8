// The durable study queue: received instances and every study's state live in data_dir, so a
// restart (also after kill -9) resumes where the node stopped.
//
//   data_dir/studies/<key>/in/<SOPInstanceUID>.dcm   the received instances
//   data_dir/studies/<key>/out/*.dcm                 results (SR, SEG, SC) to send
//   data_dir/studies/<key>/state.json                instances, analysed set, outputs, sending
//   data_dir/jobs.jsonl                              one line per finished analysis job
//
// state.json is replaced atomically (write, fsync, rename) on every change.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "log.hpp"

namespace mvnode {

/** What the router needs to know about one received instance (no patient data). */
struct Instance {
  std::string sop_uid;
  std::string sop_class;
  std::string series_uid;
  std::string modality;
  std::string body_part;
  std::string series_description;
  int64_t instance_number = 0;
  std::filesystem::path file;  ///< absolute path of the stored copy
};

/** One result file of a study. */
struct Output {
  std::string file;  ///< name in the study's out/ folder
  std::string sop_uid;
  bool sent = false;
};

/** One finished analysis job, as jobs.jsonl records it. */
struct JobRecord {
  std::string study_uid;
  std::string model;
  std::string input;  ///< SOP Instance UID or Series Instance UID(s) of the input
  bool ok = false;
  size_t outputs = 0;
  double seconds = 0;
  std::string error;
};

/** A study handed to a worker for analysis. */
struct AnalysisWork {
  std::string key;
  std::string study_uid;
  std::filesystem::path out_dir;
  std::vector<Instance> instances;  ///< all received instances (not the node's own output)
  std::set<std::string> analysed;   ///< SOP Instance UIDs already analysed
};

/** A study with results to send. */
struct SendWork {
  std::string key;
  std::string study_uid;
  std::vector<std::filesystem::path> files;
};

struct RetryPolicy {
  double initial_seconds = 2;
  double max_seconds = 60;
  double give_up_seconds = 3600;
};

class StudyQueue {
 public:
  enum class Added { kNew, kKnown, kOwnOutput };

  /** Opens (creating) data_dir and loads every study; work interrupted by a crash is redone. */
  StudyQueue(std::filesystem::path data_dir, RetryPolicy retry, Log& log);

  /** Moves a received file into its study (durably) and records it. Thread-safe. */
  Added add(Instance info, const std::string& study_uid, const std::filesystem::path& received);

  /** Is this SOP Instance UID one of the node's own outputs (in any study)? */
  bool is_own_output(const std::string& sop_uid) const;

  /** A study whose last instance arrived `idle_seconds` ago and that has instances not yet
   *  analysed; it is marked running until finish_analysis(). */
  std::optional<AnalysisWork> claim_analysis(double idle_seconds);

  /** Records the outcome of claim_analysis(): `analysed` instances and the result files written
   *  to out_dir (each with its SOP Instance UID), and the jobs run. */
  void finish_analysis(const std::string& key, const std::vector<std::string>& analysed,
                       const std::vector<Output>& outputs, const std::vector<JobRecord>& jobs);

  /** A study with unsent results whose back-off delay has passed. */
  std::optional<SendWork> claim_send();
  void send_succeeded(const std::string& key, const std::vector<std::filesystem::path>& sent);
  /** Schedules the next attempt (exponential back-off) or gives up after give_up_seconds. */
  void send_failed(const std::string& key, const std::string& reason);

  /** Waits until something changes or `seconds` pass. */
  void wait(double seconds);
  /** Wakes every waiter (used on shutdown). */
  void wake_all();

  /** The queue and the last jobs as text, read from data_dir alone (for `status`). */
  static std::string status_text(const std::filesystem::path& data_dir, size_t last_jobs);

 private:
  struct Study {
    std::string key;
    std::string study_uid;
    double last_received = 0;
    std::map<std::string, Instance> instances;
    std::set<std::string> analysed;
    std::vector<Output> outputs;
    bool running = false;  // in memory only: a crash mid-analysis redoes the work
    int send_attempts = 0;
    double next_attempt = 0;
    double first_failure = 0;
    bool gave_up = false;
    std::string send_error;
    std::string last_error;
    int analyses = 0;
  };

  std::filesystem::path study_dir(const std::string& key) const;
  void load();
  void save(const Study& s) const;
  void append_job(const JobRecord& j) const;
  static bool has_pending(const Study& s);

  std::filesystem::path data_dir_;
  RetryPolicy retry_;
  Log& log_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Study> studies_;
  std::set<std::string> own_outputs_;
};

/** The folder name of a study: its UID when that is a plain UID, else a hash of it. */
std::string study_key(const std::string& study_uid);

}  // namespace mvnode
