#include "preprocess/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/error.hpp"
#include "preprocess/step.hpp"

namespace medvision::preprocess {

// ---------------------------------------------------------------------------------------------
Work::Work(const Image& image)
    : src_(image.data()),
      channels_(image.channels()),
      size_{{image.depth(), image.height(), image.width()}} {
  photometric_ = image.photometric;
  // Image geometry is (column, row, slice) = (x, y, z); ours is indexed (D, H, W) = (z, y, x).
  for (int a = 0; a < 3; ++a) {
    spacing_[a] = image.geometry.spacing[2 - a];
    for (int r = 0; r < 3; ++r) dir_[a][r] = image.geometry.direction[r * 3 + (2 - a)];
  }
  origin_ = image.geometry.origin;
}

void Work::replace(const std::vector<float>& pixels, int64_t channels, const Size3& size) {
  owned_.reset(new float[pixels.size()]);
  std::copy(pixels.begin(), pixels.end(), owned_.get());
  src_ = owned_.get();
  channels_ = channels;
  size_ = size;
  range_valid_ = false;
}

void Work::replace(std::unique_ptr<float[]> pixels, int64_t channels, const Size3& size) {
  owned_ = std::move(pixels);
  src_ = owned_.get();
  channels_ = channels;
  size_ = size;
  range_valid_ = false;
}

std::pair<float, float> Work::min_max() const {
  if (range_valid_) return range_;
  // Eight independent lanes: the compiler vectorises this, where a single running min/max
  // would be a serial dependency chain (about 4x slower on a 5-Mpixel radiograph).
  constexpr int kLanes = 8;
  float lo[kLanes], hi[kLanes];
  std::fill(lo, lo + kLanes, std::numeric_limits<float>::infinity());
  std::fill(hi, hi + kLanes, -std::numeric_limits<float>::infinity());
  const float* p = src_;
  const int64_t n = count();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      lo[k] = p[i + k] < lo[k] ? p[i + k] : lo[k];
      hi[k] = p[i + k] > hi[k] ? p[i + k] : hi[k];
    }
  }
  for (; i < n; ++i) {
    lo[0] = p[i] < lo[0] ? p[i] : lo[0];
    hi[0] = p[i] > hi[0] ? p[i] : hi[0];
  }
  range_ = {*std::min_element(lo, lo + kLanes), *std::max_element(hi, hi + kLanes)};
  range_valid_ = true;
  return range_;
}

// ---------------------------------------------------------------------------------------------
Pipeline Pipeline::from_json(const nlohmann::json& steps, const InputSpec& input,
                             const std::string& where) {
  if (input.ndim != 2 && input.ndim != 3) {
    throw Error(MV_ERR_MODEL, where + ": input.ndim must be 2 or 3");
  }
  if (input.channels <= 0) throw Error(MV_ERR_MODEL, where + ": input.channels must be positive");
  if (!input.spacing.empty() &&
      (input.spacing.size() != 3 || std::any_of(input.spacing.begin(), input.spacing.end(),
                                                [](double v) { return !(v > 0); }))) {
    throw Error(MV_ERR_MODEL, where + ": input.spacing must be three positive numbers or null");
  }
  if (!steps.is_array()) throw Error(MV_ERR_MODEL, where + ": 'preprocess' must be an array");

  Pipeline p;
  p.input_ = input;
  for (size_t i = 0; i < steps.size(); ++i) {
    const nlohmann::json& j = steps[i];
    const std::string at = where + ": preprocess[" + std::to_string(i) + "]";
    if (!j.is_object()) throw Error(MV_ERR_MODEL, at + ": must be an object");
    if (!j.contains("op") || !j["op"].is_string()) {
      throw Error(MV_ERR_MODEL, at + ": 'op' is required and must be a string");
    }
    const std::string op = j["op"].get<std::string>();
    const StepKind* kind = find_step(op);
    if (kind == nullptr) throw Error(MV_ERR_MODEL, at + ".op: unknown step '" + op + "'");
    Params q(j, at + " (" + op + ")");
    if (kind->only_3d && input.ndim != 3) {
      throw Error(MV_ERR_MODEL, q.context() + ": only for 3D models (input.ndim 3)");
    }
    std::unique_ptr<Step> s = kind->parse(q, input);
    q.forbid_unread();
    s->set_context(q.context());
    if (op == "monochrome") p.has_monochrome_ = true;
    p.steps_.push_back(std::move(s));
  }
  return p;
}

Prepared Pipeline::run(const Image& image) const {
  if (image.size() == 0) throw Error(MV_ERR_INVALID_ARGUMENT, "preprocess: the image is empty");
  if (input_.ndim == 2 && image.depth() != 1) {
    throw Error(MV_ERR_SHAPE_MISMATCH, "preprocess: the model takes 2D images but the image has " +
                                           std::to_string(image.depth()) +
                                           " slices; pick one slice (or frame) first");
  }
  Prepared prepared;
  RunContext ctx{image, input_, prepared};
  prepared.chain.original_size = {{image.depth(), image.height(), image.width()}};

  // Warnings about an input that does not look like what the model was trained on.
  if (const std::string* m = image.find_meta("Modality");
      m != nullptr && !input_.modalities.empty() &&
      std::find(input_.modalities.begin(), input_.modalities.end(), *m) ==
          input_.modalities.end()) {
    std::string list;
    for (const auto& e : input_.modalities) list += (list.empty() ? "" : ", ") + e;
    ctx.warn("modality " + *m + " is not one the model expects (" + list + ")");
  }
  if (image.photometric == MV_PHOTOMETRIC_MONOCHROME1 && !has_monochrome_) {
    ctx.warn("the image is MONOCHROME1 (inverted) and the pipeline has no monochrome step");
  }
  if ((image.channels() == 3 || image.photometric == MV_PHOTOMETRIC_RGB) && input_.channels == 1) {
    ctx.warn("a colour image is given to a single-channel model");
  }
  Work w(image);
  {
    const auto mm = w.min_max();
    if (!(mm.first <= mm.second)) {
      ctx.warn("the image has no finite values");
    } else if (!std::isfinite(mm.first) || !std::isfinite(mm.second)) {
      ctx.warn("the image has infinite values");
    } else if (mm.first == mm.second) {
      ctx.warn("the image is constant (all values " + num_text(mm.first) + ")");
    }
  }

  for (const auto& s : steps_) s->apply(w, ctx);
  if (w.channels() != input_.channels) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                "preprocess: the model expects " + std::to_string(input_.channels) +
                    " channels but the pipeline produced " + std::to_string(w.channels()) +
                    " (add or fix a 'channels' step)");
  }
  const Size3& sz = w.size();
  prepared.shape = input_.ndim == 2 ? std::vector<int64_t>{w.channels(), sz[1], sz[2]}
                                    : std::vector<int64_t>{w.channels(), sz[0], sz[1], sz[2]};
  prepared.data.assign(w.data(), w.data() + w.count());
  return prepared;
}

// ---------------------------------------------------------------------------------------------
std::vector<float> map_to_original(const TransformChain& chain, const float* data, int64_t channels,
                                   bool nearest, float fill) {
  // Compose the chain into model[a] = original[perm[a]] * scale[a] + offset[a].
  std::array<int, 3> perm{{0, 1, 2}};
  std::array<double, 3> scale{{1, 1, 1}}, offset{{0, 0, 0}};
  Size3 model = chain.original_size;
  for (const GridStep& g : chain.steps) {
    std::array<int, 3> p2{};
    std::array<double, 3> s2{}, o2{};
    for (int a = 0; a < 3; ++a) {
      const int k = g.permutation[a];
      p2[a] = perm[k];
      s2[a] = scale[k] * g.scale[a];
      o2[a] = offset[k] * g.scale[a] + g.offset[a];
    }
    perm = p2;
    scale = s2;
    offset = o2;
    model = g.out_size;
  }
  const Size3& orig = chain.original_size;
  const Size3 model_stride{{model[1] * model[2], model[2], 1}};

  // Per original axis: for every index, the two model samples (as flat offsets) and the weight
  // of the second; -1 marks positions the model never saw.
  struct Axis {
    std::vector<int64_t> i0, i1;
    std::vector<float> w1;
  };
  std::array<Axis, 3> ax;
  for (int a = 0; a < 3; ++a) {
    const int k = perm[a];  // original axis feeding model axis a
    Axis& t = ax[k];
    const int64_t n = model[a];
    t.i0.resize(orig[k]);
    t.i1.resize(orig[k]);
    t.w1.resize(orig[k]);
    for (int64_t i = 0; i < orig[k]; ++i) {
      const double c = as_double(i) * scale[a] + offset[a];
      if (c < -0.5 || c > as_double(n) - 0.5) {
        t.i0[i] = t.i1[i] = -1;
        t.w1[i] = 0;
        continue;
      }
      if (nearest) {
        const int64_t j = std::clamp<int64_t>(static_cast<int64_t>(std::floor(c + 0.5)), 0, n - 1);
        t.i0[i] = t.i1[i] = j * model_stride[a];
        t.w1[i] = 0;
      } else {
        const double cc = std::clamp(c, 0.0, as_double(n - 1));
        const int64_t j = std::min<int64_t>(static_cast<int64_t>(cc), n - 1);
        const int64_t j1 = std::min<int64_t>(j + 1, n - 1);
        t.i0[i] = j * model_stride[a];
        t.i1[i] = j1 * model_stride[a];
        t.w1[i] = static_cast<float>(cc - as_double(j));
      }
    }
  }

  const int64_t model_count = model[0] * model[1] * model[2];
  const int64_t orig_count = orig[0] * orig[1] * orig[2];
  std::vector<float> out(static_cast<size_t>(channels * orig_count));
  float* dst = out.data();
  for (int64_t c = 0; c < channels; ++c) {
    const float* m = data + c * model_count;
    for (int64_t z = 0; z < orig[0]; ++z) {
      const int64_t z0 = ax[0].i0[z], z1 = ax[0].i1[z];
      const float wz = ax[0].w1[z];
      for (int64_t y = 0; y < orig[1]; ++y) {
        const int64_t y0 = ax[1].i0[y], y1 = ax[1].i1[y];
        const float wy = ax[1].w1[y];
        if (z0 < 0 || y0 < 0) {
          std::fill(dst, dst + orig[2], fill);
          dst += orig[2];
          continue;
        }
        for (int64_t x = 0; x < orig[2]; ++x) {
          const int64_t x0 = ax[2].i0[x], x1 = ax[2].i1[x];
          if (x0 < 0) {
            *dst++ = fill;
            continue;
          }
          const float wx = ax[2].w1[x];
          const auto bilinear = [&](int64_t zo) {
            const float a = m[zo + y0 + x0] + wx * (m[zo + y0 + x1] - m[zo + y0 + x0]);
            const float b = m[zo + y1 + x0] + wx * (m[zo + y1 + x1] - m[zo + y1 + x0]);
            return a + wy * (b - a);
          };
          const float v0 = bilinear(z0);
          *dst++ = wz == 0.0f ? v0 : v0 + wz * (bilinear(z1) - v0);
        }
      }
    }
  }
  return out;
}

}  // namespace medvision::preprocess
