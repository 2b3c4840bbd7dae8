#pragma once
// Half-pixel linear resampling (torch's interpolate(..., align_corners=False), with or without
// antialias), the one copy shared by preprocessing (resize, resample) and the CAM up-sampling.
// Internal to the library.

#include <array>
#include <cstdint>
#include <vector>

namespace medvision::resample {

// The input taps of every output sample along one axis: output o reads `count[o]` inputs starting
// at `start[o]`, with weights `weights[o * max_taps + k]`.
struct Taps {
  int64_t n_in = 0, n_out = 0;
  int max_taps = 0;
  std::vector<int64_t> start;
  std::vector<int> count;
  std::vector<float> weights;
  bool identity() const { return n_in == n_out && max_taps == 1; }
};

// Half-pixel (align_corners=False) taps. With `antialias`, PIL's triangle filter widened by the
// shrink factor, exactly as torch.nn.functional.interpolate(..., antialias=True) computes them;
// without, the two-tap linear interpolation of interpolate(..., antialias=False).
Taps linear_taps(int64_t n_in, int64_t n_out, bool antialias);

// Resamples a C-contiguous [outer][n_in][inner] array along its middle axis into
// [outer][n_out][inner]. `in` and `out` must not overlap.
void resample_axis(const float* in, int64_t outer, int64_t inner, const Taps& taps, float* out);

// Resamples [planes][D][H][W] to [planes][out_size] separably (D, then H, then W), skipping axes
// whose size does not change. Returns the result (which is a copy even if nothing changes).
std::vector<float> resample(const float* in, int64_t planes, const std::array<int64_t, 3>& in_size,
                            const std::array<int64_t, 3>& out_size, bool antialias);

// resample(..., antialias=false) of one [D, H, W] grid: torch's interpolate(mode='bilinear' or
// 'trilinear', align_corners=False), as CAM implementations bring feature maps up.
std::vector<float> upsample_linear(const float* in, const std::array<int64_t, 3>& in_size,
                                   const std::array<int64_t, 3>& out_size);

}  // namespace medvision::resample
