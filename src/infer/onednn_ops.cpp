// Operators on oneDNN's blocked layout and the graph passes that use them (see onednn_ops.hpp).

#include "infer/onednn_ops.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include <ideep.hpp>

namespace at::native {
// Defined and exported by libtorch_cpu (declared in ATen/native/mkldnn/MKLDNNCommon.h, which
// Debian's libtorch-dev does not ship): the oneDNN memory behind a MkldnnCPU tensor.
ideep::tensor& itensor_from_mkldnn(const at::Tensor& mkldnn_tensor);
}  // namespace at::native

namespace medvision::infer {
namespace {

// Where the float32 values of an (N, C, spatial...) tensor lie: element (n, c, s) is at
// data[((n * (padded_c / block) + c / block) * spatial + s) * block + c % block]. block 1 is the
// plain NC(D)HW layout; 8 and 16 are oneDNN's nCdhw8c / nCdhw16c (and their 2D forms).
struct Layout {
  float* data = nullptr;
  int64_t n = 0, c = 0, padded_c = 0, spatial = 0, block = 1;
};

std::optional<Layout> describe(ideep::tensor& t) {
  const dnnl_memory_desc_t d = t.get_desc().data;
  if (d.data_type != dnnl_f32 || d.format_kind != dnnl_blocked || d.ndims < 3 || d.offset0 != 0) {
    return std::nullopt;
  }
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  Layout l;
  if (b.inner_nblks == 1 && b.inner_idxs[0] == 1 &&
      (b.inner_blks[0] == 8 || b.inner_blks[0] == 16)) {
    l.block = b.inner_blks[0];
  } else if (b.inner_nblks != 0) {
    return std::nullopt;
  }
  l.n = d.dims[0];
  l.c = d.dims[1];
  l.padded_c = d.padded_dims[1];
  if (d.padded_dims[0] != l.n || l.padded_c % l.block != 0 || d.padded_offsets[1] != 0) {
    return std::nullopt;
  }
  l.spatial = 1;
  for (int k = 2; k < d.ndims; ++k) {
    if (d.padded_dims[k] != d.dims[k] || d.padded_offsets[k] != 0) return std::nullopt;
    l.spatial *= d.dims[k];
  }
  // The outer dimensions must be dense and in N, C-block, spatial order (strides of dimensions
  // of size 1 do not matter).
  int64_t expect = l.block;
  for (int k = d.ndims - 1; k >= 2; --k) {
    if (d.dims[k] != 1 && b.strides[k] != expect) return std::nullopt;
    expect *= d.dims[k];
  }
  if (l.padded_c / l.block != 1 && b.strides[1] != expect) return std::nullopt;
  expect *= l.padded_c / l.block;
  if (l.n != 1 && b.strides[0] != expect) return std::nullopt;
  l.data = static_cast<float*>(t.get_data_handle());
  if (l.data == nullptr) return std::nullopt;
  return l;
}

// Voxels per task; the statistics are summed in float over runs of kRun voxels and in double
// across runs, so the result does not depend on the thread count.
constexpr int64_t kChunk = 8192;
constexpr int64_t kRun = 64;

// The loops below are written for the compiler to vectorise across the B lanes of a block (or
// along the voxels, B = 1); each is compiled for AVX-512, AVX2 and the baseline and chosen on
// the first call by what the CPU has, as LibTorch chooses its own kernels. Not target_clones:
// its ifunc resolvers run while the dynamic linker relocates the library, before a sanitizer's
// runtime is ready (the ThreadSanitizer build crashed there).
enum class Isa { kBase, kAvx2, kAvx512 };

Isa cpu_isa() {
  static const Isa isa = __builtin_cpu_supports("avx512f") ? Isa::kAvx512
                         : __builtin_cpu_supports("avx2")  ? Isa::kAvx2
                                                           : Isa::kBase;
  return isa;
}

// Defines name(params) and its three compilations of body.
#define MV_VECTOR_VARIANTS(name, params, args, body)                                         \
  __attribute__((target("avx512f"))) void name##_avx512 params body __attribute__((target(   \
      "avx2"))) void name##_avx2 params body void name##_base params body void name params { \
    switch (cpu_isa()) {                                                                     \
      case Isa::kAvx512:                                                                     \
        name##_avx512 args;                                                                  \
        break;                                                                               \
      case Isa::kAvx2:                                                                       \
        name##_avx2 args;                                                                    \
        break;                                                                               \
      default:                                                                               \
        name##_base args;                                                                    \
    }                                                                                        \
  }

// Per-lane sums of (x - shift) and its square over voxels [s0, s1) of one plane of B lanes; the
// shift (the plane's first voxel) keeps the variance exact when the mean is large next to the
// spread.
template <int64_t B>
[[gnu::always_inline]] inline void sums_body(const float* base, int64_t s0, int64_t s1,
                                             double* out) {
  double sum[B] = {};
  double sq[B] = {};
  for (int64_t r0 = s0; r0 < s1; r0 += kRun) {
    const int64_t r1 = std::min(s1, r0 + kRun);
    float fs[B] = {};
    float fq[B] = {};
    for (int64_t v = r0; v < r1; ++v) {
      const float* px = base + v * B;
      for (int64_t j = 0; j < B; ++j) {
        const float dv = px[j] - base[j];
        fs[j] += dv;
        fq[j] += dv * dv;
      }
    }
    for (int64_t j = 0; j < B; ++j) {
      sum[j] += static_cast<double>(fs[j]);
      sq[j] += static_cast<double>(fq[j]);
    }
  }
  for (int64_t j = 0; j < B; ++j) {
    out[j] = sum[j];
    out[B + j] = sq[j];
  }
}

// y = x * a + o, then the leaky slope, in place over n voxels of B lanes.
template <int64_t B>
[[gnu::always_inline]] inline void apply_body(float* __restrict p, int64_t n,
                                              const float* __restrict a, const float* __restrict o,
                                              float slope) {
  float av[B];
  float ov[B];
  for (int64_t j = 0; j < B; ++j) {
    av[j] = a[j];
    ov[j] = o[j];
  }
  for (int64_t v = 0; v < n; ++v) {
    float* px = p + v * B;
    for (int64_t j = 0; j < B; ++j) {
      const float y = px[j] * av[j] + ov[j];
      px[j] = y < 0.0f ? y * slope : y;
    }
  }
}

MV_VECTOR_VARIANTS(sums1, (const float* base, int64_t s0, int64_t s1, double* out),
                   (base, s0, s1, out), { sums_body<1>(base, s0, s1, out); })
MV_VECTOR_VARIANTS(sums8, (const float* base, int64_t s0, int64_t s1, double* out),
                   (base, s0, s1, out), { sums_body<8>(base, s0, s1, out); })
MV_VECTOR_VARIANTS(sums16, (const float* base, int64_t s0, int64_t s1, double* out),
                   (base, s0, s1, out), { sums_body<16>(base, s0, s1, out); })
MV_VECTOR_VARIANTS(apply1, (float* p, int64_t n, const float* a, const float* o, float slope),
                   (p, n, a, o, slope), { apply_body<1>(p, n, a, o, slope); })
MV_VECTOR_VARIANTS(apply8, (float* p, int64_t n, const float* a, const float* o, float slope),
                   (p, n, a, o, slope), { apply_body<8>(p, n, a, o, slope); })
MV_VECTOR_VARIANTS(apply16, (float* p, int64_t n, const float* a, const float* o, float slope),
                   (p, n, a, o, slope), { apply_body<16>(p, n, a, o, slope); })

void sums(int64_t block, const float* base, int64_t s0, int64_t s1, double* out) {
  if (block == 16) {
    sums16(base, s0, s1, out);
  } else if (block == 8) {
    sums8(base, s0, s1, out);
  } else {
    sums1(base, s0, s1, out);
  }
}

void apply(int64_t block, float* p, int64_t n, const float* a, const float* o, float slope) {
  if (block == 16) {
    apply16(p, n, a, o, slope);
  } else if (block == 8) {
    apply8(p, n, a, o, slope);
  } else {
    apply1(p, n, a, o, slope);
  }
}

// Normalises x (described by l) and applies the slope: in place, or, when dense is given (the
// plain (N, C, spatial) copy of x that LibTorch's oneDNN reorder made), in dense; the statistics
// are always taken from x.
void normalise(const Layout& l, const float* weight, const float* bias, double eps, float slope,
               float* dense) {
  const int64_t bl = l.block;
  const int64_t blocks = l.padded_c / bl;
  const int64_t planes = l.n * blocks;  // (sample, channel block) pairs
  const int64_t s_total = l.spatial;
  const int64_t chunks = (s_total + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(planes * chunks * 2 * bl));
  at::parallel_for(0, planes * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t p = i / chunks;
      const int64_t s0 = (i % chunks) * kChunk;
      sums(bl, l.data + p * s_total * bl, s0, std::min(s_total, s0 + kChunk),
           part.data() + i * 2 * bl);
    }
  });

  // Scale and offset per (sample, channel): y = x * a + o; padded lanes give 0.
  std::vector<float> scale(static_cast<size_t>(planes * bl), 0.0f);
  std::vector<float> offset(static_cast<size_t>(planes * bl), 0.0f);
  const double count = static_cast<double>(s_total);
  for (int64_t p = 0; p < planes; ++p) {
    const float* base = l.data + p * s_total * bl;
    for (int64_t j = 0; j < bl; ++j) {
      const int64_t c = (p % blocks) * bl + j;
      if (c >= l.c) continue;
      double sum = 0.0;
      double sq = 0.0;
      for (int64_t k = 0; k < chunks; ++k) {
        sum += part[static_cast<size_t>((p * chunks + k) * 2 * bl + j)];
        sq += part[static_cast<size_t>((p * chunks + k) * 2 * bl + bl + j)];
      }
      const double m = sum / count;
      const double var = std::max(0.0, sq / count - m * m);
      const double mean = static_cast<double>(base[j]) + m;
      const double invstd = 1.0 / std::sqrt(var + eps);
      const double a = (weight ? static_cast<double>(weight[c]) : 1.0) * invstd;
      const double o = (bias ? static_cast<double>(bias[c]) : 0.0) - mean * a;
      scale[static_cast<size_t>(p * bl + j)] = static_cast<float>(a);
      offset[static_cast<size_t>(p * bl + j)] = static_cast<float>(o);
    }
  }

  if (dense == nullptr) {
    at::parallel_for(0, planes * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t p = i / chunks;
        const int64_t s0 = (i % chunks) * kChunk;
        apply(bl, l.data + (p * s_total + s0) * bl, std::min(kChunk, s_total - s0),
              scale.data() + p * bl, offset.data() + p * bl, slope);
      }
    });
    return;
  }
  // Dense: one contiguous run of s_total voxels per (sample, channel).
  const int64_t rows = l.n * l.c;
  at::parallel_for(0, rows * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t row = i / chunks;
      const int64_t s0 = (i % chunks) * kChunk;
      const int64_t sample = row / l.c;
      const int64_t c = row % l.c;
      const size_t k = static_cast<size_t>((sample * blocks + c / bl) * bl + c % bl);
      apply(1, dense + row * s_total + s0, std::min(kChunk, s_total - s0), &scale[k], &offset[k],
            slope);
    }
  });
}

const float* float_values(const c10::optional<at::Tensor>& t, int64_t channels, bool* ok) {
  if (!t || !t->defined()) return nullptr;
  if (t->scalar_type() != at::kFloat || !t->is_cpu() || t->is_mkldnn() || !t->is_contiguous() ||
      t->numel() != channels) {
    *ok = false;
    return nullptr;
  }
  return t->data_ptr<float>();
}

at::Tensor instance_norm_leaky_relu_mkldnn(const at::Tensor& x,
                                           const c10::optional<at::Tensor>& weight,
                                           const c10::optional<at::Tensor>& bias, double eps,
                                           double slope, bool dense_out) {
  if (x.is_mkldnn() && x.dim() >= 3) {
    if (std::optional<Layout> l = describe(at::native::itensor_from_mkldnn(x))) {
      bool ok = l->spatial > 1;
      const float* w = float_values(weight, l->c, &ok);
      const float* b = float_values(bias, l->c, &ok);
      if (ok) {
        // Dense: LibTorch's (oneDNN's) reorder to the plain layout first, then the statistics
        // from x and the normalisation in place on the copy (a strided write straight from the
        // blocked layout measured slower than the reorder).
        at::Tensor out;
        if (dense_out) out = x.to_dense();
        normalise(*l, w, b, eps, static_cast<float>(slope),
                  dense_out ? out.data_ptr<float>() : nullptr);
        return dense_out ? out : x;
      }
    }
  }
  // Anything else: LibTorch's own operators, as the graph had them.
  at::Tensor d = x.is_mkldnn() ? x.to_dense() : x;
  at::Tensor y = at::instance_norm(d, weight, bias, {}, {}, /*use_input_stats=*/true,
                                   /*momentum=*/0.0, eps, /*cudnn_enabled=*/false);
  at::leaky_relu_(y, slope);
  return dense_out ? y : y.to_mkldnn();
}

// The in-place activations optimize_for_inference puts on oneDNN tensors, as medvision runs them.
enum Elementwise : int64_t { kHardTanh = 0, kHardSwish = 1, kHardSigmoid = 2 };

// Written so that NaN stays NaN, as in LibTorch's kernels.
template <int64_t K>
[[gnu::always_inline]] inline void elementwise_body(float* p, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (K == kHardTanh) {
      p[i] = std::min(std::max(p[i], lo), hi);
    } else if constexpr (K == kHardSwish) {
      p[i] = p[i] * std::min(std::max(p[i] + 3.0f, 0.0f), 6.0f) / 6.0f;
    } else {
      p[i] = std::min(std::max(p[i] + 3.0f, 0.0f), 6.0f) / 6.0f;
    }
  }
}

MV_VECTOR_VARIANTS(elementwise_run, (float* p, int64_t n, int64_t kind, float lo, float hi),
                   (p, n, kind, lo, hi), {
                     if (kind == kHardTanh) {
                       elementwise_body<kHardTanh>(p, n, lo, hi);
                     } else if (kind == kHardSwish) {
                       elementwise_body<kHardSwish>(p, n, lo, hi);
                     } else {
                       elementwise_body<kHardSigmoid>(p, n, lo, hi);
                     }
                   })

// LibTorch 1.13's prim::MKLDNNHardTanh_ / MKLDNNClamp_ / MKLDNNHardSwish_ / MKLDNNHardSigmoid_
// view the oneDNN buffer as a dense tensor of the logical size; when the channels do not fill the
// last block (24 channels in blocks of 16 with AVX-512) the buffer is larger, the "out" tensor
// is re-allocated, and the activation is silently not applied: MobileNetV3 logits 0.90 instead
// of 1.01 (torch.jit.optimize_for_inference in Python gives the same wrong answer). This runs the
// activation over the whole buffer and puts the padded lanes back to zero (hardsigmoid(0) = 0.5,
// and oneDNN expects zero padding).
at::Tensor mkldnn_elementwise_(const at::Tensor& x, int64_t kind, double lo, double hi) {
  const auto flo = static_cast<float>(lo);
  const auto fhi = static_cast<float>(hi);
  if (x.is_mkldnn() && x.dim() >= 3) {
    if (std::optional<Layout> l = describe(at::native::itensor_from_mkldnn(x))) {
      const int64_t total = l->n * l->padded_c * l->spatial;
      at::parallel_for(0, (total + kChunk - 1) / kChunk, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t s0 = i * kChunk;
          elementwise_run(l->data + s0, std::min(kChunk, total - s0), kind, flo, fhi);
        }
      });
      if (l->padded_c > l->c) {
        const int64_t blocks = l->padded_c / l->block;
        const int64_t first_pad = l->c % l->block;  // lanes of the last block that are padding
        for (int64_t n = 0; n < l->n; ++n) {
          float* base = l->data + (n * blocks + blocks - 1) * l->spatial * l->block;
          for (int64_t v = 0; v < l->spatial; ++v) {
            std::fill(base + v * l->block + first_pad, base + (v + 1) * l->block, 0.0f);
          }
        }
      }
      return x;
    }
  }
  // Another layout: LibTorch's own operators on a dense copy, written back into x.
  at::Tensor d = x.is_mkldnn() ? x.to_dense() : x.contiguous();
  if (kind == kHardTanh) {
    d = at::clamp(d, lo, hi);
  } else if (kind == kHardSwish) {
    d = at::hardswish(d);
  } else {
    d = at::hardsigmoid(d);
  }
  x.copy_(x.is_mkldnn() ? d.to_mkldnn() : d);  // in place: copy_ is a const member of Tensor
  return x;
}

}  // namespace

namespace {

constexpr const char* kFusedName = "medvision::instance_norm_leaky_relu_mkldnn";
constexpr const char* kElementwiseName = "medvision::mkldnn_elementwise_";

// Registers the operator with LibTorch's dispatcher on first use rather than at load time
// (TORCH_LIBRARY): a second copy of medvision in the process (two ABI versions, a static and a
// shared build) would make a load-time registration throw during static initialisation, which
// terminates the process. Here a failure only means the graphs stay unfused, unless the other copy
// registered the same operator. The registration is undone when this library is unloaded (or at
// exit), so a copy loaded later registers its own kernel rather than finding a stale one.
bool operator_registered() {
  static std::optional<torch::Library> library;
  static const bool ok = [] {
    try {
      library.emplace(torch::Library::FRAGMENT, "medvision", c10::nullopt, __FILE__, __LINE__);
      library->def(
          "instance_norm_leaky_relu_mkldnn(Tensor x, Tensor? weight, Tensor? bias, float eps, "
          "float slope, bool dense_out) -> Tensor",
          &instance_norm_leaky_relu_mkldnn);
      library->def("mkldnn_elementwise_(Tensor(a!) x, int kind, float lo, float hi) -> Tensor(a!)",
                   &mkldnn_elementwise_);
      return true;
    } catch (const std::exception&) {
      return c10::Dispatcher::singleton().findSchema({kFusedName, ""}).has_value() &&
             c10::Dispatcher::singleton().findSchema({kElementwiseName, ""}).has_value();
    }
  }();
  return ok;
}

}  // namespace

namespace {

using torch::jit::Node;
using torch::jit::Value;

bool is_none(Value* v) {
  const auto iv = torch::jit::toIValue(v);
  return iv && iv->isNone();
}

std::optional<double> constant_double(Value* v) {
  const auto iv = torch::jit::toIValue(v);
  if (iv && iv->isDouble()) return iv->toDouble();
  if (iv && iv->isInt()) return static_cast<double>(iv->toInt());
  return std::nullopt;
}

struct Match {
  Node* dense;  // aten::to_dense(x)
  Node* norm;   // aten::instance_norm
  Node* relu;   // aten::leaky_relu[_]
  double eps;
  double slope;
  bool dense_out;  // false: every use of the result is an aten::to_mkldnn
};

std::optional<Match> match(Node* norm) {
  static const auto kDense = c10::Symbol::fromQualString("aten::to_dense");
  static const auto kConv = c10::Symbol::fromQualString("prim::mkldnn_convolution");
  static const auto kSize = c10::Symbol::fromQualString("aten::size");
  static const auto kRelu = c10::Symbol::fromQualString("aten::leaky_relu");
  static const auto kReluInPlace = c10::Symbol::fromQualString("aten::leaky_relu_");
  static const auto kToMkldnn = c10::Symbol::fromQualString("aten::to_mkldnn");
  if (norm->inputs().size() != 9) return std::nullopt;
  Node* dense = norm->input(0)->node();
  if (dense->kind() != kDense || dense->owningBlock() != norm->owningBlock()) return std::nullopt;
  if (dense->inputs().size() > 1 && !is_none(dense->input(1))) return std::nullopt;
  // x is written in place: it must be a fresh convolution output that nothing else reads.
  Value* x = dense->input(0);
  if (x->node()->kind() != kConv || x->uses().size() != 1) return std::nullopt;
  for (const auto& use : dense->output()->uses()) {
    if (use.user != norm && use.user->kind() != kSize) return std::nullopt;
  }
  if (!is_none(norm->input(3)) || !is_none(norm->input(4))) return std::nullopt;
  const auto stats = torch::jit::toIValue(norm->input(5));
  const auto eps = constant_double(norm->input(7));
  if (!stats || !stats->isBool() || !stats->toBool() || !eps) return std::nullopt;
  if (norm->output()->uses().size() != 1) return std::nullopt;
  Node* relu = norm->output()->uses()[0].user;
  if ((relu->kind() != kRelu && relu->kind() != kReluInPlace) || relu->inputs().size() != 2 ||
      relu->input(0) != norm->output() || relu->owningBlock() != norm->owningBlock()) {
    return std::nullopt;
  }
  const auto slope = constant_double(relu->input(1));
  if (!slope) return std::nullopt;
  bool all_to_mkldnn = !relu->output()->uses().empty();
  for (const auto& use : relu->output()->uses()) {
    const bool to_mkldnn = use.user->kind() == kToMkldnn && use.offset == 0 &&
                           (use.user->inputs().size() < 2 || is_none(use.user->input(1)));
    all_to_mkldnn = all_to_mkldnn && to_mkldnn;
  }
  return Match{dense, norm, relu, *eps, *slope, !all_to_mkldnn};
}

}  // namespace

int fuse_instance_norm_leaky_relu(const std::shared_ptr<torch::jit::Graph>& graph) {
  static const auto kNorm = c10::Symbol::fromQualString("aten::instance_norm");
  static const auto kFused = c10::Symbol::fromQualString(kFusedName);
  std::vector<Match> matches;
  if (!operator_registered()) return 0;
  for (Node* n : graph->nodes()) {
    if (n->kind() != kNorm) continue;
    if (auto m = match(n)) matches.push_back(*m);
  }
  for (const Match& m : matches) {
    Value* x = m.dense->input(0);
    torch::jit::WithInsertPoint guard(m.relu);
    Value* eps = graph->insertConstant(m.eps);
    Value* slope = graph->insertConstant(m.slope);
    Value* dense_out = graph->insertConstant(m.dense_out);
    Node* fused =
        graph->create(kFused, {x, m.norm->input(1), m.norm->input(2), eps, slope, dense_out});
    fused->insertBefore(m.relu);
    if (m.dense_out) {
      fused->output()->setType(m.relu->output()->type());
      m.relu->output()->replaceAllUsesWith(fused->output());
    } else {
      fused->output()->setType(x->type());
      const auto uses = m.relu->output()->uses();
      for (const auto& use : uses) {
        Node* to_mkldnn = use.user;
        to_mkldnn->output()->replaceAllUsesWith(fused->output());
        to_mkldnn->destroy();
      }
    }
    // The InstanceNorm's shape checks read the sizes, which the oneDNN tensor has too.
    const auto uses = m.dense->output()->uses();
    for (const auto& use : uses) {
      if (use.user != m.norm) use.user->replaceInput(use.offset, x);
    }
    m.relu->destroy();
    m.norm->destroy();
    m.dense->destroy();
  }
  return static_cast<int>(matches.size());
}

int repair_mkldnn_activations(const std::shared_ptr<torch::jit::Graph>& graph) {
  static const auto kOp = c10::Symbol::fromQualString(kElementwiseName);
  static const auto kHardTanhOp = c10::Symbol::fromQualString("prim::MKLDNNHardTanh_");
  static const auto kClampOp = c10::Symbol::fromQualString("prim::MKLDNNClamp_");
  static const auto kHardSwishOp = c10::Symbol::fromQualString("prim::MKLDNNHardSwish_");
  static const auto kHardSigmoidOp = c10::Symbol::fromQualString("prim::MKLDNNHardSigmoid_");
  static const auto kMin = c10::Symbol::attr("min_val");
  static const auto kMax = c10::Symbol::attr("max_val");
  std::vector<Node*> found;
  std::vector<torch::jit::Block*> blocks = {graph->block()};
  while (!blocks.empty()) {
    torch::jit::Block* b = blocks.back();
    blocks.pop_back();
    for (Node* n : b->nodes()) {
      const auto k = n->kind();
      if (k == kHardTanhOp || k == kClampOp || k == kHardSwishOp || k == kHardSigmoidOp) {
        found.push_back(n);
      }
      for (torch::jit::Block* inner : n->blocks()) blocks.push_back(inner);
    }
  }
  if (found.empty()) return 0;
  if (!operator_registered()) {
    // The caller then runs the frozen module: slower, but not wrong.
    throw c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                     "cannot register medvision's oneDNN activation operator");
  }
  for (Node* n : found) {
    const auto k = n->kind();
    int64_t kind = kHardTanh;
    double lo = 0.0;
    double hi = 0.0;
    if (k == kHardSwishOp) {
      kind = kHardSwish;
    } else if (k == kHardSigmoidOp) {
      kind = kHardSigmoid;
    } else {
      lo = n->f(kMin);
      hi = n->f(kMax);
    }
    torch::jit::WithInsertPoint guard(n);
    Value* kv = graph->insertConstant(kind);
    Value* lov = graph->insertConstant(lo);
    Value* hiv = graph->insertConstant(hi);
    Node* r = graph->create(kOp, {n->input(0), kv, lov, hiv});
    r->insertBefore(n);
    r->output()->setType(n->output()->type());
    n->output()->replaceAllUsesWith(r->output());
    n->destroy();
  }
  return static_cast<int>(found.size());
}

}  // namespace medvision::infer
