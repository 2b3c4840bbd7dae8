#pragma once
// Reuse of LibTorch's large CPU tensor buffers across the forward passes of one call
// (issue 17, 3D segmentation). LibTorch-free header: src/segment and src/model use it.
//
// Why: glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
// mmap and returns it with munmap on free, so each forward pass of a 3D U-Net re-faults its
// activations page by page (hundreds of MiB per window): on a BraTS crop 1.98 M minor page faults
// and 6.0 s of system time for 15.5 s of user time. While any TensorCacheScope is open, LibTorch
// CPU allocations of at least 1 MiB (made on the thread running the pass: the intra-op workers
// rarely allocate) come from a cache of buffers that earlier passes freed, bounded to 1.25x the
// most in use at once; when the last scope in the process closes, the cache is freed.
//
// How: a c10::Allocator installed once (c10::SetCPUAllocator) in front of LibTorch's own CPU
// allocator. While no scope is open it hands each request to that allocator unchanged, so other
// users of LibTorch in the process (Python's torch beside the bindings) see the same behaviour as
// before; while one is open their large buffers are cached too, and freed with the cache. If
// another allocator with a higher priority is installed, scopes do nothing.

#include <cstddef>

namespace medvision::infer {

class TensorCacheScope {
 public:
  TensorCacheScope() noexcept;
  ~TensorCacheScope();
  TensorCacheScope(const TensorCacheScope&) = delete;
  TensorCacheScope& operator=(const TensorCacheScope&) = delete;
};

// For tests and benchmarks: the cache's counters since the process started.
struct TensorCacheStats {
  size_t hits = 0;          // requests served from the cache
  size_t misses = 0;        // requests in a scope that allocated a new buffer
  size_t cached_bytes = 0;  // bytes held in the cache now
  bool installed = false;   // the allocator is LibTorch's CPU allocator
};
TensorCacheStats tensor_cache_stats() noexcept;

}  // namespace medvision::infer
