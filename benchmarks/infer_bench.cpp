// infer_bench: medvision's C++ inference call path alone (infer::Runtime::run, the call every
// classify/segment goes through), for benchmarks/infer_gap.py, which runs it alternately with
// the Python call path (infer_peer.py) on the same TorchScript file. docs/performance.md.
//
//   infer_bench MODEL.pt GRAPH THREADS SHAPE BATCHES REPEAT [WARMUP] [cache]
//     GRAPH   optimize_for_inference | freeze | none
//     SHAPE   one input without the batch dimension, e.g. 1,224,224
//     BATCHES e.g. 1,16 (timed in this order, each after WARMUP untimed calls, default 3)
//     cache   run every call inside one infer::TensorCacheScope, as the sliding window does
//             (3D segmentation), so that large buffers are reused instead of re-faulted
// Prints one JSON object: load_ms, and per batch the first WARMUP call times and the samples.
// Input: a fixed pseudo-random pattern (values in [-2, 2]), the same in infer_peer.py.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "infer/runtime.hpp"
#include "infer/tensor_cache.hpp"

namespace {

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t comma = s.find(',', at);
    const std::string part =
        s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!part.empty()) v.push_back(std::stoll(part));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return v;
}

std::string samples(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.3f", i ? ", " : "", v[i]);
    s += buf;
  }
  return s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr,
                 "usage: infer_bench MODEL.pt GRAPH THREADS SHAPE BATCHES REPEAT [WARMUP] "
                 "[cache]\n");
    return 2;
  }
  try {
    namespace infer = medvision::infer;
    infer::RuntimeOptions o;
    o.device = "cpu";
    o.num_threads = std::atoi(argv[3]);
    const std::string graph = argv[2];
    if (graph == "optimize_for_inference") {
      o.graph = infer::Graph::kOptimizeForInference;
    } else if (graph == "freeze") {
      o.graph = infer::Graph::kFreeze;
    } else if (graph == "none") {
      o.graph = infer::Graph::kNone;
    } else {
      std::fprintf(stderr, "infer_bench: unknown graph '%s'\n", graph.c_str());
      return 2;
    }
    const std::vector<int64_t> shape = parse_list(argv[4]);
    const std::vector<int64_t> batches = parse_list(argv[5]);
    const int repeat = std::atoi(argv[6]);
    const int warmup = argc > 7 ? std::atoi(argv[7]) : 3;
    const bool cache = argc > 8 && std::strcmp(argv[8], "cache") == 0;
    std::unique_ptr<infer::TensorCacheScope> scope;
    if (cache) scope = std::make_unique<infer::TensorCacheScope>();
    const double t0 = now_ms();
    auto rt = infer::Runtime::load(argv[1], o);
    const double load_ms = now_ms() - t0;
    std::printf(
        "{\"path\": \"C++ (medvision infer::Runtime)\", \"graph\": \"%s\", \"fused_norms\": %d, "
        "\"load_ms\": %.1f, \"batches\": {",
        rt->graph().c_str(), rt->fused_norms(), load_ms);
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      std::vector<int64_t> full = {batches[bi]};
      full.insert(full.end(), shape.begin(), shape.end());
      int64_t n = 1;
      for (int64_t s : full) n *= s;
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        x[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 4001) / 1000.0f - 2.0f;
      std::vector<double> first, ms;
      for (int i = 0; i < warmup + repeat; ++i) {
        const double a = now_ms();
        infer::Tensor out = rt->run(x.data(), full);
        (i < warmup ? first : ms).push_back(now_ms() - a);
        if (out.data.empty()) return 1;
      }
      std::printf("%s\"%lld\": {\"first\": %s, \"samples\": %s}", bi ? ", " : "",
                  static_cast<long long>(batches[bi]), samples(first).c_str(), samples(ms).c_str());
      std::fflush(stdout);
    }
    std::printf("}}\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infer_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
