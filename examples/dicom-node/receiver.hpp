// The Storage SCP: accepts C-ECHO and C-STORE from the configured calling AE titles and puts
// every received instance in the durable study queue before acknowledging it.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "config.hpp"
#include "log.hpp"
#include "study_queue.hpp"

namespace mvnode {

class Receiver {
 public:
  /** Opens the listening port (throws when it cannot) and starts accepting associations on a
   *  thread this object owns. */
  Receiver(const Config& config, StudyQueue& queue, Log& log);
  /** Stops accepting (within about a second) and joins the thread. */
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

 private:
  class Scp;
  std::atomic<bool> stop_{false};
  std::unique_ptr<Scp> scp_;
  std::thread thread_;
};

}  // namespace mvnode
