#include "common/resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace medvision::resample {

namespace {

double as_double(int64_t v) { return static_cast<double>(v); }

// PIL's bilinear ("triangle") filter, as used by torchvision/torch for antialiased resizing.
double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

}  // namespace

Taps linear_taps(int64_t n_in, int64_t n_out, bool antialias) {
  Taps t;
  t.n_in = n_in;
  t.n_out = n_out;
  const double scale = as_double(n_in) / as_double(n_out);
  if (n_in == n_out) {
    // Both torch paths reduce to the identity here; skip the arithmetic and its rounding.
    t.max_taps = 1;
    t.start.resize(n_out);
    t.count.assign(n_out, 1);
    t.weights.assign(n_out, 1.0f);
    for (int64_t o = 0; o < n_out; ++o) t.start[o] = o;
    return t;
  }
  if (!antialias) {
    // aten upsample_bilinear2d, align_corners=False: source = scale * (o + 0.5) - 0.5, clamped
    // at 0; the second tap collapses onto the first at the last input sample.
    t.max_taps = 2;
    t.start.resize(n_out);
    t.count.assign(n_out, 2);
    t.weights.resize(2 * n_out);
    for (int64_t o = 0; o < n_out; ++o) {
      const double src = std::max(scale * (as_double(o) + 0.5) - 0.5, 0.0);
      int64_t i0 = static_cast<int64_t>(src);
      i0 = std::min(i0, n_in - 1);
      const double l1 = i0 < n_in - 1 ? src - as_double(i0) : 0.0;
      t.start[o] = i0;
      t.count[o] = i0 < n_in - 1 ? 2 : 1;
      t.weights[2 * o] = static_cast<float>(1.0 - l1);
      t.weights[2 * o + 1] = static_cast<float>(l1);
    }
    return t;
  }
  // aten _upsample_bilinear2d_aa (= PIL ImagingResample): the support widens with the shrink
  // factor so that every input sample contributes (no aliasing), and weights are renormalised
  // where the support is cut by the border.
  const double support = scale >= 1.0 ? scale : 1.0;
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  t.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.start.resize(n_out);
  t.count.resize(n_out);
  t.weights.assign(static_cast<size_t>(n_out) * t.max_taps, 0.0f);
  std::vector<double> w(t.max_taps);
  for (int64_t o = 0; o < n_out; ++o) {
    const double center = scale * (as_double(o) + 0.5);
    // Truncation toward zero, as in PyTorch's antialiased upsample_*_aa kernels whose taps these
    // reproduce (a negative start is clamped to 0 right after, so lround would change nothing
    // but the tie-breaking that the reference does not have).
    // NOLINTNEXTLINE(bugprone-incorrect-roundings)
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    // NOLINTNEXTLINE(bugprone-incorrect-roundings)
    const int64_t xmax = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), n_in);
    const int count = static_cast<int>(std::min<int64_t>(xmax - xmin, t.max_taps));
    double total = 0.0;
    for (int k = 0; k < count; ++k) {
      w[k] = triangle((as_double(k + xmin) - center + 0.5) * invscale);
      total += w[k];
    }
    t.start[o] = xmin;
    t.count[o] = count;
    for (int k = 0; k < count; ++k) {
      t.weights[o * t.max_taps + k] = static_cast<float>(total != 0.0 ? w[k] / total : w[k]);
    }
  }
  return t;
}

void resample_axis(const float* in, int64_t outer, int64_t inner, const Taps& taps, float* out) {
  const int64_t n_in = taps.n_in, n_out = taps.n_out;
  if (inner == 1) {
    // Last axis: a short dot product per output sample.
    for (int64_t r = 0; r < outer; ++r) {
      const float* src = in + r * n_in;
      float* dst = out + r * n_out;
      for (int64_t o = 0; o < n_out; ++o) {
        const float* wt = &taps.weights[o * taps.max_taps];
        const float* s = src + taps.start[o];
        float acc = 0.0f;
        for (int k = 0; k < taps.count[o]; ++k) acc += wt[k] * s[k];
        dst[o] = acc;
      }
    }
    return;
  }
  // Outer axes: whole rows are scaled and accumulated, which the compiler vectorises.
  for (int64_t r = 0; r < outer; ++r) {
    const float* src = in + r * n_in * inner;
    float* dst = out + r * n_out * inner;
    for (int64_t o = 0; o < n_out; ++o) {
      float* d = dst + o * inner;
      const float* wt = &taps.weights[o * taps.max_taps];
      const float* s0 = src + taps.start[o] * inner;
      const int count = taps.count[o];
      const float w0 = wt[0];
      for (int64_t x = 0; x < inner; ++x) d[x] = w0 * s0[x];
      // Two input rows per sweep halve the loads and stores of the output row.
      int k = 1;
      for (; k + 1 < count; k += 2) {
        const float wa = wt[k], wb = wt[k + 1];
        const float* sa = s0 + k * inner;
        const float* sb = sa + inner;
        for (int64_t x = 0; x < inner; ++x) d[x] += wa * sa[x] + wb * sb[x];
      }
      if (k < count) {
        const float wa = wt[k];
        const float* sa = s0 + k * inner;
        for (int64_t x = 0; x < inner; ++x) d[x] += wa * sa[x];
      }
    }
  }
}

std::vector<float> resample(const float* in, int64_t planes, const std::array<int64_t, 3>& in_size,
                            const std::array<int64_t, 3>& out_size, bool antialias) {
  std::array<int64_t, 3> cur = in_size;
  std::vector<float> a, b;
  const float* src = in;
  for (int axis = 0; axis < 3; ++axis) {
    if (cur[axis] == out_size[axis]) continue;
    const Taps taps = linear_taps(cur[axis], out_size[axis], antialias);
    int64_t outer = planes, inner = 1;
    for (int k = 0; k < axis; ++k) outer *= cur[k];
    for (int k = axis + 1; k < 3; ++k) inner *= cur[k];
    std::vector<float>& dst = (src == a.data() && !a.empty()) ? b : a;
    dst.resize(static_cast<size_t>(outer * out_size[axis] * inner));
    resample_axis(src, outer, inner, taps, dst.data());
    src = dst.data();
    cur[axis] = out_size[axis];
  }
  if (src == in) {
    return std::vector<float>(in, in + planes * cur[0] * cur[1] * cur[2]);
  }
  return src == a.data() ? std::move(a) : std::move(b);
}

std::vector<float> upsample_linear(const float* in, const std::array<int64_t, 3>& in_size,
                                   const std::array<int64_t, 3>& out_size) {
  return resample(in, 1, in_size, out_size, false);
}

}  // namespace medvision::resample
