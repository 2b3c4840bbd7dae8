// infer::TensorCacheScope (issue 17, 3D segmentation's system time): inside a scope LibTorch's
// large CPU buffers are reused; outside it LibTorch's own allocator serves them unchanged; the
// cache is empty again when the last scope closes.

#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cstdint>

#include "infer/tensor_cache.hpp"

using medvision::infer::tensor_cache_stats;
using medvision::infer::TensorCacheScope;

TEST_CASE("tensor cache: a scope reuses large buffers and releases them at its end", "[segment]") {
  const int64_t n = int64_t{4} << 20;  // 16 MiB of float32
  const auto bytes = static_cast<size_t>(n) * sizeof(float);
  {
    const TensorCacheScope scope;
    const auto before = tensor_cache_stats();
    REQUIRE(before.installed);
    const void* first = nullptr;
    {
      const torch::Tensor a = torch::empty({n});
      first = a.data_ptr();
    }
    REQUIRE(tensor_cache_stats().cached_bytes >= bytes);
    torch::Tensor b = torch::empty({n});
    CHECK(b.data_ptr() == first);
    CHECK(tensor_cache_stats().hits == before.hits + 1);
    b.fill_(1.0f);
    CHECK(b.sum().item<double>() == static_cast<double>(n));
    // A small tensor is never cached (glibc's heap reuses those itself).
    const auto small_before = tensor_cache_stats();
    { const torch::Tensor s = torch::empty({1024}); }
    CHECK(tensor_cache_stats().misses == small_before.misses);
    CHECK(tensor_cache_stats().hits == small_before.hits);
  }
  CHECK(tensor_cache_stats().cached_bytes == 0);

  // Outside every scope: LibTorch's own allocator, nothing counted, nothing kept.
  const auto outside = tensor_cache_stats();
  { const torch::Tensor c = torch::empty({n}); }
  CHECK(tensor_cache_stats().hits == outside.hits);
  CHECK(tensor_cache_stats().misses == outside.misses);
  CHECK(tensor_cache_stats().cached_bytes == 0);
}

TEST_CASE("tensor cache: nested scopes keep the cache until the outer one closes", "[segment]") {
  const int64_t n = int64_t{2} << 20;  // 8 MiB
  const TensorCacheScope outer;
  {
    const TensorCacheScope inner;
    const torch::Tensor a = torch::empty({n});
  }
  CHECK(tensor_cache_stats().cached_bytes >= static_cast<size_t>(n) * sizeof(float));
  const auto before = tensor_cache_stats();
  const torch::Tensor b = torch::empty({n});
  CHECK(tensor_cache_stats().hits == before.hits + 1);
}
