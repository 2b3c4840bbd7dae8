#include "segment/sliding_window.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.hpp"
#include "infer/tensor_cache.hpp"

namespace medvision::segment {

namespace {

using Size3 = std::array<int64_t, 3>;  // (D, H, W); 2D uses D = 1

Size3 to3(const std::vector<int64_t>& v) {
  return v.size() == 2 ? Size3{{1, v[0], v[1]}} : Size3{{v[0], v[1], v[2]}};
}

int64_t count(const Size3& s) { return s[0] * s[1] * s[2]; }

std::string dims(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

// out = in flipped along the axes flagged in f, for `planes` consecutive (D, H, W) blocks.
void flip(const float* in, float* out, int64_t planes, const Size3& s,
          const std::array<bool, 3>& f) {
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t z = 0; z < s[0]; ++z) {
      const int64_t zs = f[0] ? s[0] - 1 - z : z;
      for (int64_t y = 0; y < s[1]; ++y) {
        const int64_t ys = f[1] ? s[1] - 1 - y : y;
        const float* src = in + ((p * s[0] + zs) * s[1] + ys) * s[2];
        float* dst = out + ((p * s[0] + z) * s[1] + y) * s[2];
        if (f[2]) {
          std::reverse_copy(src, src + s[2], dst);
        } else {
          std::memcpy(dst, src, static_cast<size_t>(s[2]) * sizeof(float));
        }
      }
    }
  }
}

}  // namespace

std::vector<int64_t> window_starts(int64_t size, int64_t roi, double overlap) {
  if (roi <= 0 || size < roi) {
    throw Error(MV_ERR_INTERNAL,
                fmt::format("window_starts: size {} is smaller than the window {}", size, roi));
  }
  // MONAI _get_scan_interval + dense_patch_slices.
  int64_t interval =
      size == roi ? roi : static_cast<int64_t>(static_cast<double>(roi) * (1.0 - overlap));
  interval = std::max<int64_t>(interval, 1);
  std::vector<int64_t> starts;
  for (int64_t i = 0;; ++i) {
    const int64_t start = std::min(i * interval, size - roi);
    starts.push_back(start);
    if (i * interval + roi >= size) break;
  }
  return starts;
}

std::vector<float> importance_map(const std::vector<int64_t>& roi, bool gaussian,
                                  double sigma_scale) {
  const Size3 r = to3(roi);
  std::vector<float> w(static_cast<size_t>(count(r)), 1.0f);
  if (!gaussian) return w;
  std::array<std::vector<double>, 3> axis;
  for (int a = 0; a < 3; ++a) {
    const auto n = static_cast<size_t>(r[static_cast<size_t>(a)]);
    axis[static_cast<size_t>(a)].assign(n, 1.0);
    if (a == 0 && roi.size() == 2) continue;
    const double c = (static_cast<double>(n) - 1.0) / 2.0;
    const double sigma = sigma_scale * static_cast<double>(n);
    double peak = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(i) - c;
      axis[static_cast<size_t>(a)][i] = std::exp(-d * d / (2.0 * sigma * sigma));
      peak = std::max(peak, axis[static_cast<size_t>(a)][i]);
    }
    for (double& v : axis[static_cast<size_t>(a)]) v /= peak;
  }
  size_t i = 0;
  for (size_t z = 0; z < axis[0].size(); ++z) {
    for (size_t y = 0; y < axis[1].size(); ++y) {
      for (size_t x = 0; x < axis[2].size(); ++x) {
        w[i++] = static_cast<float>(std::max(axis[0][z] * axis[1][y] * axis[2][x], 1e-3));
      }
    }
  }
  return w;
}

infer::Tensor sliding_window(const infer::Runtime& runtime, const float* input,
                             const std::vector<int64_t>& shape, const WindowOptions& o) {
  // Every window's forward pass allocates the same large activations: reuse them (issue 17).
  const infer::TensorCacheScope reuse;
  return sliding_window(
      [&runtime](const float* windows, const std::vector<int64_t>& bshape) {
        return runtime.run(windows, bshape);
      },
      input, shape, o);
}

// Over 120 lines on purpose: padding, window grid, mirror TTA, Gaussian
// blending and crop in one loop over reused buffers; issue 17's 3D-segmentation item reworks its
// buffers and will split it.
// NOLINTNEXTLINE(readability-function-size)
infer::Tensor sliding_window(const WindowFn& fn, const float* input,
                             const std::vector<int64_t>& shape, const WindowOptions& o) {
  const size_t nd = o.roi.size();
  if (nd != 2 && nd != 3) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "sliding window: the window must have 2 or 3 axes");
  }
  if (shape.size() != nd + 1) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                fmt::format("sliding window: input {} does not match a {}D window {}", dims(shape),
                            nd, dims(o.roi)));
  }
  if (!(o.overlap >= 0.0 && o.overlap < 1.0)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "sliding window: overlap must be in [0, 1)");
  }
  if (o.batch_size < 1) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "sliding window: batch size must be at least 1");
  }
  if (!(o.sigma_scale > 0.0)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "sliding window: sigma_scale must be positive");
  }
  for (int64_t r : o.roi) {
    if (r <= 0) throw Error(MV_ERR_INVALID_ARGUMENT, "sliding window: bad window " + dims(o.roi));
  }
  const int64_t channels = shape[0];
  const Size3 in = to3(std::vector<int64_t>(shape.begin() + 1, shape.end()));
  const Size3 roi = to3(o.roi);

  // Symmetric zero padding up to one window (MONAI); copy only when needed.
  Size3 padded{}, before{};
  for (size_t a = 0; a < 3; ++a) {
    padded[a] = std::max(in[a], roi[a]);
    before[a] = (padded[a] - in[a]) / 2;
  }
  std::vector<float> padded_buf;
  const float* vol = input;
  if (padded != in) {
    padded_buf.assign(static_cast<size_t>(channels * count(padded)), 0.0f);
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t z = 0; z < in[0]; ++z) {
        for (int64_t y = 0; y < in[1]; ++y) {
          const float* src = input + ((c * in[0] + z) * in[1] + y) * in[2];
          float* dst = padded_buf.data() +
                       ((c * padded[0] + z + before[0]) * padded[1] + y + before[1]) * padded[2] +
                       before[2];
          std::memcpy(dst, src, static_cast<size_t>(in[2]) * sizeof(float));
        }
      }
    }
    vol = padded_buf.data();
  }

  std::array<std::vector<int64_t>, 3> starts;
  for (size_t a = 0; a < 3; ++a) starts[a] = window_starts(padded[a], roi[a], o.overlap);
  std::vector<Size3> windows;
  for (int64_t z : starts[0]) {
    for (int64_t y : starts[1]) {
      for (int64_t x : starts[2]) windows.push_back({{z, y, x}});
    }
  }
  const std::vector<float> weight = importance_map(o.roi, o.gaussian, o.sigma_scale);

  // Flip sets for mirror TTA over the spatial axes (the leading D axis is not spatial in 2D).
  std::vector<std::array<bool, 3>> flips{{{false, false, false}}};
  if (o.mirror) {
    const int first = nd == 2 ? 1 : 0;
    for (unsigned m = 1; m < (1u << (3 - first)); ++m) {
      std::array<bool, 3> f{{false, false, false}};
      for (int a = first; a < 3; ++a) f[static_cast<size_t>(a)] = (m >> (2 - a)) & 1u;
      flips.push_back(f);
    }
  }
  const float flip_weight = 1.0f / static_cast<float>(flips.size());

  const int64_t wn = count(roi);
  const int64_t pn = count(padded);
  const auto total = static_cast<int64_t>(windows.size());
  std::vector<float> batch, flipped, unflipped, summed;
  std::vector<float> acc, norm(static_cast<size_t>(pn), 0.0f);
  int64_t classes = -1;

  for (int64_t b0 = 0; b0 < total; b0 += o.batch_size) {
    const int64_t nb = std::min<int64_t>(o.batch_size, total - b0);
    batch.resize(static_cast<size_t>(nb * channels * wn));
    for (int64_t j = 0; j < nb; ++j) {
      const Size3& w0 = windows[static_cast<size_t>(b0 + j)];
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t z = 0; z < roi[0]; ++z) {
          for (int64_t y = 0; y < roi[1]; ++y) {
            const float* src =
                vol + ((c * padded[0] + w0[0] + z) * padded[1] + w0[1] + y) * padded[2] + w0[2];
            float* dst = batch.data() + (((j * channels + c) * roi[0] + z) * roi[1] + y) * roi[2];
            std::memcpy(dst, src, static_cast<size_t>(roi[2]) * sizeof(float));
          }
        }
      }
    }
    std::vector<int64_t> bshape = {nb, channels};
    bshape.insert(bshape.end(), o.roi.begin(), o.roi.end());

    const float* out = nullptr;  // [nb, K, roi], averaged over flips
    infer::Tensor y;
    for (size_t fi = 0; fi < flips.size(); ++fi) {
      const auto& f = flips[fi];
      const bool any = f[0] || f[1] || f[2];
      const float* src = batch.data();
      if (any) {
        flipped.resize(batch.size());
        flip(batch.data(), flipped.data(), nb * channels, roi, f);
        src = flipped.data();
      }
      y = fn(src, bshape);
      std::vector<int64_t> want = {nb,
                                   classes < 0 ? (y.shape.size() > 1 ? y.shape[1] : -1) : classes};
      want.insert(want.end(), o.roi.begin(), o.roi.end());
      if (y.shape != want || want[1] < 1) {
        throw Error(MV_ERR_MODEL, "the model returned shape " + dims(y.shape) + " for windows " +
                                      dims(bshape) + " (expected [batch, classes" +
                                      std::string(nd == 2 ? ", H, W" : ", D, H, W") +
                                      "] with the window's spatial size)");
      }
      if (classes < 0) {
        classes = y.shape[1];
        acc.assign(static_cast<size_t>(classes * pn), 0.0f);
      }
      if (flips.size() == 1) {
        out = y.data.data();
        break;
      }
      const float* yy = y.data.data();
      if (any) {
        unflipped.resize(y.data.size());
        flip(y.data.data(), unflipped.data(), nb * classes, roi, f);
        yy = unflipped.data();
      }
      if (fi == 0) summed.assign(y.data.size(), 0.0f);
      for (size_t i = 0; i < summed.size(); ++i) summed[i] += flip_weight * yy[i];
      out = summed.data();
    }

    for (int64_t j = 0; j < nb; ++j) {
      const Size3& w0 = windows[static_cast<size_t>(b0 + j)];
      for (int64_t z = 0; z < roi[0]; ++z) {
        for (int64_t yy = 0; yy < roi[1]; ++yy) {
          const int64_t row = ((w0[0] + z) * padded[1] + w0[1] + yy) * padded[2] + w0[2];
          const float* wrow = weight.data() + (z * roi[1] + yy) * roi[2];
          float* nrow = norm.data() + row;
          for (int64_t x = 0; x < roi[2]; ++x) nrow[x] += wrow[x];
          for (int64_t k = 0; k < classes; ++k) {
            const float* orow = out + (((j * classes + k) * roi[0] + z) * roi[1] + yy) * roi[2];
            float* arow = acc.data() + k * pn + row;
            for (int64_t x = 0; x < roi[2]; ++x) arow[x] += wrow[x] * orow[x];
          }
        }
      }
    }
    if (o.progress && !o.progress(static_cast<uint64_t>(b0 + nb), static_cast<uint64_t>(total))) {
      throw Error(MV_ERR_CANCELLED, "segmentation cancelled by the progress callback");
    }
  }

  infer::Tensor result;
  result.shape = {classes};
  result.shape.insert(result.shape.end(), shape.begin() + 1, shape.end());
  if (padded == in) {  // normalise in place: the accumulator becomes the result, no copy
    for (int64_t k = 0; k < classes; ++k) {
      float* a = acc.data() + k * pn;
      for (int64_t i = 0; i < pn; ++i) a[i] /= norm[static_cast<size_t>(i)];
    }
    result.data = std::move(acc);
    return result;
  }
  result.data.resize(static_cast<size_t>(classes * count(in)));
  for (int64_t k = 0; k < classes; ++k) {
    for (int64_t z = 0; z < in[0]; ++z) {
      for (int64_t y = 0; y < in[1]; ++y) {
        const int64_t row = ((z + before[0]) * padded[1] + y + before[1]) * padded[2] + before[2];
        const float* arow = acc.data() + k * pn + row;
        const float* nrow = norm.data() + row;
        float* dst = result.data.data() + ((k * in[0] + z) * in[1] + y) * in[2];
        for (int64_t x = 0; x < in[2]; ++x) dst[x] = arow[x] / nrow[x];
      }
    }
  }
  return result;
}

}  // namespace medvision::segment
