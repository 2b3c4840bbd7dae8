// Models and classification results. Inference runs with the GIL released, so Python threads
// sharing one Model run concurrently (the model is thread-safe, medvision.h).
#include <cmath>

#include "bindings.hpp"

namespace mvpy {
namespace {

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

py::tuple region_tuple(const std::string& name, const mv_region_stats& st) {
  auto triple = [](const auto* v) { return py::make_tuple(v[0], v[1], v[2]); };
  return py::make_tuple(name, st.voxels, st.volume_ml, st.area_mm2, triple(st.bbox_min),
                        triple(st.bbox_max), st.components, st.largest_component_voxels,
                        triple(st.centroid), triple(st.centroid_index), st.spacing_known != 0);
}

// A read-only view of a borrowed image of `result` (mask, probability maps): the capsule owns
// the result, which owns the image. `drop_channel` views a one-channel image as [D, H, W].
py::object result_image_view(const std::shared_ptr<medvision::Result>& result,
                             const mv_image* image, bool drop_channel) {
  if (image == nullptr) return py::none();
  int64_t s[4];
  mv_image_shape(image, s);
  std::vector<py::ssize_t> shape;
  if (drop_channel) {
    shape = {s[1], s[2], s[3]};
  } else {
    shape = {s[0], s[1], s[2], s[3]};
  }
  return readonly_float_view(result, mv_image_data(image), std::move(shape));
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
      .def_property_readonly("json", [](const ResultHolder& s) { return s.get()->json(); })
      // The task's one spelling is the C API's (mv_task_name), as for Model.task.
      .def_property_readonly(
          "task", [](const ResultHolder& s) { return medvision::to_string(s.get()->task()); })
      .def_property_readonly("labels",
                             [](const ResultHolder& s) {
                               auto r = s.get();
                               std::vector<std::string> out;
                               for (size_t i = 0; i < r->label_count(); ++i)
                                 out.emplace_back(mv_result_label(r->get(), i));
                               return out;
                             })
      .def_property_readonly(
          "mask",
          [](const ResultHolder& s) {
            auto r = s.get();
            return result_image_view(r, r->mask().get(), true);
          },
          "Segmentation: read-only float32 [D, H, W] label map on the input grid (no copy); "
          "None for classification results.")
      .def_property_readonly(
          "probability_map",
          [](const ResultHolder& s) {
            auto r = s.get();
            return result_image_view(r, r->probability_map().get(), false);
          },
          "Segmentation: read-only float32 [classes, D, H, W] (no copy), or None.")
      .def_property_readonly("regions",
                             [](const ResultHolder& s) {
                               py::list out;
                               for (const auto& [name, st] : s.get()->regions())
                                 out.append(region_tuple(name, st));
                               return out;
                             })
      .def(
          "write_nifti",
          [](const ResultHolder& s, const std::string& path) {
            auto r = s.get();
            py::gil_scoped_release nogil;
            r->write_nifti(path);
          },
          py::arg("path"), "Segmentation: the label map as NIfTI with the input's affine.")
      .def(
          "write_overlay_png",
          [](const ResultHolder& s, const std::string& path, const ImageHolder& image,
             int64_t slice) {
            auto r = s.get();
            auto img = image.get();
            py::gil_scoped_release nogil;
            r->write_overlay_png(*img, path, slice);
          },
          py::arg("path"), py::arg("image"), py::arg("slice") = -1,
          "Segmentation: class outlines over the image (a volume's slice; -1 = most foreground).")
      .def(
          "write_dicom_seg",
          [](const ResultHolder& s, const std::string& path, const ImageHolder& source) {
            auto r = s.get();
            auto img = source.get();
            py::gil_scoped_release nogil;
            r->write_dicom_seg(*img, path);
          },
          py::arg("path"), py::arg("source"),
          "Segmentation: a DICOM SEG in the source's study (source decoded from DICOM files).")
      .def(
          "write_dicom_sr",
          [](const ResultHolder& s, const std::string& path, const ImageHolder& source,
             const std::string& seg_path) {
            auto r = s.get();
            auto img = source.get();
            py::gil_scoped_release nogil;
            r->write_dicom_sr(*img, path, seg_path);
          },
          py::arg("path"), py::arg("source"),
          py::arg("seg_path") = medvision::DicomSrOptions().seg_path(),
          "A DICOM SR (TID 1500) of the result in the source's study; seg_path: the DICOM SEG "
          "written for this result (\"\" for none).");

  // The C structs behind medvision::ModelOptions and SegmentOptions, one property per field. A
  // new object holds the library's defaults (mv_model_options_init(), mv_segment_options_init()),
  // which Model() and Model.segment() take as their own.
  using MO = medvision::ModelOptions;
  py::class_<MO>(m, "ModelOptions",
                 "Options of Model(); a new object holds the library's defaults.")
      .def(py::init<>())
      .def_property("device", &MO::device, &MO::set_device,
                    "\"auto\", \"cpu\", \"cuda\" or \"cuda:N\"; \"\": the library's default.")
      .def_property("num_threads", &MO::num_threads, &MO::set_num_threads)
      .def_property(
          "precision", [](const MO& o) { return medvision::to_string(o.precision()); },
          [](MO& o, const std::string& v) { o.set_precision(medvision::parse<mv_precision>(v)); })
      .def_property("warmup", &MO::warmup, &MO::set_warmup)
      .def_property("optimize", &MO::optimize, &MO::set_optimize);
  using SO = medvision::SegmentOptions;
  py::class_<SO>(m, "SegmentOptions",
                 "Options of Model.segment(); a new object holds the library's defaults "
                 "(negative or 0: the manifest's setting).")
      .def(py::init<>())
      .def_property("overlap", &SO::overlap, &SO::set_overlap)
      .def_property("batch_size", &SO::batch_size, &SO::set_batch_size)
      .def_property("mirror", &SO::mirror, &SO::set_mirror)
      .def_property("probabilities", &SO::probabilities, &SO::set_probabilities)
      .def_property("largest_component", &SO::largest_component, &SO::set_largest_component)
      .def_property("fill_holes", &SO::fill_holes, &SO::set_fill_holes);
  const MO model_defaults;
  const SO segment_defaults;

  py::class_<ModelHolder> model(m, "Model", R"doc(
A loaded model package. Thread-safe: share one Model between threads; every call releases the GIL.
)doc");
  add_context_manager(model);
  model
      .def(py::init([](const std::string& name_or_path, const std::string& device, int num_threads,
                       const std::string& precision, bool warmup, bool optimize) {
             MO o;
             o.set_device(device)
                 .set_num_threads(num_threads)
                 .set_precision(medvision::parse<mv_precision>(precision))
                 .set_warmup(warmup)
                 .set_optimize(optimize);
             medvision::Model loaded;
             {
               py::gil_scoped_release release;
               loaded = medvision::Model::load(name_or_path, o);
             }
             return ModelHolder(std::move(loaded), "Model");
           }),
           // The defaults are the C library's (mv_model_options_init()).
           py::arg("name_or_path"), py::kw_only(), py::arg("device") = model_defaults.device(),
           py::arg("num_threads") = model_defaults.num_threads(),
           py::arg("precision") = std::string(medvision::to_string(model_defaults.precision())),
           py::arg("warmup") = model_defaults.warmup(),
           py::arg("optimize") = model_defaults.optimize())
      .def_property_readonly("name", [](const ModelHolder& s) { return s.get()->name(); })
      .def_property_readonly("version", [](const ModelHolder& s) { return s.get()->version(); })
      .def_property_readonly("notice", [](const ModelHolder& s) { return s.get()->notice(); })
      .def_property_readonly("device", [](const ModelHolder& s) { return s.get()->device(); })
      .def_property_readonly("manifest_json",
                             [](const ModelHolder& s) { return s.get()->manifest_json(); })
      .def_property_readonly("labels", [](const ModelHolder& s) { return s.get()->labels(); })
      .def_property_readonly(
          "task", [](const ModelHolder& s) { return medvision::to_string(s.get()->task()); })
      .def_property_readonly(
          "activation",
          [](const ModelHolder& s) { return medvision::to_string(s.get()->activation()); },
          "'sigmoid' (labels per image are 0/1) or 'softmax' (one class index per image).")
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
          "segment",
          [](const ModelHolder& self, const ImageHolder& image, double overlap, int32_t batch_size,
             int32_t mirror, bool probabilities, int32_t largest_component, int32_t fill_holes,
             py::object progress) {
            auto mdl = self.get();
            auto img = image.get();
            SO o;
            o.set_overlap(overlap)
                .set_batch_size(batch_size)
                .set_mirror(mirror)
                .set_probabilities(probabilities)
                .set_largest_component(largest_component)
                .set_fill_holes(fill_holes);
            Progress state{progress, nullptr};
            if (!progress.is_none()) o.set_progress(&Progress::call, &state);
            medvision::Result r;
            std::exception_ptr failure;
            {
              py::gil_scoped_release release;
              try {
                r = mdl->segment(*img, o);
              } catch (...) {
                failure = std::current_exception();
              }
            }
            if (state.error) throw std::move(*state.error);
            if (failure) std::rethrow_exception(failure);
            return ResultHolder(std::move(r), "Result");
          },
          // The defaults are the C library's (mv_segment_options_init()).
          py::arg("image"), py::kw_only(), py::arg("overlap") = segment_defaults.overlap(),
          py::arg("batch_size") = segment_defaults.batch_size(),
          py::arg("mirror") = segment_defaults.mirror(),
          py::arg("probabilities") = segment_defaults.probabilities(),
          py::arg("largest_component") = segment_defaults.largest_component(),
          py::arg("fill_holes") = segment_defaults.fill_holes(), py::arg("progress") = py::none(),
          "Sliding-window segmentation (GIL released; progress(done, total) -> bool is called "
          "with the GIL taken back).")
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
      .def(
          "run_many",
          [](const ModelHolder& self, const std::vector<py::object>& inputs, int32_t batch_size,
             int32_t decode_threads, int32_t queue_batches, py::object progress, int frame,
             int apply_voi, uint64_t max_values, const std::string& series_uid,
             const py::object& pixel_spacing) {
            // Inputs are str paths or Images; both are read out before the GIL is released.
            auto mdl = self.get();
            // Paths are decoded as Image.load() with the same keywords would (opts.load).
            const medvision::LoadOptions load =
                load_options(frame, apply_voi, max_values, series_uid, pixel_spacing);
            std::vector<std::string> paths(inputs.size());
            std::vector<std::shared_ptr<medvision::Image>> keep;
            std::vector<const char*> path_ptrs(inputs.size(), nullptr);
            std::vector<const mv_image*> image_ptrs(inputs.size(), nullptr);
            for (size_t i = 0; i < inputs.size(); ++i) {
              if (py::isinstance<py::str>(inputs[i])) {
                paths[i] = inputs[i].cast<std::string>();
                path_ptrs[i] = paths[i].c_str();
              } else {
                keep.push_back(inputs[i].cast<const ImageHolder&>().get());
                image_ptrs[i] = keep.back()->get();
              }
            }
            mv_pipeline_options o;
            medvision::check(mv_pipeline_options_default(&o));
            o.batch_size = batch_size;
            o.decode_threads = decode_threads;
            o.queue_batches = queue_batches;
            o.load = load.c();
            Progress state{progress, nullptr};
            if (!progress.is_none()) {
              o.progress = &Progress::call;
              o.progress_user = &state;
            }
            mv_result_list* raw = nullptr;
            mv_status status = MV_OK;
            std::string message;
            {
              py::gil_scoped_release release;
              status = mv_model_run_many(mdl->get(), path_ptrs.data(), image_ptrs.data(),
                                         inputs.size(), &o, &raw);
              if (status != MV_OK) message = mv_last_error();
            }
            if (state.error) throw std::move(*state.error);
            if (status != MV_OK) throw medvision::Exception(status, message);
            std::unique_ptr<mv_result_list, void (*)(mv_result_list*)> list(raw,
                                                                            mv_result_list_free);
            py::list out;
            for (size_t i = 0; i < mv_result_list_count(raw); ++i) {
              const mv_status s = mv_result_list_status(raw, i);
              if (s == MV_OK) {
                out.append(py::cast(
                    ResultHolder(medvision::Result(mv_result_list_take(raw, i)), "Result")));
              } else {
                out.append(status_error(s, mv_result_list_message(raw, i)));
              }
            }
            return out;
          },
          py::arg("inputs"), py::kw_only(),
          py::arg("batch_size") = medvision::PipelineOptions().batch_size,
          py::arg("decode_threads") = medvision::PipelineOptions().decode_threads,
          py::arg("queue_batches") = medvision::PipelineOptions().queue_batches,
          py::arg("progress") = py::none(),
          // The load defaults are the C library's (mv_image_load_options_init()).
          py::arg("frame") = medvision::LoadOptions().frame(),
          py::arg("apply_voi") = medvision::LoadOptions().apply_voi(),
          py::arg("max_values") = medvision::LoadOptions().max_values(),
          py::arg("series_uid") = medvision::LoadOptions().series_uid(),
          py::arg("pixel_spacing") = py::none(),
          "The streaming pipeline (mv_model_run_many; GIL released, progress(done, total) -> bool "
          "called with the GIL taken back): one Result or one MedvisionError instance per input "
          "(a str path or an Image), in input order. Paths are decoded as Image.load() with the "
          "same frame, apply_voi, max_values, series_uid and pixel_spacing would (Images are "
          "used as they are).")
      .def("__repr__", [](const ModelHolder& self) {
        if (self.closed()) return std::string("<medvision.Model (closed)>");
        auto mdl = self.get();
        return "<medvision.Model " + mdl->name() + " " + mdl->version() + " on " + mdl->device() +
               ">";
      });
}

}  // namespace mvpy
