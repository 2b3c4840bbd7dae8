// Model::segment: the segmentation pipeline (preprocess -> sliding window -> activation -> back
// onto the input grid -> label map -> post-processing -> measurements).

#include <algorithm>
#include <cmath>
#include <string>

#include "common/activation.hpp"
#include "common/error.hpp"
#include "model/model.hpp"
#include "segment/sliding_window.hpp"

namespace medvision::model {

namespace {

// In place over [K, n]: softmax across K or an element-wise sigmoid. Rejects non-finite outputs.
void activate(std::vector<float>& v, int64_t classes, bool softmax, const std::string& where) {
  const auto n = static_cast<int64_t>(v.size()) / classes;
  for (float x : v) {
    if (!std::isfinite(x))
      throw Error(MV_ERR_MODEL, where + ": the model returned a non-finite value");
  }
  if (!softmax) {
    for (float& x : v) x = static_cast<float>(sigmoid(static_cast<double>(x)));
    return;
  }
  for (int64_t i = 0; i < n; ++i) medvision::softmax(v.data() + i, classes, n, v.data() + i);
}

std::unique_ptr<Image> grid_like(const Image& image, int64_t channels, const std::string& what) {
  auto out = std::make_unique<Image>(channels, image.depth(), image.height(), image.width(),
                                     uint64_t{1} << 40, what);
  out->geometry = image.geometry;
  out->format = MV_FORMAT_PIXELS;
  out->photometric = MV_PHOTOMETRIC_MONOCHROME2;
  for (const char* key : {"StudyInstanceUID", "SeriesInstanceUID", "Modality"}) {
    if (const std::string* v = image.find_meta(key)) out->set_meta(key, *v);
  }
  return out;
}

}  // namespace

Segmentation Model::segment(const Image& image, const SegmentOptions& opt) const {
  const Manifest& m = manifest_;
  if (m.task != Task::kSegmentation) {
    throw Error(MV_ERR_INVALID_ARGUMENT, m.path + ": '" + m.name + "' is not a segmentation model");
  }
  const SegmentationSpec& spec = m.segment;
  const bool softmax = m.activation == Activation::kSoftmax;

  preprocess::Prepared prepared = pipeline_.run(image);
  for (auto& w : population_warnings(m.population, image))
    prepared.warnings.push_back(std::move(w));
  segment::WindowOptions w;
  w.roi = m.input.size;
  w.overlap = opt.overlap >= 0.0 ? opt.overlap : spec.overlap;
  w.batch_size = opt.batch_size > 0 ? opt.batch_size : spec.batch_size;
  w.mirror = opt.mirror >= 0 ? opt.mirror != 0 : spec.mirror;
  w.gaussian = spec.gaussian;
  w.sigma_scale = spec.sigma_scale;
  w.progress = opt.progress;
  infer::Tensor out = segment::sliding_window(*runtime_, prepared.data.data(), prepared.shape, w);
  std::vector<float>().swap(prepared.data);  // the preprocessed copy is no longer needed

  const int64_t k_out = out.shape.front();
  const auto labels = static_cast<int64_t>(m.labels.size());
  if (k_out != labels) {
    throw Error(MV_ERR_MODEL, m.path + ": the model returns " + std::to_string(k_out) +
                                  " channels, but the manifest lists " + std::to_string(labels) +
                                  " labels");
  }
  activate(out.data, k_out, softmax, m.path);
  const auto n_model = static_cast<int64_t>(out.data.size()) / k_out;

  Segmentation s;
  s.warnings = std::move(prepared.warnings);
  s.chain = std::move(prepared.chain);
  s.codes = spec.codes;
  s.classes = softmax ? m.labels : std::vector<std::string>{"background"};
  if (!softmax) s.classes.insert(s.classes.end(), m.labels.begin(), m.labels.end());
  if (s.classes.size() > 65535) throw Error(MV_ERR_MODEL, m.path + ": too many classes");

  const auto n = static_cast<int64_t>(image.channel_size());
  s.mask = grid_like(image, 1, "segmentation mask");
  s.mask->set_meta("SeriesDescription", m.name + " " + m.version + " segmentation");
  if (opt.probabilities) s.probabilities = grid_like(image, k_out, "probability maps");

  // Per output channel, back onto the input grid; the label map is built as channels arrive so
  // that at most one full-size float map is alive besides the outputs.
  std::vector<uint16_t> label(static_cast<size_t>(n), 0);
  std::vector<float> best(softmax ? static_cast<size_t>(n) : 0, -1.0f);
  const auto threshold = static_cast<float>(spec.threshold);
  for (int64_t k = 0; k < k_out; ++k) {
    const float fill = softmax && k == 0 ? 1.0f : 0.0f;  // unseen voxels are background
    std::vector<float> p = preprocess::map_to_original(s.chain, out.data.data() + k * n_model, 1,
                                                       /*nearest=*/false, fill);
    if (static_cast<int64_t>(p.size()) != n) {
      throw Error(MV_ERR_INTERNAL, "segmentation: the mapped grid does not match the input");
    }
    if (s.probabilities) std::copy(p.begin(), p.end(), s.probabilities->data() + k * n);
    for (size_t i = 0; i < p.size(); ++i) {
      if (softmax) {
        if (p[i] > best[i]) {
          best[i] = p[i];
          label[i] = static_cast<uint16_t>(k);
        }
      } else if (p[i] > threshold) {
        label[i] = static_cast<uint16_t>(k + 1);  // nested regions: the later class wins
      }
    }
  }
  std::vector<float>().swap(out.data);
  std::vector<float>().swap(best);

  const segment::Size3 size{{image.depth(), image.height(), image.width()}};
  const bool lcc = opt.largest_component >= 0 ? opt.largest_component != 0 : spec.largest_component;
  const bool holes = opt.fill_holes >= 0 ? opt.fill_holes != 0 : spec.fill_holes;
  std::vector<uint8_t> bin(static_cast<size_t>(n));
  const auto binary = [&](const std::vector<int>& values) {
    for (size_t i = 0; i < bin.size(); ++i) {
      bin[i] = std::find(values.begin(), values.end(), label[i]) != values.end() ? 1 : 0;
    }
  };
  if (lcc || holes) {
    for (size_t v = 1; v < s.classes.size(); ++v) {
      binary({static_cast<int>(v)});
      if (lcc) {
        segment::keep_largest_component(bin, size);
        for (size_t i = 0; i < bin.size(); ++i) {
          if (label[i] == v && bin[i] == 0) label[i] = 0;
        }
      }
      if (holes) {
        segment::fill_holes(bin, size);
        for (size_t i = 0; i < bin.size(); ++i) {
          if (label[i] == 0 && bin[i] != 0) label[i] = static_cast<uint16_t>(v);
        }
      }
    }
  }

  for (size_t v = 1; v < s.classes.size(); ++v) {
    s.regions.push_back({s.classes[v], {static_cast<int>(v)}, {}});
  }
  for (const auto& [name, members] : spec.regions) {
    const bool known = std::any_of(s.regions.begin(), s.regions.end(),
                                   [&n = name](const Region& r) { return r.name == n; });
    if (known) continue;
    Region r{name, {}, {}};
    for (size_t idx : members) r.values.push_back(static_cast<int>(softmax ? idx : idx + 1));
    s.regions.push_back(std::move(r));
  }
  for (Region& r : s.regions) {
    binary(r.values);
    r.stats = segment::measure(bin, size, image.geometry);
  }
  std::copy(label.begin(), label.end(), s.mask->data());
  s.mask->stored_dtype = s.classes.size() <= 256 ? MV_DTYPE_UINT8 : MV_DTYPE_UINT16;
  s.mask->bits_stored = s.classes.size() <= 256 ? 8 : 16;
  return s;
}

}  // namespace medvision::model
