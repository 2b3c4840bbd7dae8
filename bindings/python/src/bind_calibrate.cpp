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

}  // namespace

void bind_calibrate(py::module_& m) {
  // The C struct behind medvision::CalibrateOptions, one property per field; option values by
  // the C library's names (mv_<enum>_name / mv_<enum>_parse). A new object holds the library's
  // defaults (mv_calibrate_options_init()), which medvision.calibrate() uses as its own.
  using CO = medvision::CalibrateOptions;
  py::class_<CO>(m, "CalibrateOptions",
                 "Options of calibrate(); a new object holds the library's defaults.")
      .def(py::init<>())
      .def_property(
          "method", [](const CO& o) { return medvision::to_string(o.method()); },
          [](CO& o, const std::string& v) {
            o.set_method(medvision::parse<mv_calibration_method>(v));
          })
      .def_property(
          "rule", [](const CO& o) { return medvision::to_string(o.rule()); },
          [](CO& o, const std::string& v) { o.set_rule(medvision::parse<mv_operating_rule>(v)); })
      .def_property("target", &CO::target, &CO::set_target)
      .def_property(
          "refer_mode", [](const CO& o) { return medvision::to_string(o.refer_mode()); },
          [](CO& o, const std::string& v) { o.set_refer_mode(medvision::parse<mv_refer_mode>(v)); })
      .def_property("refer_half_width", &CO::refer_half_width, &CO::set_refer_half_width)
      .def_property("refer_logit_half_width", &CO::refer_logit_half_width,
                    &CO::set_refer_logit_half_width)
      .def_property("refer_npv", &CO::refer_npv, &CO::set_refer_npv)
      .def_property("refer_ppv", &CO::refer_ppv, &CO::set_refer_ppv)
      .def_property("conformal", &CO::conformal, &CO::set_conformal)
      .def_property("alpha", &CO::alpha, &CO::set_alpha)
      .def_property(
          "conformal_score", [](const CO& o) { return medvision::to_string(o.conformal_score()); },
          [](CO& o, const std::string& v) {
            o.set_conformal_score(medvision::parse<mv_conformal_score>(v));
          })
      .def_property("data_description", &CO::data_description, &CO::set_data_description)
      .def_property("version", &CO::version, &CO::set_version);

  m.def(
      "calibrate",
      [](const ModelHolder& model, const FloatArray& logits, const IntArray& labels,
         const std::string& out_dir, const CO& options) {
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
        py::gil_scoped_release release;
        return medvision::calibrate(*mdl, logits.data(), labels.data(), count, out_dir, options);
      },
      py::arg("model"), py::arg("logits"), py::arg("labels"), py::arg("out_dir"),
      py::arg("options") = CO(),
      "Fits calibration on raw outputs, writes a new package version to out_dir and returns "
      "the calibration report as JSON text (mv_calibration_report_json()).");

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

  // The prior shift (mv_model_estimate_prior / mv_model_adapt_prior_report); the defaults are
  // the C library's (mv_prior_shift_options_init()).
  const medvision::PriorShiftOptions prior_defaults;
  const auto prior_options = [](const std::vector<double>& source_prior, int32_t max_iterations,
                                double tolerance, const std::string& description,
                                const std::string& version) {
    medvision::PriorShiftOptions o;
    o.set_source_prior(source_prior)
        .set_max_iterations(max_iterations)
        .set_tolerance(tolerance)
        .set_data_description(description)
        .set_version(version);
    return o;
  };
  m.def(
      "estimate_prior",
      [prior_options](const ModelHolder& model, const FloatArray& logits,
                      const std::vector<double>& source_prior, int32_t max_iterations,
                      double tolerance, const std::string& description) {
        auto mdl = model.get();
        const size_t count = check_logits(*mdl, logits, "estimate_prior");
        const auto o = prior_options(source_prior, max_iterations, tolerance, description, "");
        py::gil_scoped_release release;
        return medvision::estimate_prior(*mdl, logits.data(), count, o);
      },
      py::arg("model"), py::arg("logits"), py::kw_only(),
      py::arg("source_prior") = std::vector<double>(),
      py::arg("max_iterations") = prior_defaults.max_iterations(),
      py::arg("tolerance") = prior_defaults.tolerance(),
      py::arg("description") = prior_defaults.data_description(),
      "EM estimate of the label priors of unlabelled images' raw outputs; JSON report.");
  m.def(
      "adapt_prior",
      [prior_options](const ModelHolder& model, const FloatArray& logits,
                      const std::string& out_dir, const std::vector<double>& source_prior,
                      int32_t max_iterations, double tolerance, const std::string& description,
                      const std::string& version) {
        auto mdl = model.get();
        const size_t count = check_logits(*mdl, logits, "adapt_prior");
        const auto o = prior_options(source_prior, max_iterations, tolerance, description, version);
        py::gil_scoped_release release;
        return medvision::adapt_prior(*mdl, logits.data(), count, out_dir, o);
      },
      py::arg("model"), py::arg("logits"), py::arg("out_dir"), py::kw_only(),
      py::arg("source_prior") = std::vector<double>(),
      py::arg("max_iterations") = prior_defaults.max_iterations(),
      py::arg("tolerance") = prior_defaults.tolerance(),
      py::arg("description") = prior_defaults.data_description(),
      py::arg("version") = prior_defaults.version(),
      "estimate_prior(), then writes a package version corrected for the priors; JSON report.");

  // The C struct behind medvision::EvaluateOptions, one property per field; a new object holds
  // the library's defaults (mv_evaluate_options_init()), which evaluate() and
  // SegmentationEvaluator take as their own.
  using EO = medvision::EvaluateOptions;
  py::class_<EO>(m, "EvaluateOptions",
                 "Options of evaluate(); a new object holds the library's defaults.")
      .def(py::init<>())
      .def_property("bootstrap", &EO::bootstrap, &EO::set_bootstrap)
      .def_property("bins", &EO::bins, &EO::set_bins)
      .def_property("seed", &EO::seed, &EO::set_seed)
      .def_property("level", &EO::level, &EO::set_level)
      .def_property("threshold", &EO::threshold, &EO::set_threshold,
                    "Also decide at this threshold; negative: not.")
      .def_property("sensitivity", &EO::sensitivity, &EO::set_sensitivity,
                    "Also decide at the highest threshold reaching this sensitivity; 0: not.");
  const EO evaluate_defaults;

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
        EO o;
        o.set_threshold(threshold)
            .set_sensitivity(sensitivity)
            .set_bootstrap(bootstrap)
            .set_seed(seed)
            .set_bins(bins)
            .set_level(level);
        py::gil_scoped_release release;
        return medvision::evaluate(mp, lp, labels.data(), count, o);
      },
      // The defaults are the C library's (mv_evaluate_options_init()).
      py::arg("models"), py::arg("logits"), py::arg("labels"), py::kw_only(),
      py::arg("threshold") = evaluate_defaults.threshold(),
      py::arg("sensitivity") = evaluate_defaults.sensitivity(),
      py::arg("bootstrap") = evaluate_defaults.bootstrap(),
      py::arg("seed") = evaluate_defaults.seed(), py::arg("bins") = evaluate_defaults.bins(),
      py::arg("level") = evaluate_defaults.level(),
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
             EO o;
             o.set_bootstrap(bootstrap).set_seed(seed).set_level(level);
             return EvaluatorHolder(medvision::SegmentationEvaluator(mp, o),
                                    "segmentation evaluator");
           }),
           // The defaults are the C library's (mv_evaluate_options_init()).
           py::arg("models"), py::kw_only(), py::arg("bootstrap") = evaluate_defaults.bootstrap(),
           py::arg("seed") = evaluate_defaults.seed(), py::arg("level") = evaluate_defaults.level())
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
