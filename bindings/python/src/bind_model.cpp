// Models and classification results. Inference runs with the GIL released, so Python threads
// sharing one Model run concurrently (the model is thread-safe, medvision.h).
#include <cmath>

#include "bindings.hpp"

namespace mvpy {
namespace {

mv_precision parse_precision(const std::string& p) {
  if (p == "float32") return MV_PRECISION_FLOAT32;
  if (p == "reduced") return MV_PRECISION_REDUCED;
  throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                             "precision must be 'float32' or 'reduced', not '" + p + "'");
}

std::vector<std::shared_ptr<medvision::Image>> image_handles(
    const std::vector<const ImageHolder*>& images) {
  std::vector<std::shared_ptr<medvision::Image>> out;
  out.reserve(images.size());
  for (const ImageHolder* h : images) {
    if (h == nullptr) throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, "an image is None");
    out.push_back(h->get());
  }
  return out;
}

}  // namespace

void bind_model(py::module_& m) {
  m.def("list_models", &medvision::list_models,
        "Model package folders on the search path (MEDVISION_MODEL_PATH, then the built-in ones).");
  py::class_<ResultHolder> result(m, "Result", "The outcome of running a model on one image.");
  result
      .def_property_readonly(
          "scores",
          [](const ResultHolder& self) {
            auto r = self.get();
            py::list out;
            for (size_t i = 0; i < r->label_count(); ++i) {
              const auto s = r->score(i);
              out.append(py::make_tuple(
                  s.label, s.logit, s.probability,
                  std::isnan(s.calibrated) ? py::object(py::none()) : py::float_(s.calibrated),
                  s.decision, s.refer));
            }
            return out;
          },
          "(label, logit, probability, calibrated|None, decision -1/0/1, refer) per label, "
          "in manifest order.")
      .def_property_readonly("ranking",
                             [](const ResultHolder& self) {
                               auto r = self.get();
                               std::vector<size_t> order;
                               for (size_t k = 0; k < r->label_count(); ++k)
                                 order.push_back(mv_result_ranked(r->get(), k));
                               return order;
                             })
      .def_property_readonly("model_name",
                             [](const ResultHolder& s) { return s.get()->model_name(); })
      .def_property_readonly("model_version",
                             [](const ResultHolder& s) { return s.get()->model_version(); })
      .def_property_readonly("notice", [](const ResultHolder& s) { return s.get()->notice(); })
      .def_property_readonly("warnings", [](const ResultHolder& s) { return s.get()->warnings(); })
      .def_property_readonly("json", [](const ResultHolder& s) { return s.get()->json(); });

  py::class_<ModelHolder> model(m, "Model", R"doc(
A loaded model package. Thread-safe: share one Model between threads; every call releases the GIL.
)doc");
  add_context_manager(model);
  model
      .def(py::init([](const std::string& name_or_path, const std::string& device, int num_threads,
                       const std::string& precision, bool warmup, bool optimize) {
             medvision::ModelOptions o;
             o.device = device;
             o.num_threads = num_threads;
             o.precision = parse_precision(precision);
             o.warmup = warmup;
             o.optimize = optimize;
             medvision::Model loaded;
             {
               py::gil_scoped_release release;
               loaded = medvision::Model::load(name_or_path, o);
             }
             return ModelHolder(std::move(loaded), "Model");
           }),
           py::arg("name_or_path"), py::kw_only(), py::arg("device") = "auto",
           py::arg("num_threads") = 0, py::arg("precision") = "float32", py::arg("warmup") = true,
           py::arg("optimize") = true)
      .def_property_readonly("name", [](const ModelHolder& s) { return s.get()->name(); })
      .def_property_readonly("version", [](const ModelHolder& s) { return s.get()->version(); })
      .def_property_readonly("notice", [](const ModelHolder& s) { return s.get()->notice(); })
      .def_property_readonly("device", [](const ModelHolder& s) { return s.get()->device(); })
      .def_property_readonly("manifest_json",
                             [](const ModelHolder& s) { return s.get()->manifest_json(); })
      .def_property_readonly("labels", [](const ModelHolder& s) { return s.get()->labels(); })
      .def_property_readonly("task",
                             [](const ModelHolder& s) {
                               return s.get()->task() == MV_TASK_SEGMENTATION ? "segmentation"
                                                                              : "classification";
                             })
      .def(
          "run",
          [](const ModelHolder& self, const ImageHolder& image) {
            auto mdl = self.get();
            auto img = image.get();
            medvision::Result r;
            {
              py::gil_scoped_release release;
              r = mdl->run(*img);
            }
            return ResultHolder(std::move(r), "Result");
          },
          py::arg("image"), "Preprocess, infer, activate, calibrate (GIL released).")
      .def(
          "run_batch",
          [](const ModelHolder& self, const std::vector<const ImageHolder*>& images) {
            auto mdl = self.get();
            const auto handles = image_handles(images);
            std::vector<const medvision::Image*> ptrs;
            for (const auto& h : handles) ptrs.push_back(h.get());
            std::vector<medvision::Result> results;
            {
              py::gil_scoped_release release;
              results = mdl->run_batch(ptrs);
            }
            std::vector<ResultHolder> out;
            out.reserve(results.size());
            for (auto& r : results) out.emplace_back(std::move(r), "Result");
            return out;
          },
          py::arg("images"), "One batch through the model (GIL released).")
      .def("__repr__", [](const ModelHolder& self) {
        if (self.closed()) return std::string("<medvision.Model (closed)>");
        auto mdl = self.get();
        return "<medvision.Model " + mdl->name() + " " + mdl->version() + " on " + mdl->device() +
               ">";
      });
}

}  // namespace mvpy
