#include "common/parallel.hpp"

#include <sched.h>

#include <algorithm>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace medvision {
namespace {

thread_local int tls_parallelism_cap = 0;  // 0: no scope open

}  // namespace

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int inner_parallelism() {
  const int cpus = usable_cpus();
  return tls_parallelism_cap > 0 ? std::min(cpus, tls_parallelism_cap) : cpus;
}

ParallelismScope::ParallelismScope(int max_threads) : previous_(tls_parallelism_cap) {
  tls_parallelism_cap = std::max(1, max_threads);
}

ParallelismScope::~ParallelismScope() { tls_parallelism_cap = previous_; }

void run_parts(int parts, const std::function<void(int)>& fn) {
  if (parts <= 1) {
    fn(0);
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<size_t>(parts));
  auto guarded = [&](int part) {
    try {
      fn(part);
    } catch (...) {
      errors[static_cast<size_t>(part)] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(parts - 1));
  std::vector<int> on_caller{0};
  for (int part = 1; part < parts; ++part) {
    try {
      threads.emplace_back(guarded, part);
    } catch (const std::system_error&) {
      on_caller.push_back(part);  // no thread to be had: the caller does it
    }
  }
  for (const int part : on_caller) guarded(part);
  for (auto& t : threads) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace medvision
