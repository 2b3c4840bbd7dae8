// Explanations: heat maps as read-only numpy views of the library's buffer (no copy).
#include "bindings.hpp"

namespace mvpy {

void bind_explain(py::module_& m) {
  py::class_<HeatmapHolder> cls(m, "Heatmap",
                                "A class activation map on the original image's grid.");
  add_context_manager(cls);
  cls.def_property_readonly(
         "array",
         [](const HeatmapHolder& self) {
           auto h = self.get();
           const auto s = h->shape();
           const int64_t depth = h->depth();
           if (depth > 1) return readonly_float_view(h, h->data(), {depth, s[0], s[1]});
           return readonly_float_view(h, h->data(), {s[0], s[1]});
         },
         "Read-only float32 view [height, width] ([depth, height, width] for 3D segmentation "
         "maps) in [0, 1] of the library's buffer (no copy).")
      .def_property_readonly("label", [](const HeatmapHolder& s) { return s.get()->label(); })
      .def_property_readonly("probability",
                             [](const HeatmapHolder& s) { return s.get()->probability(); })
      .def_property_readonly("shape",
                             [](const HeatmapHolder& s) {
                               const auto h = s.get();
                               const auto v = h->shape();
                               const int64_t depth = h->depth();
                               return depth > 1 ? py::make_tuple(depth, v[0], v[1])
                                                : py::make_tuple(v[0], v[1]);
                             })
      .def_property_readonly("slice", [](const HeatmapHolder& s) { return s.get()->slice(); })
      .def_property_readonly("region_voxels",
                             [](const HeatmapHolder& s) { return s.get()->region_voxels(); })
      .def(
          "write_nifti",
          [](const HeatmapHolder& self, const std::string& path) {
            auto h = self.get();
            py::gil_scoped_release release;
            h->image().write_nifti(path);
          },
          py::arg("path"),
          "Writes the map as NIfTI (.nii/.nii.gz) on the source image's grid and geometry.")
      .def(
          "overlay",
          [](const HeatmapHolder& self, const ImageHolder& image, float alpha) {
            auto h = self.get();
            auto img = image.get();
            auto rgb = std::make_shared<std::vector<uint8_t>>();
            {
              py::gil_scoped_release release;
              *rgb = h->overlay(*img, alpha);
            }
            const auto s = h->shape();
            // The vector moves into the capsule: the array owns it, nothing is copied.
            return py::array(py::dtype::of<uint8_t>(), {s[0], s[1], py::ssize_t{3}}, {},
                             rgb->data(), owner_capsule(rgb));
          },
          py::arg("image"), py::arg("alpha") = 0.5f,
          "Interleaved RGB uint8 [height, width, 3]: the map over `image`.")
      .def(
          "write_png",
          [](const HeatmapHolder& self, const std::string& path, const ImageHolder* image,
             float alpha) {
            auto h = self.get();
            std::shared_ptr<medvision::Image> img = image ? image->get() : nullptr;
            py::gil_scoped_release release;
            h->write_png(path, img.get(), alpha);
          },
          py::arg("path"), py::arg("image") = nullptr, py::arg("alpha") = 0.5f,
          "Writes the overlay over `image` (or the coloured map alone) as PNG.")
      .def(
          "write_dicom_sc",
          [](const HeatmapHolder& self, const std::string& path, const ImageHolder& source,
             float alpha) {
            auto h = self.get();
            auto src = source.get();
            py::gil_scoped_release release;
            h->write_dicom_sc(path, *src, alpha);
          },
          py::arg("path"), py::arg("source"), py::arg("alpha") = 0.5f,
          "Writes the overlay as a DICOM Secondary Capture in the study of `source` (an image "
          "read from DICOM); 3D maps: the slice `slice`, referencing its instance.");

  // The C struct behind medvision::ExplainOptions, one property per field; a new object holds
  // the library's defaults (mv_explain_options_init()), which explain() takes as its own.
  using XO = medvision::ExplainOptions;
  py::class_<XO>(m, "ExplainOptions",
                 "Options of Model.explain(); a new object holds the library's defaults.")
      .def(py::init<>())
      .def_property(
          "method", [](const XO& o) { return medvision::to_string(o.method()); },
          [](XO& o, const std::string& v) { o.set_method(medvision::parse<mv_cam_method>(v)); })
      .def_property("label", &XO::label, &XO::set_label);
  const XO explain_defaults;

  m.def(
      "explain",
      [](const ModelHolder& model, const ImageHolder& image, const std::string& method, int label,
         py::object progress) {
        auto mdl = model.get();
        auto img = image.get();
        XO o;
        o.set_method(medvision::parse<mv_cam_method>(method)).set_label(label);
        Progress state{progress, nullptr};
        if (!progress.is_none()) o.set_progress(&Progress::call, &state);
        medvision::Heatmap h;
        std::exception_ptr failure;
        {
          py::gil_scoped_release release;
          try {
            h = medvision::explain(*mdl, *img, o);
          } catch (...) {
            failure = std::current_exception();
          }
        }
        if (state.error) throw std::move(*state.error);
        if (failure) std::rethrow_exception(failure);
        return HeatmapHolder(std::move(h), "Heatmap");
      },
      py::arg("model"), py::arg("image"),
      py::arg("method") = std::string(medvision::to_string(explain_defaults.method())),
      py::arg("label") = explain_defaults.label(), py::arg("progress") = py::none(),
      "Heat map of where `model` looked for label index `label` (-1: the most probable label; "
      "segmentation: the only foreground class); GIL released.");
}

}  // namespace mvpy
