// The Storage SCU: sends each study's results to the destination, with exponential back-off
// while the destination is unreachable and a give-up limit (the reason is logged and kept).
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "config.hpp"
#include "log.hpp"
#include "study_queue.hpp"

namespace mvnode {

class Sender {
 public:
  /** Starts the sending thread (owned and joined by this object). */
  Sender(const Config& config, StudyQueue& queue, Log& log);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

 private:
  void run();
  /** Sends the files on one association; returns the ones the destination accepted and sets
   *  `error` to the first failure. */
  std::vector<std::filesystem::path> send(const SendWork& work, std::string& error);

  const Config& config_;
  StudyQueue& queue_;
  Log& log_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace mvnode
