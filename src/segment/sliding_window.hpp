#pragma once
// medvision::segment: sliding-window inference with importance-weighted blending, as MONAI's
// sliding_window_inference and nnU-Net do it. Windows of the model's patch size are laid out per
// axis at stride int(roi * (1 - overlap)) (MONAI's dense_patch_slices: the last window is moved
// back to end flush with the volume), run in batches, and their raw outputs are blended with a
// Gaussian importance map (sigma = sigma_scale * roi, peak 1, floored at 1e-3) and divided by the
// summed weights. Inputs smaller than a window are zero-padded symmetrically (MONAI) and the
// padding is cropped off the output.

#include <cstdint>
#include <functional>
#include <vector>

#include "infer/runtime.hpp"

namespace medvision::segment {

struct WindowOptions {
  std::vector<int64_t> roi;  // spatial window size, 2 or 3 values ([H, W] or [D, H, W])
  double overlap = 0.5;      // in [0, 1)
  int batch_size = 1;        // windows per forward pass
  bool gaussian = true;      // false: constant weights (plain average)
  double sigma_scale = 0.125;
  // Mirror test-time augmentation: every window is also run flipped along each non-empty subset
  // of the spatial axes; the outputs are flipped back and averaged.
  bool mirror = false;
  // Called after each batch with (windows done, windows in all); returning false cancels
  // (medvision::Error MV_ERR_CANCELLED).
  std::function<bool(uint64_t, uint64_t)> progress;
};

// The start index of every window along one axis of length `size` (>= roi).
std::vector<int64_t> window_starts(int64_t size, int64_t roi, double overlap);

// The importance map over one window (roi.size() axes, C-contiguous).
std::vector<float> importance_map(const std::vector<int64_t>& roi, bool gaussian,
                                  double sigma_scale);

// Runs the model over `input` ([C, *spatial], C-contiguous float32) and returns the blended raw
// model outputs [K, *spatial]. Throws medvision::Error (MV_ERR_MODEL when the model's output is
// not [B, K, *roi]; MV_ERR_CANCELLED; MV_ERR_INVALID_ARGUMENT for bad options).
infer::Tensor sliding_window(const infer::Runtime& runtime, const float* input,
                             const std::vector<int64_t>& shape, const WindowOptions& options);

// The same with any per-batch function in place of the model's forward: it gets windows
// [B, C, *roi] and returns [B, K, *roi] (e.g. a Grad-CAM map per window, K = 1).
using WindowFn =
    std::function<infer::Tensor(const float* windows, const std::vector<int64_t>& shape)>;
infer::Tensor sliding_window(const WindowFn& fn, const float* input,
                             const std::vector<int64_t>& shape, const WindowOptions& options);

}  // namespace medvision::segment
