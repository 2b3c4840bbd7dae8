// Segmentation Grad-CAM: a class's logits summed over its predicted region, differentiated with
// respect to the activations of the package's explain.activations method, window by window.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "common/activation.hpp"
#include "common/error.hpp"
#include "common/resample.hpp"
#include "explain/cam.hpp"
#include "segment/sliding_window.hpp"

namespace medvision::explain {
namespace {

std::string label_list(const std::vector<std::string>& labels, size_t first) {
  std::string s;
  for (size_t i = first; i < labels.size(); ++i) s += (s.empty() ? "" : ", ") + labels[i];
  return s;
}

}  // namespace

std::vector<float> upsample_linear(const float* src, int64_t d, int64_t h, int64_t w, int64_t out_d,
                                   int64_t out_h, int64_t out_w) {
  return resample::upsample_linear(src, {{d, h, w}}, {{out_d, out_h, out_w}});
}

// Over 120 lines on purpose: region Grad-CAM over the same sliding windows as
// segmentation (padding, mirror TTA, per-window backward, blending, map back); to be split with
// the sliding-window loop it mirrors (issue 17, 3D segmentation).
// NOLINTNEXTLINE(readability-function-size)
Heatmap compute_segmentation(const model::Model& model, const Image& image,
                             const Options& options) {
  const model::Manifest& m = model.manifest();
  if (m.explain_activations.empty()) {
    throw Error(MV_ERR_MODEL, m.path +
                                  ": the package declares no segmentation explain method "
                                  "(manifest \"explain\": {\"activations\": METHOD} returning "
                                  "(output, activations))");
  }
  if (options.method == Method::kCam) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                m.path +
                    ": CAM needs a global-pooling classification head; segmentation "
                    "models are explained with Grad-CAM or Grad-CAM++");
  }
  const bool softmax = m.activation == model::Activation::kSoftmax;
  const auto labels = static_cast<int64_t>(m.labels.size());
  const int64_t first_fg = softmax ? 1 : 0;
  int64_t cls = options.label;
  if (cls < -1 || cls >= labels) {
    throw Error(
        MV_ERR_INVALID_ARGUMENT,
        fmt::format("label index {} is out of range (the model has {} classes)", cls, labels));
  }
  if (cls < 0) {
    if (labels - first_fg != 1) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  m.path +
                      ": this segmentation model has several classes; choose the one to "
                      "explain (" +
                      label_list(m.labels, static_cast<size_t>(first_fg)) + ")");
    }
    cls = first_fg;
  }
  const double threshold = m.segment.threshold;
  const double logit_threshold = std::log(threshold / (1.0 - threshold));

  preprocess::Prepared prepared = model.pipeline().run(image);
  const std::vector<int64_t>& roi = m.input.size;
  const auto nd = static_cast<int64_t>(roi.size());
  int64_t feature_h = 0, feature_w = 0;
  std::vector<float> feature_map;
  int64_t windows_run = 0;

  // Per window: [cam, region indicator, class probability], blended like the segmentation.
  const segment::WindowFn per_window = [&](const float* windows,
                                           const std::vector<int64_t>& shape) {
    const infer::Runtime::CamTensors t = model.runtime().region_gradients(
        windows, shape, m.explain_activations, cls, softmax, logit_threshold);
    const auto& a = t.features.shape;  // [B, A, *spatial]
    const auto& y = t.logits.shape;    // [B, K, *roi]
    const int64_t batch = shape[0];
    if (static_cast<int64_t>(a.size()) != nd + 2 || static_cast<int64_t>(y.size()) != nd + 2 ||
        !std::equal(roi.begin(), roi.end(), y.begin() + 2) || y[1] != labels) {
      throw Error(MV_ERR_MODEL,
                  fmt::format("{}: '{}' must return output [B, {}, *window] and activations "
                              "[B, A, *grid] for windows of {} axes",
                              m.path, m.explain_activations, labels, nd));
    }
    const int64_t k = a[1];
    const int64_t ad = nd == 3 ? a[2] : 1, ah = a[nd == 3 ? 3 : 2], aw = a[nd == 3 ? 4 : 3];
    const int64_t rd = nd == 3 ? roi[0] : 1, rh = roi[static_cast<size_t>(nd - 2)],
                  rw = roi[static_cast<size_t>(nd - 1)];
    const int64_t an = ad * ah * aw, rn = rd * rh * rw;
    infer::Tensor out;
    out.shape = {batch, 3};
    out.shape.insert(out.shape.end(), roi.begin(), roi.end());
    out.data.assign(static_cast<size_t>(batch * 3 * rn), 0.0f);
    for (int64_t b = 0; b < batch; ++b) {
      const float* fa = t.features.data.data() + b * k * an;
      const float* ga = t.gradients.data.data() + b * k * an;
      std::vector<float> cam = options.method == Method::kGradCam
                                   ? gradcam(fa, ga, k, 1, an)
                                   : gradcam_plus_plus(fa, ga, k, 1, an);
      for (float& v : cam) v = std::max(v, 0.0f);
      if (++windows_run == 1 && nd == 2) {
        feature_map = cam;
        feature_h = ah;
        feature_w = aw;
      }
      const std::vector<float> up = upsample_linear(cam.data(), ad, ah, aw, rd, rh, rw);
      float* o = out.data.data() + b * 3 * rn;
      std::copy(up.begin(), up.end(), o);
      const float* logits = t.logits.data.data() + b * labels * rn;
      for (int64_t i = 0; i < rn; ++i) {
        const float z = logits[cls * rn + i];
        float p = 0.0f;
        bool in_region = false;
        if (softmax) {
          float mx = logits[i];
          int64_t best = 0;
          for (int64_t c = 1; c < labels; ++c) {
            if (logits[c * rn + i] > mx) {
              mx = logits[c * rn + i];
              best = c;
            }
          }
          p = static_cast<float>(softmax_at(logits + i, labels, rn, cls));
          in_region = best == cls;
        } else {
          p = static_cast<float>(sigmoid(static_cast<double>(z)));
          in_region = static_cast<double>(z) > logit_threshold;
        }
        o[rn + i] = in_region ? 1.0f : 0.0f;
        o[2 * rn + i] = p;
      }
    }
    return out;
  };

  segment::WindowOptions w;
  w.roi = roi;
  w.overlap = m.segment.overlap;
  w.batch_size = 1;  // autograd keeps every activation of the batch alive
  w.gaussian = m.segment.gaussian;
  w.sigma_scale = m.segment.sigma_scale;
  w.progress = options.progress;
  infer::Tensor blended =
      segment::sliding_window(per_window, prepared.data.data(), prepared.shape, w);
  std::vector<float>().swap(prepared.data);
  std::vector<float> back = preprocess::map_to_original(prepared.chain, blended.data.data(), 3,
                                                        /*nearest=*/false, /*fill=*/0.0f);
  std::vector<float>().swap(blended.data);

  Heatmap out;
  out.method = options.method;
  out.segmentation = true;
  out.label_index = cls;
  out.label = m.labels[static_cast<size_t>(cls)];
  out.warnings = std::move(prepared.warnings);
  out.depth = image.depth();
  out.height = image.height();
  out.width = image.width();
  out.geometry = image.geometry;
  const auto n = static_cast<size_t>(out.depth * out.height * out.width);
  if (back.size() != 3 * n) {
    throw Error(MV_ERR_INTERNAL, "segmentation CAM: the mapped grid does not match the input");
  }
  out.map.assign(back.begin(), back.begin() + static_cast<std::ptrdiff_t>(n));
  const float* region = back.data() + n;
  const float* prob = back.data() + 2 * n;
  double psum = 0.0;
  int64_t voxels = 0;
  for (size_t i = 0; i < n; ++i) {
    if (region[i] > 0.5f) {
      ++voxels;
      psum += prob[i];
    }
  }
  out.region_voxels = voxels;
  out.probability = voxels > 0 ? static_cast<float>(psum / static_cast<double>(voxels))
                               : std::numeric_limits<float>::quiet_NaN();
  float mx = 0.0f;
  for (float& v : out.map) mx = std::max(mx, v = std::max(v, 0.0f));
  if (mx > 0.0f) {
    for (float& v : out.map) v = std::min(v / mx, 1.0f);
  }
  if (voxels == 0) {
    out.warnings.push_back("the model predicts no '" + out.label +
                           "' region in this image: the heat map is empty");
  } else if (mx == 0.0f) {
    out.warnings.push_back("no positive evidence for '" + out.label +
                           "' at the explained layer: the heat map is empty");
  }
  // Overlays show the slice with the most heat.
  const auto plane = static_cast<size_t>(out.height * out.width);
  double best = -1.0;
  for (int64_t z = 0; z < out.depth; ++z) {
    double sum = 0.0;
    for (size_t i = 0; i < plane; ++i) sum += out.map[static_cast<size_t>(z) * plane + i];
    if (sum > best) {
      best = sum;
      out.slice = z;
    }
  }
  if (windows_run == 1 && nd == 2) {  // one 2D window: the raw map on the feature grid
    out.feature_map = std::move(feature_map);
    out.feature_height = feature_h;
    out.feature_width = feature_w;
  }
  return out;
}

}  // namespace medvision::explain
