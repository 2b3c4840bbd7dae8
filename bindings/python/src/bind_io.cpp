// Images: decoding (GIL released), numpy views without copies, geometry and safe metadata.
#include "bindings.hpp"

namespace mvpy {
namespace {

// The non-identifying keys mv_image_meta() knows, from the library itself.
std::vector<std::string> meta_keys() {
  std::vector<std::string> keys;
  for (size_t i = 0; const char* k = mv_image_meta_key(i); ++i) keys.emplace_back(k);
  return keys;
}

const char* voi_name(mv_voi_function f) {
  switch (f) {
    case MV_VOI_LINEAR:
      return "linear";
    case MV_VOI_LINEAR_EXACT:
      return "linear_exact";
    case MV_VOI_SIGMOID:
      return "sigmoid";
    case MV_VOI_TABLE:
      return "table";
  }
  return "unknown";
}

// numpy dtype -> mv_dtype; false when the library does not read the type directly.
bool to_mv_dtype(const py::dtype& dt, mv_dtype* out) {
  if (dt.byteorder() == '>') return false;  // the library reads native (little-endian) values
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'f' && size == 4)
    *out = MV_DTYPE_FLOAT32;
  else if (kind == 'f' && size == 8)
    *out = MV_DTYPE_FLOAT64;
  else if (kind == 'u' && size == 1)
    *out = MV_DTYPE_UINT8;
  else if (kind == 'i' && size == 1)
    *out = MV_DTYPE_INT8;
  else if (kind == 'u' && size == 2)
    *out = MV_DTYPE_UINT16;
  else if (kind == 'i' && size == 2)
    *out = MV_DTYPE_INT16;
  else if (kind == 'u' && size == 4)
    *out = MV_DTYPE_UINT32;
  else if (kind == 'i' && size == 4)
    *out = MV_DTYPE_INT32;
  else
    return false;
  return true;
}

ImageHolder from_pixels(py::array pixels, py::object spacing, py::object origin,
                        py::object direction, int photometric) {
  mv_dtype dt{};
  if (!to_mv_dtype(pixels.dtype(), &dt)) {
    // bool, float16, (u)int64, big-endian...: one conversion here, then the library's own copy.
    const bool wide = pixels.dtype().kind() == 'i' || pixels.dtype().kind() == 'u';
    pixels = wide ? py::array(py::array_t<double, py::array::forcecast>::ensure(pixels))
                  : py::array(py::array_t<float, py::array::forcecast>::ensure(pixels));
    if (!pixels) throw py::error_already_set();
    to_mv_dtype(pixels.dtype(), &dt);
  }
  if (pixels.ndim() < 2 || pixels.ndim() > 4) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "from_pixels: the array must be [H, W], [H, W, C] or [C, D, H, W], "
                               "not " +
                                   std::to_string(pixels.ndim()) + "-D");
  }
  mv_tensor_view view{};
  view.struct_size = sizeof view;
  view.dtype = static_cast<uint32_t>(dt);
  view.data = pixels.data();
  view.ndim = pixels.ndim();
  for (py::ssize_t i = 0; i < pixels.ndim(); ++i) {
    view.shape[i] = pixels.shape(i);
    view.strides[i] = pixels.strides(i);  // bytes, any sign: the library follows them
  }
  mv_image_geometry g;
  medvision::check(mv_image_geometry_init(&g, sizeof g));
  auto fill = [](py::object src, double* dst, size_t n, const char* name) {
    if (src.is_none()) return;
    auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(src);
    if (!a || static_cast<size_t>(a.size()) != n) {
      throw medvision::Exception(
          MV_ERR_INVALID_ARGUMENT,
          std::string("from_pixels: ") + name + " needs " + std::to_string(n) + " numbers");
    }
    for (size_t i = 0; i < n; ++i) dst[i] = a.data()[i];
  };
  fill(spacing, g.spacing, 3, "spacing");
  fill(origin, g.origin, 3, "origin");
  fill(direction, g.direction, 9, "direction");
  g.photometric = static_cast<uint32_t>(photometric);
  // Nothing given: no geometry, so the spacing is unknown (Image.spacing_source == "") and
  // segmentation sizes are pixel counts rather than areas in a made-up 1 mm.
  const bool none = spacing.is_none() && origin.is_none() && direction.is_none() &&
                    photometric == static_cast<int>(MV_PHOTOMETRIC_UNKNOWN);
  medvision::Image image;
  {
    py::gil_scoped_release release;
    image = medvision::Image::from_pixels(view, none ? nullptr : &g);
  }
  return ImageHolder(std::move(image), "Image");
}

// (column, row) mm from one or two numbers.
std::array<double, 2> spacing_pair(const py::object& pixel_spacing) {
  const auto v = pixel_spacing.cast<std::vector<double>>();
  if (v.size() != 1 && v.size() != 2) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "pixel_spacing needs one or two numbers (column, row mm)");
  }
  return {{v[0], v.back()}};
}

}  // namespace

// None leaves a field at mv_image_load_options_init()'s value.
medvision::LoadOptions load_options(int frame, int apply_voi, uint64_t max_values,
                                    const std::string& series_uid,
                                    const py::object& pixel_spacing) {
  medvision::LoadOptions o;
  if (!pixel_spacing.is_none()) {
    const auto v = spacing_pair(pixel_spacing);
    o.set_pixel_spacing(v[0], v[1]);
  }
  o.set_frame(frame).set_apply_voi(apply_voi).set_max_values(max_values).set_series_uid(series_uid);
  return o;
}

void bind_io(py::module_& m) {
  // The C struct behind medvision::LoadOptions, one property per field. A new object holds the
  // library's defaults (mv_image_load_options_init()), which Image.load* and
  // medvision.load_image() take as their own.
  using LO = medvision::LoadOptions;
  py::class_<LO>(m, "LoadOptions",
                 "Options of load_image(); a new object holds the library's defaults.")
      .def(py::init<>())
      .def_property("frame", &LO::frame, &LO::set_frame)
      .def_property("apply_voi", &LO::apply_voi, &LO::set_apply_voi)
      .def_property("max_values", &LO::max_values, &LO::set_max_values)
      .def_property("series_uid", &LO::series_uid, &LO::set_series_uid)
      .def_property(
          "pixel_spacing",
          [](const LO& o) { return py::make_tuple(o.pixel_spacing()[0], o.pixel_spacing()[1]); },
          [](LO& o, const py::object& v) {
            const auto p = spacing_pair(v);
            o.set_pixel_spacing(p[0], p[1]);
          },
          "(column, row) mm; (0, 0): the file's.");

  const LO load_defaults;
  py::class_<medvision::Window>(m, "Window", "A window preset (VOI) in physical units.")
      .def_readonly("center", &medvision::Window::center)
      .def_readonly("width", &medvision::Window::width)
      .def_property_readonly("function",
                             [](const medvision::Window& w) { return voi_name(w.function); })
      .def("__repr__", [](const medvision::Window& w) {
        return "Window(center=" + std::to_string(w.center) + ", width=" + std::to_string(w.width) +
               ", function='" + voi_name(w.function) + "')";
      });

  py::class_<ImageHolder> cls(m, "Image", R"doc(
A decoded image or volume: float32 pixels in physical units, planar [channels, depth, height,
width], with LPS geometry in millimetres. Immutable. `array` is a read-only numpy view of the
library's buffer (no copy); the buffer lives as long as any view of it, even after close().
)doc");
  add_context_manager(cls);
  cls.def_static(
         "load",
         [](const std::string& path, int frame, int apply_voi, uint64_t max_values,
            const std::string& series_uid, const py::object& pixel_spacing) {
           const auto o = load_options(frame, apply_voi, max_values, series_uid, pixel_spacing);
           medvision::Image image;
           {
             py::gil_scoped_release release;
             image = medvision::Image::load(path, o);
           }
           return ImageHolder(std::move(image), "Image");
         },
         py::arg("path"), py::kw_only(), py::arg("frame") = load_defaults.frame(),
         py::arg("apply_voi") = load_defaults.apply_voi(),
         py::arg("max_values") = load_defaults.max_values(),
         py::arg("series_uid") = load_defaults.series_uid(), py::arg("pixel_spacing") = py::none(),
         "Decodes a file, or a folder holding one DICOM series (GIL released). pixel_spacing: "
         "(column, row) mm supplied by the user, replacing the file's.")
      .def_static(
          "load_memory",
          [](py::buffer data, int frame, int apply_voi, uint64_t max_values,
             const py::object& pixel_spacing) {
            const py::buffer_info info = data.request();  // pins the buffer while we read it
            if (info.ndim > 1 && info.strides.back() != info.itemsize) {
              throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                         "load_memory: the buffer must be contiguous bytes");
            }
            const auto o =
                load_options(frame, apply_voi, max_values, LO().series_uid(), pixel_spacing);
            medvision::Image image;
            {
              py::gil_scoped_release release;
              image = medvision::Image::load_memory(
                  info.ptr, static_cast<size_t>(info.size * info.itemsize), o);
            }
            return ImageHolder(std::move(image), "Image");
          },
          py::arg("data"), py::kw_only(), py::arg("frame") = load_defaults.frame(),
          py::arg("apply_voi") = load_defaults.apply_voi(),
          py::arg("max_values") = load_defaults.max_values(), py::arg("pixel_spacing") = py::none(),
          "Decodes encoded bytes (any single-file format; GIL released).")
      .def_static(
          "load_series",
          [](const std::vector<std::string>& paths, int frame, int apply_voi, uint64_t max_values,
             const std::string& series_uid) {
            const auto o = load_options(frame, apply_voi, max_values, series_uid);
            medvision::Image image;
            {
              py::gil_scoped_release release;
              image = medvision::Image::load_series(paths, o);
            }
            return ImageHolder(std::move(image), "Image");
          },
          py::arg("paths"), py::kw_only(), py::arg("frame") = load_defaults.frame(),
          py::arg("apply_voi") = load_defaults.apply_voi(),
          py::arg("max_values") = load_defaults.max_values(),
          py::arg("series_uid") = load_defaults.series_uid(),
          "Reads DICOM files as one volume sorted along the slice normal (GIL released).")
      .def_static("from_pixels", &from_pixels, py::arg("pixels"), py::kw_only(),
                  py::arg("spacing") = py::none(), py::arg("origin") = py::none(),
                  py::arg("direction") = py::none(),
                  py::arg("photometric") = static_cast<int>(MV_PHOTOMETRIC_UNKNOWN),
                  "Builds an image from a numpy array [H, W], [H, W, C] or [C, D, H, W]; the "
                  "library copies it into float32 (GIL released during the copy).")
      .def_static(
          "stack",
          [](const std::vector<const ImageHolder*>& images) {
            std::vector<std::shared_ptr<medvision::Image>> keep;
            std::vector<const medvision::Image*> ptrs;
            for (const ImageHolder* h : images) {
              if (h == nullptr)
                throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, "an image is None");
              keep.push_back(h->get());
              ptrs.push_back(keep.back().get());
            }
            medvision::Image image;
            {
              py::gil_scoped_release release;
              image = medvision::Image::stack(ptrs);
            }
            return ImageHolder(std::move(image), "Image");
          },
          py::arg("images"),
          "Stacks images on one grid into the channels of one image (e.g. FLAIR + T1).")
      .def_static(
          "load_label_map",
          [](const std::string& path, const ImageHolder& image,
             const std::vector<std::string>& labels, const std::vector<int32_t>& values,
             const py::object& overlaps, const py::object& fractional_threshold) {
            medvision::LabelMapOptions o;  // the library's defaults where None
            o.labels = labels;
            o.values = values;
            if (!overlaps.is_none()) {  // the library's names (mv_label_overlap_parse)
              o.overlap = medvision::parse<mv_label_overlap>(overlaps.cast<std::string>());
            }
            if (!fractional_threshold.is_none()) {
              o.fractional_threshold = fractional_threshold.cast<double>();
            }
            const auto keep = image.get();
            medvision::Image map;
            {
              py::gil_scoped_release release;
              map = medvision::load_label_map(path, *keep, o);
            }
            return ImageHolder(std::move(map), "Image");
          },
          py::arg("path"), py::arg("image"), py::kw_only(),
          py::arg("labels") = std::vector<std::string>(),
          py::arg("values") = std::vector<int32_t>(), py::arg("overlaps") = py::none(),
          py::arg("fractional_threshold") = py::none(),
          "A reference label map for `image` (mv_label_map_load(); GIL released): a DICOM SEG "
          "placed on its grid, segment labels[i] -> values[i] (default i + 1), or any label map "
          "medvision loads on that grid. overlaps: 'error', 'lowest' or 'highest' (None: the "
          "library's default, 'error'); fractional_threshold None: the library's (0.5).")
      .def_property_readonly(
          "array",
          [](const ImageHolder& self) {
            auto img = self.get();
            const auto s = img->shape();
            return readonly_float_view(img, img->data(), {s[0], s[1], s[2], s[3]});
          },
          "Read-only float32 view [C, D, H, W] of the library's buffer (no copy).")
      .def(
          "__array__",
          [](const ImageHolder& self, py::object dtype, py::object /*copy*/) {
            auto img = self.get();
            const auto s = img->shape();
            py::array a = readonly_float_view(img, img->data(), {s[0], s[1], s[2], s[3]});
            if (!dtype.is_none()) return py::array(a.attr("astype")(dtype));
            return a;
          },
          py::arg("dtype") = py::none(), py::arg("copy") = py::none())
      .def_property_readonly("shape",
                             [](const ImageHolder& self) {
                               const auto s = self.get()->shape();
                               return py::make_tuple(s[0], s[1], s[2], s[3]);
                             })
      .def_property_readonly("channels", [](const ImageHolder& s) { return s.get()->channels(); })
      .def_property_readonly("depth", [](const ImageHolder& s) { return s.get()->depth(); })
      .def_property_readonly("height", [](const ImageHolder& s) { return s.get()->height(); })
      .def_property_readonly("width", [](const ImageHolder& s) { return s.get()->width(); })
      .def_property_readonly(
          "spacing",
          [](const ImageHolder& s) {
            const auto v = s.get()->spacing();
            return py::make_tuple(v[0], v[1], v[2]);
          },
          "(column, row, slice) spacing in mm.")
      .def_property_readonly(
          "spacing_source", [](const ImageHolder& s) { return s.get()->spacing_source(); },
          "Where the in-plane spacing came from (PixelSpacing, ImagerPixelSpacing, "
          "NominalScannedPixelSpacing, NIfTI, PNG pHYs, caller, user); \"\" when unknown: "
          "spacing is then a placeholder and sizes are pixel counts.")
      .def_property_readonly(
          "origin",
          [](const ImageHolder& s) {
            const auto v = s.get()->origin();
            return py::make_tuple(v[0], v[1], v[2]);
          },
          "LPS position of the first voxel's centre, mm.")
      .def_property_readonly(
          "direction",
          [](const ImageHolder& s) {
            const auto v = s.get()->direction();
            py::array_t<double> a({3, 3});
            std::copy(v.begin(), v.end(), a.mutable_data());
            return a;
          },
          "3x3 direction cosines (column c is the LPS direction of index axis c); a copy.")
      .def_property_readonly(
          "format",
          [](const ImageHolder& s) { return std::string(medvision::to_string(s.get()->format())); })
      .def_property_readonly("photometric",
                             [](const ImageHolder& s) {
                               return std::string(medvision::to_string(s.get()->photometric()));
                             })
      .def_property_readonly("stored_dtype",
                             [](const ImageHolder& s) {
                               return std::string(medvision::to_string(s.get()->stored_dtype()));
                             })
      .def_property_readonly("bits_stored",
                             [](const ImageHolder& s) { return s.get()->bits_stored(); })
      .def_property_readonly("windows", [](const ImageHolder& s) { return s.get()->windows(); })
      .def(
          "meta", [](const ImageHolder& s, const std::string& key) { return s.get()->meta(key); },
          py::arg("key"), "A non-identifying metadata value by DICOM keyword, or None.")
      .def_property_readonly(
          "metadata",
          [](const ImageHolder& s) {
            py::dict d;
            auto img = s.get();
            for (const std::string& key : meta_keys()) {
              if (auto v = img->meta(key)) d[key.c_str()] = *v;
            }
            return d;
          },
          "Every non-identifying key present (patient data is never read, so never returned).")
      .def_property_readonly("warnings", [](const ImageHolder& s) { return s.get()->warnings(); })
      .def("__repr__", [](const ImageHolder& self) {
        if (self.closed()) return std::string("<medvision.Image (closed)>");
        const auto img = self.get();
        const auto s = img->shape();
        const auto sp = img->spacing();
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "<medvision.Image %s %s shape=(%lld, %lld, %lld, %lld) spacing=(%g, %g, %g)>",
                      medvision::to_string(img->format()), medvision::to_string(img->photometric()),
                      static_cast<long long>(s[0]), static_cast<long long>(s[1]),
                      static_cast<long long>(s[2]), static_cast<long long>(s[3]), sp[0], sp[1],
                      sp[2]);
        return std::string(buf);
      });
  m.attr("META_KEYS") = py::cast(meta_keys());
}

}  // namespace mvpy
