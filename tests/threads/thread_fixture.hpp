#pragma once
// Shared by the thread-stress tests (label threads): run a body on 8 threads released together,
// and collect what each thread found wrong, for the test to check after they have joined.
//
// Catch2 2's assertion macros are not thread-safe, so the threads never call them: each records
// its mismatches as text, and the test CHECKs after join() that every thread's record is empty.

#include <atomic>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace mvtest {

constexpr int kThreads = 8;

// ThreadSanitizer (gcc defines __SANITIZE_THREAD__, clang has the feature).
#if defined(__SANITIZE_THREAD__)
constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kUnderTsan = true;
#else
constexpr bool kUnderTsan = false;
#endif
#else
constexpr bool kUnderTsan = false;
#endif

// What one thread found wrong: at most a few messages and a count of the rest.
class Faults {
 public:
  void add(const std::string& what) {
    if (count_++ < 5) text_ += what + "\n";
  }
  bool empty() const { return count_ == 0; }
  std::string text() const {
    return count_ > 5 ? text_ + "... and " + std::to_string(count_ - 5) + " more\n" : text_;
  }

 private:
  int count_ = 0;
  std::string text_;
};

// Runs body(t, faults[t]) on kThreads threads that all wait until the last one has started, so
// that their calls overlap. An exception escaping a body is recorded as a fault.
template <typename Body>
std::vector<Faults> on_threads(Body body) {
  std::vector<Faults> faults(kThreads);
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      started.fetch_add(1);
      while (started.load() < kThreads) std::this_thread::yield();
      try {
        body(t, faults[static_cast<size_t>(t)]);
      } catch (const std::exception& e) {
        faults[static_cast<size_t>(t)].add(std::string("exception: ") + e.what());
      } catch (...) {
        faults[static_cast<size_t>(t)].add("unknown exception");
      }
    });
  }
  for (auto& th : threads) th.join();
  return faults;
}

}  // namespace mvtest

// After on_threads(): every thread's record must be empty (a macro so that Catch2 reports the
// test's own line).
#define MV_CHECK_NO_FAULTS(faults)                               \
  for (size_t mv_t_ = 0; mv_t_ < (faults).size(); ++mv_t_) {     \
    INFO("thread " << mv_t_ << ":\n" << (faults)[mv_t_].text()); \
    CHECK((faults)[mv_t_].empty());                              \
  }
