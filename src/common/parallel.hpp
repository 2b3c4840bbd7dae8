#pragma once
// CPU count and a small fork-join helper for work inside one call (decoding one large image).

#include <functional>

namespace medvision {

// The CPUs this process may run on (sched_getaffinity; cgroup/taskset limits included), at least 1.
int usable_cpus();

// How many threads one call may use for its own inner parallelism on this thread: usable_cpus(),
// or the cap of the innermost ParallelismScope open on this thread (the pipeline's decode workers
// open one with their share of the CPUs: one each where there are as many workers as CPUs).
int inner_parallelism();

class ParallelismScope {
 public:
  explicit ParallelismScope(int max_threads);
  ~ParallelismScope();
  ParallelismScope(const ParallelismScope&) = delete;
  ParallelismScope& operator=(const ParallelismScope&) = delete;

 private:
  int previous_;
};

// Runs fn(0) .. fn(parts - 1), part 0 on the calling thread and the others on threads of their
// own, and returns when all have finished. The first exception (by part) is rethrown after the
// join; a thread that cannot be started runs its part on the caller instead.
void run_parts(int parts, const std::function<void(int)>& fn);

}  // namespace medvision
