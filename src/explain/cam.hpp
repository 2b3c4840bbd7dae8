#pragma once
// medvision::explain: class activation maps (Grad-CAM, Grad-CAM++, gradient-free CAM) computed
// in C++ with LibTorch autograd (through infer::Runtime), brought back onto the original image.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/image.hpp"
#include "model/model.hpp"

namespace medvision::explain {

enum class Method { kGradCam, kGradCamPlusPlus, kCam };

struct Options {
  Method method = Method::kGradCam;
  int64_t label = -1;  // label index; -1 = the most probable label
  // Segmentation: after every window, (done, total); returning false cancels (MV_ERR_CANCELLED).
  std::function<bool(uint64_t, uint64_t)> progress;
};

struct Heatmap {
  std::string label;
  int64_t label_index = 0;
  // Classification: the model's probability for that label. Segmentation: the mean probability
  // of the class over the explained region (NaN when the region is empty).
  float probability = 0.0f;
  Method method = Method::kGradCam;
  bool segmentation = false;
  // Segmentation: voxels of the explained region (where the class is predicted) on the input
  // grid; -1 for classification.
  int64_t region_voxels = -1;
  // The map on the original image's grid (depth x height x width of the input image; depth 1
  // for classification), in [0, 1]; 0 where the model saw nothing (cropped away).
  std::vector<float> map;
  int64_t depth = 1;
  int64_t height = 0;
  int64_t width = 0;
  // The slice that overlays show: the one with the most heat (0 for 2D maps).
  int64_t slice = 0;
  Geometry geometry;  // the source image's
  // The raw map on the feature grid (h x w), before upsampling; for tests and research.
  std::vector<float> feature_map;
  int64_t feature_height = 0;
  int64_t feature_width = 0;
  std::vector<std::string> warnings;
};

// Computes a heat map: for classification models one 2D image and a label; for segmentation
// models (2D or 3D, see compute_segmentation) a class. Throws medvision::Error: MV_ERR_MODEL when
// the package declares no explain methods; MV_ERR_INVALID_ARGUMENT for a bad label.
Heatmap compute(const model::Model& model, const Image& image, const Options& options);

// Segmentation Grad-CAM (Vinogradova et al. 2020): the target is the class's logits summed over
// the region where the model predicts the class, differentiated with respect to the activations
// the manifest's explain.activations method returns. Over a sliding window each window gets its
// own map (the region as that window predicts it; ReLU, not normalised), upsampled to the window
// and blended with the segmentation's importance weights; the blend goes back onto the input
// grid and is scaled to a maximum of 1. options.label -1 picks the only foreground class (an
// error when there are several). Grad-CAM and Grad-CAM++ only (CAM needs a pooling head).
Heatmap compute_segmentation(const model::Model& model, const Image& image, const Options& options);

// Linear resampling of a [D, H, W] grid with half-pixel centres (torch's interpolate with
// align_corners=False, linear/bilinear/trilinear): used to bring CAM maps up to the model input.
std::vector<float> upsample_linear(const float* src, int64_t d, int64_t h, int64_t w, int64_t out_d,
                                   int64_t out_h, int64_t out_w);

// The CAM weighting itself, on host tensors [K, h, w] (one image): exposed for tests.
std::vector<float> gradcam(const float* features, const float* gradients, int64_t k, int64_t h,
                           int64_t w);
std::vector<float> gradcam_plus_plus(const float* features, const float* gradients, int64_t k,
                                     int64_t h, int64_t w);

// An RGB overlay (interleaved uint8, height x width x 3) of the map's slice `heatmap.slice` over
// the image's first channel at that slice: the image is windowed to its 0.5-99.5 percentiles
// (MONOCHROME1 inverted), the map coloured with the perceptual "inferno" colour map and blended
// where it is warm.
std::vector<uint8_t> overlay(const Image& image, const Heatmap& heatmap, float alpha);

}  // namespace medvision::explain
