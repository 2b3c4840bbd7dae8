#include "model/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "common/activation.hpp"
#include "common/error.hpp"
#include "model/archive.hpp"
#include "model/result.hpp"

namespace medvision::model {

namespace fs = std::filesystem;

std::shared_ptr<const Model> Model::load(const std::string& name_or_path,
                                         const LoadOptions& options) {
  const std::string found = resolve_package(name_or_path);
  std::shared_ptr<Model> m(new Model());
  std::string dir = found;
  if (is_package_archive(found)) {
    m->extracted_ = ExtractedPackage::extract(found);
    dir = m->extracted_->package();
  }
  try {
    m->manifest_ = read_manifest(dir);
    verify_checksum(m->manifest_);
  } catch (const Error& e) {
    if (!m->extracted_) throw;
    // Name the archive, not the temporary folder it was extracted into.
    std::string msg = e.what();
    const std::string& root = m->extracted_->root();
    for (size_t at; (at = msg.find(root)) != std::string::npos;) {
      const size_t end =
          at + root.size() + (at + root.size() < msg.size() && msg[at + root.size()] == '/');
      msg.replace(at, end - at, found + "!");
    }
    throw Error(e.status(), msg);
  }
  m->pipeline_ = preprocess::Pipeline::from_json(m->manifest_.preprocess, m->manifest_.input,
                                                 m->manifest_.path);
  infer::RuntimeOptions ro = options.runtime;
  if (!m->manifest_.explain_features.empty()) {
    ro.methods.push_back(m->manifest_.explain_features);
    ro.methods.push_back(m->manifest_.explain_head);
  }
  if (!m->manifest_.explain_activations.empty()) {
    ro.methods.push_back(m->manifest_.explain_activations);
  }
  if (m->manifest_.inference_graph == "freeze") {
    ro.graph = infer::Graph::kFreeze;
  } else if (m->manifest_.inference_graph == "none") {
    ro.graph = infer::Graph::kNone;
  }
  m->runtime_ = infer::Runtime::load((fs::path(dir) / m->manifest_.model_file).string(), ro);
  m->load_warnings_ = m->runtime_->warnings();
  if (!m->manifest_.calibration.is_null() || !m->manifest_.thresholds.is_null()) {
    try {
      m->calibration_.emplace(
          m->manifest_.calibration, m->manifest_.thresholds, m->manifest_.labels,
          m->manifest_.activation == Activation::kSoftmax ? calibrate::Activation::kSoftmax
                                                          : calibrate::Activation::kSigmoid);
    } catch (const Error& e) {
      throw Error(MV_ERR_MODEL, m->manifest_.path + ": calibration/thresholds: " + e.what());
    }
  }

  if (options.warmup) {
    // One zero batch (one window for segmentation): JIT profiling passes run now rather than on
    // the first real image, and a model whose output does not match its labels is refused at
    // load, not at first use.
    std::vector<int64_t> shape = {1, m->manifest_.input.channels};
    for (int64_t s : m->manifest_.input.size) shape.push_back(s);
    const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
    std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    infer::Tensor out = m->runtime_->run(zeros.data(), shape);
    const auto labels = static_cast<int64_t>(m->manifest_.labels.size());
    std::vector<int64_t> want = {1, labels};
    if (m->manifest_.task == Task::kSegmentation) {
      want.insert(want.end(), m->manifest_.input.size.begin(), m->manifest_.input.size.end());
    }
    if (out.shape != want) {
      const auto text = [](const std::vector<int64_t>& v) {
        std::string t;
        for (int64_t s : v) t += (t.empty() ? "" : ", ") + std::to_string(s);
        return "[" + t + "]";
      };
      throw Error(MV_ERR_MODEL,
                  m->manifest_.path + ": the model returns shape " + text(out.shape) + " for one " +
                      (m->manifest_.task == Task::kSegmentation ? "window" : "image") +
                      ", but the manifest (" + std::to_string(labels) + " labels) expects " +
                      text(want));
    }
  }
  return m;
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += (s.empty() ? "" : ", ") + e;
  return s;
}

std::string years(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::vector<std::string> population_warnings(const Population& p, const Image& image) {
  std::vector<std::string> out;
  // An attribute the image lacks is not a contradiction: only present values are checked.
  if (p.age_min_years >= 0 && std::isfinite(image.patient_age_years) &&
      (image.patient_age_years < p.age_min_years || image.patient_age_years > p.age_max_years)) {
    // The range, never the age: the value is about the patient (issue 16).
    out.push_back("Patient's Age (0010,1010) outside the model's population (" +
                  years(p.age_min_years) + "-" + years(p.age_max_years) + " years)");
  }
  const auto listed = [&](const char* key, const char* tag,
                          const std::vector<std::string>& allowed) {
    const std::string* v = image.find_meta(key);
    if (allowed.empty() || v == nullptr || v->empty()) return;
    if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
      out.push_back(std::string(key) + " " + tag + " " + *v +
                    " is not one the model was trained on (" + join(allowed) + ")");
    }
  };
  listed("ViewPosition", "(0018,5101)", p.view_positions);
  listed("BodyPartExamined", "(0018,0015)", p.body_parts);
  if (!p.photometric.empty() && image.format == MV_FORMAT_DICOM) {
    const char* ph = image.photometric == MV_PHOTOMETRIC_MONOCHROME1   ? "MONOCHROME1"
                     : image.photometric == MV_PHOTOMETRIC_MONOCHROME2 ? "MONOCHROME2"
                     : image.photometric == MV_PHOTOMETRIC_RGB         ? "RGB"
                                                                       : "";
    if (*ph != '\0' &&
        std::find(p.photometric.begin(), p.photometric.end(), ph) == p.photometric.end()) {
      out.push_back(std::string("Photometric Interpretation (0028,0004) ") + ph +
                    " is not one the model was trained on (" + join(p.photometric) + ")");
    }
  }
  return out;
}

std::vector<preprocess::Prepared> Model::prepare(const std::vector<const Image*>& images) const {
  std::vector<preprocess::Prepared> out;
  out.reserve(images.size());
  for (const Image* im : images) {
    if (im == nullptr) throw Error(MV_ERR_INVALID_ARGUMENT, "image is NULL");
    out.push_back(pipeline_.run(*im));
    for (auto& w : population_warnings(manifest_.population, *im)) {
      out.back().warnings.push_back(std::move(w));
    }
  }
  return out;
}

std::vector<float> Model::stack(const std::vector<preprocess::Prepared>& inputs,
                                std::vector<int64_t>* shape) {
  if (inputs.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "no images");
  const auto& first = inputs.front().shape;
  for (size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i].shape != first) {
      throw Error(MV_ERR_SHAPE_MISMATCH,
                  "image " + std::to_string(i) + " of the batch preprocesses to a different shape");
    }
  }
  const size_t per = inputs.front().data.size();
  std::vector<float> batch(per * inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::copy(inputs[i].data.begin(), inputs[i].data.end(), batch.begin() + i * per);
  }
  shape->assign(1, static_cast<int64_t>(inputs.size()));
  shape->insert(shape->end(), first.begin(), first.end());
  return batch;
}

std::vector<Classification> Model::interpret(const infer::Tensor& logits,
                                             std::vector<preprocess::Prepared>&& inputs) const {
  const auto n = static_cast<int64_t>(inputs.size());
  const auto labels = static_cast<int64_t>(manifest_.labels.size());
  if (logits.shape.size() != 2 || logits.shape[0] != n || logits.shape[1] != labels) {
    throw Error(MV_ERR_MODEL, manifest_.path + ": the model's output does not have shape [" +
                                  std::to_string(n) + ", " + std::to_string(labels) + "]");
  }
  std::vector<Classification> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data.data() + i * labels;
    Classification& c = out[static_cast<size_t>(i)];
    for (int64_t k = 0; k < labels; ++k) {
      if (!std::isfinite(z[k])) {
        throw Error(MV_ERR_MODEL, manifest_.path +
                                      ": the model returned a non-finite logit for "
                                      "label '" +
                                      manifest_.labels[static_cast<size_t>(k)] + "' of image " +
                                      std::to_string(i));
      }
    }
    c.scores.resize(static_cast<size_t>(labels));
    c.softmax = manifest_.activation == Activation::kSoftmax;
    if (c.softmax) {
      std::vector<float> p(static_cast<size_t>(labels));
      softmax(z, labels, 1, p.data());
      for (int64_t k = 0; k < labels; ++k) {
        c.scores[static_cast<size_t>(k)].probability = p[static_cast<size_t>(k)];
      }
    } else {
      for (int64_t k = 0; k < labels; ++k) {
        c.scores[static_cast<size_t>(k)].probability =
            static_cast<float>(sigmoid(static_cast<double>(z[k])));
      }
    }
    for (int64_t k = 0; k < labels; ++k) {
      auto& s = c.scores[static_cast<size_t>(k)];
      s.label = manifest_.labels[static_cast<size_t>(k)];
      s.logit = z[k];
    }
    if (calibration_) {
      const calibrate::AppliedScores applied = calibration_->apply(z, static_cast<size_t>(labels));
      for (size_t k = 0; k < static_cast<size_t>(labels); ++k) {
        c.scores[k].calibrated = applied.calibrated[k];
        c.scores[k].decision = applied.decision[k];
        c.scores[k].refer = applied.refer[k];
        c.scores[k].conformal = applied.conformal[k];
      }
      if (calibration_->conformal()) c.conformal_alpha = calibration_->conformal()->alpha();
      c.ood = applied.ood;
    }
    c.ranking.resize(static_cast<size_t>(labels));
    std::iota(c.ranking.begin(), c.ranking.end(), size_t{0});
    // Ranked by the number a reader is shown: the calibrated probability where the package has
    // one (per-label calibration can reorder labels), else the model's probability.
    const auto shown = [&](size_t k) {
      const auto& s = c.scores[k];
      return std::isnan(s.calibrated) ? s.probability : s.calibrated;
    };
    std::stable_sort(c.ranking.begin(), c.ranking.end(),
                     [&](size_t a, size_t b) { return shown(a) > shown(b); });
    auto& prepared = inputs[static_cast<size_t>(i)];
    c.warnings = std::move(prepared.warnings);
    if (c.ood.far()) {  // issue 16: an image unlike the calibration images says so
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f", c.ood.score);
      c.warnings.push_back("out-of-distribution score " + std::string(buf) + " (" +
                           manifest_.labels[c.ood.label] +
                           "): the outputs lie far from those on the calibration images (over 3 "
                           "robust SD); the result may not be reliable");
    }
    c.chain = std::move(prepared.chain);
  }
  return out;
}

std::vector<Classification> Model::classify(const std::vector<const Image*>& images) const {
  if (manifest_.task != Task::kClassification) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                manifest_.path + ": '" + manifest_.name + "' is not a classification model");
  }
  auto inputs = prepare(images);
  std::vector<int64_t> shape;
  const std::vector<float> batch = stack(inputs, &shape);
  infer::Tensor logits = runtime_->run(batch.data(), shape);
  return interpret(logits, std::move(inputs));
}

// The dispatches on the task are switches without default: -Wswitch names each one when a
// task is added (docs/architecture.md, "Add a task").
Result Model::run(const Image& image) const {
  switch (manifest_.task) {
    case Task::kSegmentation:
      return make_result(manifest_, segment(image, {}));
    case Task::kClassification:
      break;
  }
  auto results = classify({&image});
  return make_result(manifest_, std::move(results.front()));
}

std::vector<Result> Model::run_batch(const std::vector<const Image*>& images) const {
  std::vector<Result> out;
  out.reserve(images.size());
  switch (manifest_.task) {
    case Task::kSegmentation:
      for (const Image* im : images) out.push_back(make_result(manifest_, segment(*im, {})));
      return out;
    case Task::kClassification:
      break;
  }
  for (auto& c : classify(images)) out.push_back(make_result(manifest_, std::move(c)));
  return out;
}

Result Model::run_segmentation(const Image& image, const SegmentOptions& options) const {
  return make_result(manifest_, segment(image, options));
}

}  // namespace medvision::model
