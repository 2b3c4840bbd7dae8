#pragma once
// medvision::explain: class activation maps (Grad-CAM, Grad-CAM++, gradient-free CAM) computed
// in C++ with LibTorch autograd (through infer::Runtime), brought back onto the original image.

#include <cstdint>
#include <string>
#include <vector>

#include "common/image.hpp"
#include "model/model.hpp"

namespace medvision::explain {

enum class Method { kGradCam, kGradCamPlusPlus, kCam };

struct Options {
  Method method = Method::kGradCam;
  int64_t label = -1;  // label index; -1 = the most probable label
};

struct Heatmap {
  std::string label;
  int64_t label_index = 0;
  float probability = 0.0f;  // the model's probability for that label
  Method method = Method::kGradCam;
  // The map on the original image's grid (height x width of the input image, first slice),
  // in [0, 1]; 0 where the model saw nothing (cropped away).
  std::vector<float> map;
  int64_t height = 0;
  int64_t width = 0;
  // The raw map on the feature grid (h x w), before upsampling; for tests and research.
  std::vector<float> feature_map;
  int64_t feature_height = 0;
  int64_t feature_width = 0;
  std::vector<std::string> warnings;
};

// Computes a heat map for one 2D image. Throws medvision::Error: MV_ERR_MODEL when the package
// declares no explain methods; MV_ERR_INVALID_ARGUMENT for a bad label.
Heatmap compute(const model::Model& model, const Image& image, const Options& options);

// The CAM weighting itself, on host tensors [K, h, w] (one image): exposed for tests.
std::vector<float> gradcam(const float* features, const float* gradients, int64_t k, int64_t h,
                           int64_t w);
std::vector<float> gradcam_plus_plus(const float* features, const float* gradients, int64_t k,
                                     int64_t h, int64_t w);

// An RGB overlay (interleaved uint8, height x width x 3) of `map` over the image's first
// channel/slice: the image is windowed to its 0.5-99.5 percentiles (MONOCHROME1 inverted), the
// map coloured with the perceptual "inferno" colour map and blended where it is warm.
std::vector<uint8_t> overlay(const Image& image, const Heatmap& heatmap, float alpha);

}  // namespace medvision::explain
