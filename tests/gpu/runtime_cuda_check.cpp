// Checks medvision::infer::Runtime on a real CUDA device against the CPU: results, fp16, CAM
// gradients, concurrent runs, errors, and a throughput figure. Prints one line per check and
// exits non-zero on any failure. Usage: runtime_cuda_check MODEL.pt [channels size labels]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "infer/runtime.hpp"

using medvision::infer::Precision;
using medvision::infer::Runtime;
using medvision::infer::RuntimeOptions;

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  if (!ok) ++failures;
}
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
double pearson(const std::vector<float>& a, const std::vector<float>& b) {
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= a.size();
  mb /= b.size();
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb + 1e-30);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string model = argv[1];
  const int64_t c = argc > 2 ? std::stoll(argv[2]) : 1, s = argc > 3 ? std::stoll(argv[3]) : 224;
  std::printf("LibTorch %s, CUDA available %d, devices %d\n",
              medvision::infer::torch_version().c_str(), medvision::infer::cuda_available(),
              medvision::infer::cuda_device_count());
  check(medvision::infer::cuda_available(), "CUDA is available");

  RuntimeOptions cpu_o;
  cpu_o.device = "cpu";
  cpu_o.methods = {"features", "head"};
  RuntimeOptions gpu_o = cpu_o;
  gpu_o.device = "cuda:0";
  RuntimeOptions half_o = gpu_o;
  half_o.precision = Precision::kReduced;
  RuntimeOptions auto_o = cpu_o;
  auto_o.device = "auto";
  auto cpu = Runtime::load(model, cpu_o);
  auto gpu = Runtime::load(model, gpu_o);
  auto half = Runtime::load(model, half_o);
  auto aut = Runtime::load(model, auto_o);
  check(gpu->device() == "cuda:0", "device cuda:0 -> " + gpu->device());
  check(aut->device() == "cuda:0", "device auto picks the GPU -> " + aut->device());
  check(half->precision() == "float16", "reduced precision on CUDA is " + half->precision());

  const int64_t n = 16;
  std::vector<float> x(static_cast<size_t>(n * c * s * s));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& v : x) v = nd(rng);
  const std::vector<int64_t> shape = {n, c, s, s};
  const auto yc = cpu->run(x.data(), shape), yg = gpu->run(x.data(), shape),
             yh = half->run(x.data(), shape);
  const float d32 = max_abs_diff(yc.data, yg.data), d16 = max_abs_diff(yc.data, yh.data);
  char buf[256];
  std::snprintf(buf, sizeof buf, "fp32 CUDA vs CPU logits max |diff| = %.2e (batch %lld)", d32,
                (long long)n);
  check(d32 < 1e-3f, buf);
  std::snprintf(buf, sizeof buf, "fp16 CUDA vs fp32 CPU logits max |diff| = %.2e", d16);
  check(d16 < 5e-2f * (1.0f + *std::max_element(yc.data.begin(), yc.data.end())), buf);

  const auto camc = cpu->features_and_gradients(x.data(), {1, c, s, s}, 0);
  const auto camg = gpu->features_and_gradients(x.data(), {1, c, s, s}, 0);
  std::snprintf(buf, sizeof buf, "CAM features/gradients on CUDA vs CPU: Pearson %.6f / %.6f",
                pearson(camc.features.data, camg.features.data),
                pearson(camc.gradients.data, camg.gradients.data));
  check(pearson(camc.gradients.data, camg.gradients.data) > 0.999, buf);

  // 8 threads share the GPU runtime and must reproduce the serial result.
  std::vector<int> bad(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 10; ++r)
        if (max_abs_diff(gpu->run(x.data(), shape).data, yg.data) > 1e-4f) ++bad[t];
    });
  for (auto& t : threads) t.join();
  check(std::all_of(bad.begin(), bad.end(), [](int b) { return b == 0; }),
        "8 threads x 10 runs on one CUDA runtime match the serial result");

  try {
    RuntimeOptions o = cpu_o;
    o.device = "cuda:" + std::to_string(medvision::infer::cuda_device_count() + 3);
    Runtime::load(model, o);
    check(false, "a missing CUDA device is refused");
  } catch (const medvision::Error& e) {
    check(e.status() == MV_ERR_DEVICE, std::string("missing device -> MV_ERR_DEVICE: ") + e.what());
  }

  for (Runtime* rt : {gpu.get(), half.get()}) {
    for (int64_t b : {1, 16, 64}) {
      std::vector<float> xb(static_cast<size_t>(b * c * s * s), 0.5f);
      for (int w = 0; w < 10; ++w) rt->run(xb.data(), {b, c, s, s});
      const int reps = 20;
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) rt->run(xb.data(), {b, c, s, s});
      const double sec =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf(
          "THROUGHPUT %s batch %3lld: %8.1f images/s (%.2f ms per batch, host->device->host "
          "included)\n",
          rt->precision().c_str(), (long long)b, reps * b / sec, 1e3 * sec / reps);
    }
  }
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
