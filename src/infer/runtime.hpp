#pragma once
// medvision::infer: the TorchScript runtime. This header is LibTorch-free (pimpl); only
// runtime.cpp includes <torch/...>, so the rest of the library compiles fast.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace medvision::infer {

enum class Precision { kFloat32, kReduced };  // kReduced: bf16 on CPU, fp16 on CUDA

// The graph optimisation applied for plain inference (`run` of forward), from the manifest's
// "inference.graph" (docs/model-package.md, docs/performance.md):
//   kOptimizeForInference  freeze + torch::jit::optimize_for_inference (oneDNN prepacked
//                          weights, conv/bn/relu folding) on the CPU in float32; elsewhere
//                          (CUDA, bf16/fp16) it falls back to kFreeze;
//   kFreeze                torch::jit::freeze (parameters folded into constants);
//   kNone                  the module as loaded.
// Grad-CAM (features/head, activations) always runs on a frozen, unoptimised module: it needs
// autograd, which oneDNN's prepacked ops do not support.
enum class Graph { kOptimizeForInference, kFreeze, kNone };

struct RuntimeOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  // Intra-op threads (process-wide in LibTorch): > 0 that many; 0 every CPU this process may run
  // on (sched_getaffinity); < 0 leaves LibTorch's pool as it is (for hosts that manage it).
  int num_threads = 0;
  Precision precision = Precision::kFloat32;
  // false: no graph pass at all (the module as loaded, for every method); true: `graph`.
  bool optimize = true;
  Graph graph = Graph::kOptimizeForInference;
  // Methods besides forward that must survive freezing (e.g. "features", "head" for CAM).
  std::vector<std::string> methods;
};

// A host float32 tensor, C-contiguous.
struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
  int64_t numel() const;
};

class Runtime {
 public:
  // Loads a TorchScript file onto the requested device. Throws medvision::Error:
  // MV_ERR_IO (missing), MV_ERR_MODEL (not TorchScript, corrupt), MV_ERR_DEVICE (no CUDA).
  static std::unique_ptr<Runtime> load(const std::string& path, const RuntimeOptions& options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Runs `method` (default forward) on one float32 input tensor and returns its (first) tensor
  // output on the host as float32. Thread-safe: many threads may call it at once.
  Tensor run(const float* data, const std::vector<int64_t>& shape,
             const std::string& method = "forward") const;
  bool has_method(const std::string& name) const;

  // Grad-CAM family support: runs features(x) then head(f), and returns the feature maps, the
  // gradient of the sum of logits[:, label] w.r.t. them, and the logits. label -1 (one image
  // only) differentiates the most probable label. Needs the model's
  // `features` and `head` methods (kept when listed in RuntimeOptions::methods).
  struct CamTensors {
    Tensor features;   // [N, K, h, w] (or [N, K, d, h, w])
    Tensor gradients;  // same shape
    Tensor logits;     // [N, L]
  };
  CamTensors features_and_gradients(const float* data, const std::vector<int64_t>& shape,
                                    int64_t label) const;

  // Segmentation Grad-CAM support: runs `method` (x -> (output [N, K, *s], activations
  // [N, A, *a])) and differentiates the target sum over n of output[n, cls] over the region where
  // class `cls` is predicted in that output (softmax: argmax over K == cls; sigmoid: the logit >
  // `logit_threshold`) with respect to the activations. Returns the activations, that gradient
  // and the output (as `logits`).
  CamTensors region_gradients(const float* data, const std::vector<int64_t>& shape,
                              const std::string& method, int64_t cls, bool softmax,
                              double logit_threshold) const;

  std::string device() const;  // "cpu" or "cuda:N"
  // The graph optimisation plain inference runs with: "optimize_for_inference", "freeze" or
  // "none" (after any fall-back; see warnings()).
  std::string graph() const;
  // InstanceNorm + LeakyReLU pairs the optimised graph runs as one operator (onednn_ops.hpp).
  int fused_norms() const;
  std::string precision() const;              // "float32", "bfloat16", "float16"
  std::vector<std::string> warnings() const;  // e.g. a fall-back from reduced precision

 private:
  struct Impl;
  explicit Runtime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

bool cuda_available();
int cuda_device_count();
// The LibTorch version medvision was built against, e.g. "1.13.1".
std::string torch_version();

}  // namespace medvision::infer
