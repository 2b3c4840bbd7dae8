// Replays inputs through a harness's LLVMFuzzerTestOneInput without libFuzzer: the regression
// corpus (tests/fuzz/regressions/<harness>/) in the normal and the ASan builds, run by ctest.
//
//   replay_<harness> PATH...   (files, or folders whose files are replayed in name order)
// Exit 0 when every input returned; a crash or a sanitizer report ends the process. An
// allocation through operator new of more than kMaxAllocation (1 GiB; the harnesses' image limit
// is 64 MiB of floats) aborts too: an over-allocation is a finding, even where the system would
// grant it (the libraries medvision calls, DCMTK included, allocate with new).

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMaxAllocation = size_t{1} << 30;

void* checked_alloc(size_t n, bool nothrow) {
  if (n > kMaxAllocation) {
    std::fprintf(stderr, "replay: over-allocation of %zu bytes\n", n);
    std::abort();
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr && !nothrow) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(size_t n) { return checked_alloc(n, false); }
void* operator new[](size_t n) { return checked_alloc(n, false); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return checked_alloc(n, true); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return checked_alloc(n, true); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') {
          files.push_back(e.path());
        }
      }
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    std::printf("%s (%zu bytes)\n", f.c_str(), bytes.size());
    std::fflush(stdout);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
