// The only translation unit of medvision that includes LibTorch.

#include "infer/runtime.hpp"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/parallel.hpp"
#include "infer/onednn_ops.hpp"

namespace medvision::infer {
namespace {

// c10::Error messages carry a C++ backtrace after the first line; keep only the first lines.
std::string short_message(const c10::Error& e) {
  std::string msg = e.what_without_backtrace();
  if (msg.size() > 600) msg = msg.substr(0, 600) + "...";
  return msg;
}

[[noreturn]] void rethrow_torch(const c10::Error& e, const std::string& where) {
  const std::string msg = short_message(e);
  const bool device =
      msg.find("CUDA") != std::string::npos || msg.find("cuda") != std::string::npos;
  if (msg.find("out of memory") != std::string::npos) {
    throw Error(MV_ERR_OUT_OF_MEMORY, where + ": " + msg);
  }
  throw Error(device ? MV_ERR_DEVICE : MV_ERR_MODEL, where + ": " + msg);
}

torch::Device parse_device(const std::string& spec) {
  if (spec.empty() || spec == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0)
                                       : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (spec.size() > 5) {
      try {
        size_t used = 0;
        index = std::stoi(spec.substr(5), &used);
        if (used != spec.size() - 5 || index < 0) throw std::invalid_argument("bad");
      } catch (const std::exception&) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "device '" + spec + "': expected cuda:N with N >= 0");
      }
    }
    if (!torch::cuda::is_available()) {
      throw Error(MV_ERR_DEVICE, "device '" + spec +
                                     "': CUDA is not available (this LibTorch build has no CUDA "
                                     "support, or no NVIDIA GPU/driver was found)");
    }
    const int count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      throw Error(MV_ERR_DEVICE,
                  fmt::format("device '{}': only {} CUDA device(s) present", spec, count));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error(MV_ERR_INVALID_ARGUMENT, "device '" + spec + "': expected auto, cpu, cuda or cuda:N");
}

// bf16 is only worth it (and only exact to its own spec) with native support; Linux reports it
// as the avx512_bf16 or amx_bf16 CPU flags.
bool cpu_has_bf16() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find("avx512_bf16") != std::string::npos ||
             line.find("amx_bf16") != std::string::npos;
    }
  }
  return false;
}

Tensor to_host(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  Tensor out;
  out.shape.assign(c.sizes().begin(), c.sizes().end());
  const float* p = c.data_ptr<float>();
  out.data.assign(p, p + c.numel());
  return out;
}

torch::Tensor first_tensor(const c10::IValue& v, const std::string& where) {
  if (v.isTensor()) return v.toTensor();
  if (v.isTuple() && !v.toTupleRef().elements().empty() && v.toTupleRef().elements()[0].isTensor())
    return v.toTupleRef().elements()[0].toTensor();
  if (v.isList() && !v.toListRef().empty() && v.toListRef()[0].isTensor())
    return v.toListRef()[0].toTensor();
  if (v.isGenericDict()) {
    for (const auto& kv : v.toGenericDict()) {
      if (kv.value().isTensor()) return kv.value().toTensor();
    }
  }
  throw Error(MV_ERR_MODEL, where + ": the model returned no tensor");
}

}  // namespace

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

struct Runtime::Impl {
  std::string path;
  // Every method (Grad-CAM's included): frozen (Graph::kFreeze, kOptimizeForInference) or as
  // loaded (kNone). Autograd works on it.
  torch::jit::Module module;
  // forward after freeze + optimize_for_inference (CPU, float32), used by run(forward) only;
  // empty otherwise. A separate module: the pass rewrites forward's graph in place and its
  // oneDNN ops have no autograd. It costs one more copy of the weights (small next to the
  // activations of one batch).
  std::optional<torch::jit::Module> fast;
  Graph graph = Graph::kNone;
  int fused_norms = 0;  // InstanceNorm + LeakyReLU pairs run by onednn_ops.cpp's operator
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  std::vector<std::string> warnings;

  torch::Tensor input(const float* data, const std::vector<int64_t>& shape) const {
    // from_blob does not copy: the caller's buffer lives for the duration of the call.
    torch::Tensor t = torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32);
    // Always a copy: a model may modify its input in place, and the caller's buffer is const.
    return t.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
  }
};

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runtime::~Runtime() = default;

std::unique_ptr<Runtime> Runtime::load(const std::string& path, const RuntimeOptions& options) {
  if (!std::filesystem::is_regular_file(path)) {
    throw Error(MV_ERR_IO, path + ": model file not found");
  }
  if (options.num_threads >= 0) {
    // LibTorch's intra-op pool is process-wide; the last model loaded with a thread count sets it.
    // Its own default is the number of physical cores, which is 1 on a 2-vCPU virtual machine
    // (half the speed there), so 0 means the CPUs this process may use.
    const int n = options.num_threads > 0 ? options.num_threads : usable_cpus();
    if (at::get_num_threads() != n) at::set_num_threads(n);
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->device = parse_device(options.device);
  if (options.precision == Precision::kReduced) {
    if (impl->device.is_cuda()) {
      impl->dtype = torch::kFloat16;
    } else if (cpu_has_bf16()) {
      impl->dtype = torch::kBFloat16;
    } else {
      impl->warnings.push_back(
          "reduced precision requested, but this CPU has no native bf16 (avx512_bf16/amx_bf16): "
          "running float32");
    }
  }
  if (impl->device.is_cuda() && impl->dtype == torch::kFloat32) {
    // LibTorch lets cuDNN use TF32 (10-bit mantissa) for float32 convolutions on Ampere and newer
    // GPUs; "float32" here means float32, so results agree with the CPU to ~1e-5. These switches
    // are process-wide in LibTorch. Measured on an H100: logits differed from the CPU by 2.3e-3
    // with TF32.
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  try {
    torch::jit::Module m = torch::jit::load(path, impl->device);
    m.eval();
    if (impl->dtype != torch::kFloat32) m.to(impl->dtype);
    for (const auto& name : options.methods) {
      if (!m.find_method(name)) {
        throw Error(MV_ERR_MODEL, path + ": the manifest needs method '" + name +
                                      "', which the TorchScript module does not export");
      }
    }
    impl->graph = options.optimize ? options.graph : Graph::kNone;
    if (impl->graph == Graph::kOptimizeForInference &&
        (!impl->device.is_cpu() || impl->dtype != torch::kFloat32)) {
      // optimize_for_inference's oneDNN conversion is for the CPU in float32; CUDA and bf16
      // keep the frozen module (unmeasured otherwise; the CUDA path is unchanged).
      impl->graph = Graph::kFreeze;
    }
    torch::jit::Module all = m;
    if (impl->graph != Graph::kNone) {
      try {
        all = torch::jit::freeze(m, options.methods);
      } catch (const c10::Error&) {
        // Some modules (e.g. with attributes mutated in forward) cannot be frozen; they still
        // run correctly unfrozen, only slower.
        impl->warnings.push_back("module could not be frozen; running it unfrozen");
        impl->graph = Graph::kNone;
      }
    }
    if (impl->graph == Graph::kOptimizeForInference) {
      try {
        // freeze() clones, so `all` is untouched; only forward is kept and optimised.
        torch::jit::Module f = torch::jit::freeze(m);
        torch::jit::Module optimised = torch::jit::optimize_for_inference(f);
        // Kept only once every pass succeeded: a failure leaves the frozen module running.
        const auto graph = optimised.get_method("forward").graph();
        repair_mkldnn_activations(graph);  // first: a wrong answer otherwise (onednn_ops.hpp)
        impl->fused_norms = fuse_instance_norm_leaky_relu(graph);
        impl->fast = std::move(optimised);
      } catch (const c10::Error& e) {
        impl->warnings.push_back("optimize_for_inference failed (" +
                                 short_message(e).substr(0, 200) + "); running the frozen module");
        impl->graph = Graph::kFreeze;
      }
    }
    impl->module = all;
  } catch (const c10::Error& e) {
    rethrow_torch(e, path + ": cannot load TorchScript module");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(MV_ERR_MODEL, path + ": cannot load TorchScript module: " + e.what());
  }
  return std::unique_ptr<Runtime>(new Runtime(std::move(impl)));
}

Tensor Runtime::run(const float* data, const std::vector<int64_t>& shape,
                    const std::string& method) const {
  try {
    c10::InferenceMode guard;
    torch::Tensor x = impl_->input(data, shape);
    if (impl_->fast && method == "forward") {
      return to_host(first_tensor(impl_->fast->forward({x}), impl_->path));
    }
    auto m = impl_->module.find_method(method);
    if (!m) throw Error(MV_ERR_MODEL, impl_->path + ": no method '" + method + "'");
    c10::IValue out = (*m)({x});
    return to_host(first_tensor(out, impl_->path));
  } catch (const c10::Error& e) {
    rethrow_torch(e, impl_->path + ": " + method + " failed");
  }
}

bool Runtime::has_method(const std::string& name) const {
  return impl_->module.find_method(name).has_value();
}

Runtime::CamTensors Runtime::features_and_gradients(const float* data,
                                                    const std::vector<int64_t>& shape,
                                                    int64_t label) const {
  try {
    // Autograd is needed here, so no InferenceMode; parameters stay frozen (no grad) and only
    // the feature maps require a gradient.
    torch::AutoGradMode grad(true);
    auto features = impl_->module.find_method("features");
    auto head = impl_->module.find_method("head");
    if (!features || !head) {
      throw Error(MV_ERR_MODEL, impl_->path + ": CAM needs the methods 'features' and 'head'");
    }
    torch::Tensor x = impl_->input(data, shape);
    torch::Tensor f = first_tensor((*features)({x}), impl_->path).detach().requires_grad_(true);
    torch::Tensor logits = first_tensor((*head)({f}), impl_->path);
    if (label < 0 && logits.dim() == 2 && logits.size(0) == 1) {
      label = logits.argmax(1).item<int64_t>();  // the most probable label of this one image
    }
    if (logits.dim() != 2 || label < 0 || label >= logits.size(1)) {
      throw Error(MV_ERR_SHAPE_MISMATCH,
                  fmt::format("{}: head returned logits of shape {}; label {} is out of range",
                              impl_->path, c10::str(logits.sizes()), label));
    }
    torch::Tensor score = logits.select(1, label).sum();
    auto grads = torch::autograd::grad({score}, {f});
    CamTensors out;
    out.features = to_host(f);
    out.gradients = to_host(grads[0]);
    out.logits = to_host(logits);
    return out;
  } catch (const c10::Error& e) {
    rethrow_torch(e, impl_->path + ": CAM failed");
  }
}

Runtime::CamTensors Runtime::region_gradients(const float* data, const std::vector<int64_t>& shape,
                                              const std::string& method, int64_t cls, bool softmax,
                                              double logit_threshold) const {
  try {
    // Frozen parameters are constants, so the input carries the graph: with x requiring a
    // gradient every activation downstream does, and autograd computes only the path from the
    // output back to the requested activations.
    torch::AutoGradMode grad(true);
    auto fn = impl_->module.find_method(method);
    if (!fn) throw Error(MV_ERR_MODEL, impl_->path + ": no method '" + method + "'");
    torch::Tensor x = impl_->input(data, shape).detach().requires_grad_(true);
    const c10::IValue res = (*fn)({x});
    if (!res.isTuple() || res.toTupleRef().elements().size() != 2 ||
        !res.toTupleRef().elements()[0].isTensor() || !res.toTupleRef().elements()[1].isTensor()) {
      throw Error(MV_ERR_MODEL, impl_->path + ": method '" + method +
                                    "' must return (output, activations), two tensors");
    }
    torch::Tensor y = res.toTupleRef().elements()[0].toTensor();
    torch::Tensor act = res.toTupleRef().elements()[1].toTensor();
    if (y.dim() < 3 || cls < 0 || cls >= y.size(1) || act.dim() != y.dim() ||
        act.size(0) != y.size(0)) {
      throw Error(
          MV_ERR_SHAPE_MISMATCH,
          fmt::format("{}: '{}' returned output {} and activations {}; class {} is out of "
                      "range or the shapes do not match",
                      impl_->path, method, c10::str(y.sizes()), c10::str(act.sizes()), cls));
    }
    if (!act.requires_grad()) {
      throw Error(MV_ERR_MODEL, impl_->path + ": the activations '" + method +
                                    "' returns do not depend on the input");
    }
    torch::Tensor score = y.select(1, cls);
    torch::Tensor region = softmax ? (y.argmax(1) == cls) : (score > logit_threshold);
    torch::Tensor target = (score * region.to(score.scalar_type())).sum();
    auto grads = torch::autograd::grad({target}, {act});
    CamTensors out;
    out.features = to_host(act);
    out.gradients = to_host(grads[0]);
    out.logits = to_host(y);
    return out;
  } catch (const c10::Error& e) {
    rethrow_torch(e, impl_->path + ": segmentation CAM failed");
  }
}

std::string Runtime::device() const { return impl_->device.str(); }

std::string Runtime::precision() const {
  switch (impl_->dtype) {
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    default:
      return "float32";
  }
}

std::string Runtime::graph() const {
  switch (impl_->graph) {
    case Graph::kOptimizeForInference:
      return "optimize_for_inference";
    case Graph::kFreeze:
      return "freeze";
    default:
      return "none";
  }
}

int Runtime::fused_norms() const { return impl_->fused_norms; }

std::vector<std::string> Runtime::warnings() const { return impl_->warnings; }

bool cuda_available() { return torch::cuda::is_available(); }
int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }
std::string torch_version() { return TORCH_VERSION; }

}  // namespace medvision::infer
