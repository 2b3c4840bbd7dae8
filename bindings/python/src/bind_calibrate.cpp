// Calibration and the drift check over raw model outputs (GIL released).
#include "bindings.hpp"

namespace mvpy {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IntArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

// Checks that `logits` is [count, label_count] for `model`: the C API trusts the sizes it is given.
size_t check_logits(const medvision::Model& model, const FloatArray& logits, const char* what) {
  const auto labels = static_cast<py::ssize_t>(model.labels().size());
  if (logits.ndim() != 2 || logits.shape(1) != labels || logits.shape(0) == 0) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               std::string(what) + ": logits must be [count > 0, " +
                                   std::to_string(labels) + "] for model '" + model.name() + "'");
  }
  return static_cast<size_t>(logits.shape(0));
}

mv_calibration_method parse_method(const std::string& s) {
  if (s == "temperature") return MV_CALIBRATION_TEMPERATURE;
  if (s == "platt") return MV_CALIBRATION_PLATT;
  if (s == "isotonic") return MV_CALIBRATION_ISOTONIC;
  throw medvision::Exception(
      MV_ERR_INVALID_ARGUMENT,
      "method must be 'temperature', 'platt' or 'isotonic', not '" + s + "'");
}

mv_operating_rule parse_rule(const std::string& s) {
  if (s == "youden") return MV_OPERATING_YOUDEN;
  if (s == "sensitivity") return MV_OPERATING_SENSITIVITY;
  if (s == "specificity") return MV_OPERATING_SPECIFICITY;
  throw medvision::Exception(
      MV_ERR_INVALID_ARGUMENT,
      "rule must be 'youden', 'sensitivity' or 'specificity', not '" + s + "'");
}

mv_conformal_score parse_conformal_score(const std::string& s) {
  if (s == "lac") return MV_CONFORMAL_SCORE_LAC;
  if (s == "aps") return MV_CONFORMAL_SCORE_APS;
  throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                             "conformal_score must be 'lac' or 'aps', not '" + s + "'");
}

}  // namespace

void bind_calibrate(py::module_& m) {
  m.def(
      "calibrate",
      [](const ModelHolder& model, const FloatArray& logits, const IntArray& labels,
         const std::string& out_dir, const std::string& method, const std::string& rule,
         double target, double refer_half_width, double alpha, const std::string& description,
         const std::string& version, const std::string& conformal_score) {
        auto mdl = model.get();
        const size_t count = check_logits(*mdl, logits, "calibrate");
        const auto per_image = static_cast<py::ssize_t>(mdl->labels().size());
        const bool by_index =
            labels.ndim() == 1 && labels.shape(0) == static_cast<py::ssize_t>(count);
        const bool by_column = labels.ndim() == 2 &&
                               labels.shape(0) == static_cast<py::ssize_t>(count) &&
                               labels.shape(1) == per_image;
        if (!by_index && !by_column) {
          throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                     "calibrate: labels must be [" + std::to_string(count) + ", " +
                                         std::to_string(per_image) +
                                         "] of 0/1 (sigmoid models) or [" + std::to_string(count) +
                                         "] class indices (softmax models)");
        }
        medvision::CalibrateOptions o;
        o.method = parse_method(method);
        o.rule = parse_rule(rule);
        o.target = target;
        o.refer_half_width = refer_half_width;
        o.conformal = alpha > 0.0;
        if (alpha > 0.0) o.alpha = alpha;
        o.conformal_score = parse_conformal_score(conformal_score);
        o.data_description = description;
        o.version = version;
        py::gil_scoped_release release;
        medvision::calibrate(*mdl, logits.data(), labels.data(), count, out_dir, o);
      },
      py::arg("model"), py::arg("logits"), py::arg("labels"), py::arg("out_dir"), py::kw_only(),
      py::arg("method") = "temperature", py::arg("rule") = "youden", py::arg("target") = 0.9,
      py::arg("refer_half_width") = 0.1, py::arg("alpha") = 0.0, py::arg("description") = "",
      py::arg("version") = "", py::arg("conformal_score") = "lac",
      "Fits calibration on raw outputs and writes a new package version to out_dir.");

  m.def(
      "drift_check",
      [](const ModelHolder& model, const FloatArray& logits) {
        auto mdl = model.get();
        const size_t count = check_logits(*mdl, logits, "drift_check");
        py::gil_scoped_release release;
        return medvision::drift_check(*mdl, logits.data(), count);
      },
      py::arg("model"), py::arg("logits"),
      "Compares raw outputs with the calibration-time score distribution; JSON report.");

  m.def(
      "evaluate",
      [](const std::vector<ModelHolder>& models, const std::vector<FloatArray>& logits,
         const IntArray& labels, double threshold, double sensitivity, uint32_t bootstrap,
         uint64_t seed, uint32_t bins, double level) {
        if (models.empty() || models.size() != logits.size()) {
          throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                     "evaluate: one logits array per model (at least one)");
        }
        std::vector<std::shared_ptr<medvision::Model>> keep;
        std::vector<const medvision::Model*> mp;
        std::vector<const float*> lp;
        size_t count = 0;
        for (size_t k = 0; k < models.size(); ++k) {
          keep.push_back(models[k].get());
          const size_t c = check_logits(*keep.back(), logits[k], "evaluate");
          if (k > 0 && c != count) {
            throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                       "evaluate: every model's logits must cover the same images");
          }
          count = c;
          mp.push_back(keep.back().get());
          lp.push_back(logits[k].data());
        }
        const auto per_image = static_cast<py::ssize_t>(mp.front()->labels().size());
        const auto n = static_cast<py::ssize_t>(count);
        const bool ok =
            (labels.ndim() == 1 && labels.shape(0) == n) ||
            (labels.ndim() == 2 && labels.shape(0) == n && labels.shape(1) == per_image);
        if (!ok) {
          throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                     "evaluate: labels must be [" + std::to_string(count) + ", " +
                                         std::to_string(per_image) +
                                         "] of 0/1 (sigmoid models) or [" + std::to_string(count) +
                                         "] class indices (softmax models)");
        }
        medvision::EvaluateOptions o;
        o.threshold = threshold;
        o.sensitivity = sensitivity;
        o.bootstrap = bootstrap;
        o.seed = seed;
        o.bins = bins;
        o.level = level;
        py::gil_scoped_release release;
        return medvision::evaluate(mp, lp, labels.data(), count, o);
      },
      py::arg("models"), py::arg("logits"), py::arg("labels"), py::kw_only(),
      py::arg("threshold") = -1.0, py::arg("sensitivity") = 0.0, py::arg("bootstrap") = 1000,
      py::arg("seed") = 20240601, py::arg("bins") = 15, py::arg("level") = 0.95,
      "Evaluates models on one labelled test set from their raw outputs; JSON text.");

  using EvaluatorHolder = Holder<medvision::SegmentationEvaluator>;
  py::class_<EvaluatorHolder>(m, "SegmentationEvaluator",
                              "Segmentation evaluation, one case at a time (mv_segmentation_*).")
      .def(py::init([](const std::vector<ModelHolder>& models, uint32_t bootstrap, uint64_t seed,
                       double level) {
             std::vector<std::shared_ptr<medvision::Model>> keep;
             std::vector<const medvision::Model*> mp;
             for (const auto& h : models) {
               keep.push_back(h.get());
               mp.push_back(keep.back().get());
             }
             medvision::EvaluateOptions o;
             o.bootstrap = bootstrap;
             o.seed = seed;
             o.level = level;
             return EvaluatorHolder(medvision::SegmentationEvaluator(mp, o),
                                    "segmentation evaluator");
           }),
           py::arg("models"), py::kw_only(), py::arg("bootstrap") = 1000,
           py::arg("seed") = 20240601, py::arg("level") = 0.95)
      .def(
          "add",
          [](const EvaluatorHolder& self, const std::string& case_name,
             const ImageHolder& reference, const std::vector<py::object>& masks) {
            auto ev = self.get();
            auto ref = reference.get();
            // Each model's mask: its segmentation Result, or a label-map Image.
            std::vector<std::shared_ptr<medvision::Result>> keep_results;
            std::vector<std::shared_ptr<medvision::Image>> keep_images;
            std::vector<medvision::Image> borrowed;
            borrowed.reserve(masks.size());
            std::vector<const medvision::Image*> mp;
            for (const auto& o : masks) {
              if (py::isinstance<ResultHolder>(o)) {
                keep_results.push_back(o.cast<const ResultHolder&>().get());
                borrowed.push_back(keep_results.back()->mask());
                mp.push_back(&borrowed.back());
              } else {
                keep_images.push_back(o.cast<const ImageHolder&>().get());
                mp.push_back(keep_images.back().get());
              }
            }
            py::gil_scoped_release release;
            ev->add(case_name, *ref, mp);
          },
          py::arg("case_name"), py::arg("reference"), py::arg("masks"),
          "Adds one case: the reference label map and, per model, its segmentation Result or a "
          "predicted label-map Image.")
      .def(
          "finish", [](const EvaluatorHolder& self) { return self.get()->finish(); },
          "The evaluation as JSON text.");
}

}  // namespace mvpy
