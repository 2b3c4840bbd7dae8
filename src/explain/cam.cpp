#include "explain/cam.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "common/activation.hpp"
#include "common/error.hpp"
#include "common/resample.hpp"
#include "io/writers.hpp"

namespace medvision::explain {
namespace {

// ReLU, then min-max to [0, 1] (pytorch-grad-cam's scale_cam_image). A map that is zero
// everywhere stays zero: the model found no positive evidence for the label.
void relu_normalise(std::vector<float>& cam) {
  for (float& v : cam) v = std::max(v, 0.0f);
  const auto [lo, hi] = std::minmax_element(cam.begin(), cam.end());
  const float mn = *lo, mx = *hi;
  for (float& v : cam) v = (v - mn) / (1e-7f + (mx - mn));
}

float activation(const model::Manifest& m, const std::vector<float>& logits, int64_t label) {
  if (m.activation == model::Activation::kSoftmax) {
    return static_cast<float>(
        softmax_at(logits.data(), static_cast<int64_t>(logits.size()), 1, label));
  }
  return static_cast<float>(sigmoid(static_cast<double>(logits[static_cast<size_t>(label)])));
}

}  // namespace

std::vector<float> gradcam(const float* features, const float* gradients, int64_t k, int64_t h,
                           int64_t w) {
  const int64_t hw = h * w;
  std::vector<float> cam(static_cast<size_t>(hw), 0.0f);
  for (int64_t c = 0; c < k; ++c) {
    const float* g = gradients + c * hw;
    double alpha = 0.0;
    for (int64_t i = 0; i < hw; ++i) alpha += g[i];
    alpha /= static_cast<double>(hw);
    const float* a = features + c * hw;
    for (int64_t i = 0; i < hw; ++i)
      cam[static_cast<size_t>(i)] += static_cast<float>(alpha * a[i]);
  }
  return cam;
}

std::vector<float> gradcam_plus_plus(const float* features, const float* gradients, int64_t k,
                                     int64_t h, int64_t w) {
  // Chattopadhyay et al. 2018, eq. 19, with the exponential-score simplification used by the
  // reference implementations: alpha = g^2 / (2 g^2 + sum(A) g^3), weight = sum(alpha relu(g)).
  const int64_t hw = h * w;
  std::vector<float> cam(static_cast<size_t>(hw), 0.0f);
  for (int64_t c = 0; c < k; ++c) {
    const float* g = gradients + c * hw;
    const float* a = features + c * hw;
    double sum_a = 0.0;
    for (int64_t i = 0; i < hw; ++i) sum_a += a[i];
    double weight = 0.0;
    for (int64_t i = 0; i < hw; ++i) {
      const double g2 = static_cast<double>(g[i]) * g[i];
      const double g3 = g2 * g[i];
      const double denom = 2.0 * g2 + sum_a * g3 + 1e-7;
      const double aij = g[i] != 0.0f ? g2 / denom : 0.0;
      weight += aij * std::max(0.0, static_cast<double>(g[i]));
    }
    for (int64_t i = 0; i < hw; ++i)
      cam[static_cast<size_t>(i)] += static_cast<float>(weight * a[i]);
  }
  return cam;
}

Heatmap compute(const model::Model& model, const Image& image, const Options& options) {
  const model::Manifest& m = model.manifest();
  if (m.task == model::Task::kSegmentation) return compute_segmentation(model, image, options);
  if (m.explain_features.empty()) {
    throw Error(MV_ERR_MODEL, m.path +
                                  ": the package declares no explain methods "
                                  "(manifest \"explain\": {\"features\", \"head\"})");
  }
  if (image.depth() != 1) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                fmt::format("heat maps need a 2D image; this one has {} slices", image.depth()));
  }
  auto prepared = model.prepare({&image});
  std::vector<int64_t> shape;
  const std::vector<float> x = model::Model::stack(prepared, &shape);
  const infer::Runtime& rt = model.runtime();

  const auto labels = static_cast<int64_t>(m.labels.size());
  int64_t label = options.label;
  if (label >= labels || label < -1) {
    throw Error(
        MV_ERR_INVALID_ARGUMENT,
        fmt::format("label index {} is out of range (the model has {} labels)", label, labels));
  }
  // One pass through the backbone for every method: the logits come with the features.
  const auto argmax = [](const infer::Tensor& t) {
    return static_cast<int64_t>(std::max_element(t.data.begin(), t.data.end()) - t.data.begin());
  };
  infer::Tensor logits;
  std::vector<float> cam;
  int64_t fh = 0, fw = 0;
  if (options.method == Method::kCam) {
    // Gradient-free CAM (Zhou et al. 2016) for global-pooling + linear heads: the head applied to
    // each feature-map location alone gives W·A(i,j) + b; subtracting head(0) removes b.
    infer::Tensor f = rt.run(x.data(), shape, m.explain_features);
    if (f.shape.size() != 4) throw Error(MV_ERR_MODEL, m.path + ": features must be [N, K, h, w]");
    logits = rt.run(f.data.data(), f.shape, m.explain_head);
    if (label < 0) label = argmax(logits);
    const int64_t k = f.shape[1];
    fh = f.shape[2];
    fw = f.shape[3];
    const int64_t hw = fh * fw;
    std::vector<float> cols(static_cast<size_t>(hw * k));
    for (int64_t c = 0; c < k; ++c)
      for (int64_t i = 0; i < hw; ++i)
        cols[static_cast<size_t>(i * k + c)] = f.data[static_cast<size_t>(c * hw + i)];
    infer::Tensor per_loc = rt.run(cols.data(), {hw, k, 1, 1}, m.explain_head);
    std::vector<float> zeros(static_cast<size_t>(k), 0.0f);
    infer::Tensor bias = rt.run(zeros.data(), {1, k, 1, 1}, m.explain_head);
    cam.resize(static_cast<size_t>(hw));
    for (int64_t i = 0; i < hw; ++i) {
      cam[static_cast<size_t>(i)] = per_loc.data[static_cast<size_t>(i * labels + label)] -
                                    bias.data[static_cast<size_t>(label)];
    }
  } else {
    // label -1: the runtime differentiates the most probable label of its own forward pass.
    auto t = rt.features_and_gradients(x.data(), shape, label);
    if (t.features.shape.size() != 4) {
      throw Error(MV_ERR_MODEL, m.path + ": features must return [N, K, h, w]");
    }
    logits = std::move(t.logits);
    if (label < 0) label = argmax(logits);
    const int64_t k = t.features.shape[1];
    fh = t.features.shape[2];
    fw = t.features.shape[3];
    cam = options.method == Method::kGradCam
              ? gradcam(t.features.data.data(), t.gradients.data.data(), k, fh, fw)
              : gradcam_plus_plus(t.features.data.data(), t.gradients.data.data(), k, fh, fw);
  }

  Heatmap out;
  out.method = options.method;
  out.label_index = label;
  out.label = m.labels[static_cast<size_t>(label)];
  out.probability = activation(m, logits.data, label);
  out.warnings = prepared.front().warnings;
  relu_normalise(cam);
  out.feature_map = cam;
  out.feature_height = fh;
  out.feature_width = fw;

  // Feature grid -> model input grid -> original image grid (undoing resize, crop, letterbox).
  const auto& final_shape = prepared.front().shape;  // [C, H, W]
  const int64_t in_h = final_shape[final_shape.size() - 2];
  const int64_t in_w = final_shape[final_shape.size() - 1];
  // Bilinear with half-pixel centres (torch's align_corners=False, cv2.resize INTER_LINEAR), as
  // CAM implementations bring the feature grid up.
  const std::vector<float> on_input =
      resample::upsample_linear(cam.data(), {{1, fh, fw}}, {{1, in_h, in_w}});
  out.map = preprocess::map_to_original(prepared.front().chain, on_input.data(), 1,
                                        /*nearest=*/false, /*fill=*/0.0f);
  out.height = image.height();
  out.width = image.width();
  out.geometry = image.geometry;
  for (float& v : out.map) v = std::clamp(v, 0.0f, 1.0f);
  return out;
}

std::vector<uint8_t> overlay(const Image& image, const Heatmap& heatmap, float alpha) {
  const int64_t h = image.height(), w = image.width();
  if (heatmap.height != h || heatmap.width != w || heatmap.depth != image.depth()) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                fmt::format("heat map ({} x {} x {}) and image ({} x {} x {}) sizes differ",
                            heatmap.depth, heatmap.height, heatmap.width, image.depth(), h, w));
  }
  const size_t n = static_cast<size_t>(h * w);
  const float* map = heatmap.map.data() + static_cast<size_t>(heatmap.slice) * n;
  // Grey base: first channel (or luma for RGB) at the map's slice, windowed to 0.5-99.5
  // percentiles.
  const std::vector<float> grey = io::grey_slice(image, heatmap.slice, io::GreyWindow::kPercentile);

  std::vector<uint8_t> rgb(n * 3);
  for (size_t i = 0; i < n; ++i) {
    const float g = grey[i];
    // Blend only where the map is warm, so that cold regions keep the radiograph readable.
    const float a = alpha * std::clamp(map[i], 0.0f, 1.0f);
    // Cividis: readable with colour-vision deficiency (io::heat_colour, docs/explain.md).
    const auto c = io::heat_colour(map[i]);
    for (int ch = 0; ch < 3; ++ch) {
      const float heat = c[static_cast<size_t>(ch)] / 255.0f;
      rgb[3 * i + static_cast<size_t>(ch)] =
          static_cast<uint8_t>(std::lround(255.0f * ((1.0f - a) * g + a * heat)));
    }
  }
  return rgb;
}

}  // namespace medvision::explain
