// Shared pieces of the medvision._core extension (STYLE.md B3): one bind_<module>.cpp per
// library module, all over the public C++ wrapper medvision.hpp (never src/ internals).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "medvision/medvision.hpp"

namespace py = pybind11;

namespace mvpy {

void bind_common(py::module_& m);
void bind_io(py::module_& m);
void bind_model(py::module_& m);
void bind_explain(py::module_& m);
void bind_calibrate(py::module_& m);

// The Python objects hold their C++ handle through a shared_ptr: numpy views keep their own
// reference (in a capsule), so an array stays valid after close() or after the Python object is
// collected, and a model stays alive while another thread is still running it.
template <class T>
struct Holder {
  std::shared_ptr<T> ptr;
  const char* what;

  explicit Holder(T&& value, const char* name)
      : ptr(std::make_shared<T>(std::move(value))), what(name) {}
  // The handle, or a ValueError when closed (a use-after-close is a caller mistake, not a
  // library failure).
  std::shared_ptr<T> get() const {
    if (!ptr) throw py::value_error(std::string("this medvision ") + what + " is closed");
    return ptr;
  }
  void close() { ptr.reset(); }
  bool closed() const { return !ptr; }
};

using ImageHolder = Holder<medvision::Image>;
using ModelHolder = Holder<medvision::Model>;
using HeatmapHolder = Holder<medvision::Heatmap>;
using ResultHolder = Holder<medvision::Result>;

// A capsule that owns one reference to `owner`: the base object of a zero-copy numpy view.
template <class T>
py::capsule owner_capsule(const std::shared_ptr<T>& owner) {
  auto* ref = new std::shared_ptr<T>(owner);
  return py::capsule(ref, [](void* p) { delete static_cast<std::shared_ptr<T>*>(p); });
}

// A read-only numpy view of `data` (C-contiguous float32 of `shape`) whose base is a capsule
// owning `owner`: no copy, and the buffer lives as long as any view of it.
template <class T>
py::array readonly_float_view(const std::shared_ptr<T>& owner, const float* data,
                              std::vector<py::ssize_t> shape) {
  py::array a(py::dtype::of<float>(), std::move(shape), {}, data, owner_capsule(owner));
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

// Adds __enter__/__exit__/close/closed to a class whose instances hold a Holder.
template <class Cls>
void add_context_manager(Cls& cls) {
  using H = typename Cls::type;
  cls.def("close", &H::close, "Releases the handle now; later use raises ValueError.")
      .def_property_readonly("closed", &H::closed)
      .def("__enter__", [](py::object self) { return self; })
      .def(
          "__exit__", [](H& self, py::args) { self.close(); }, "Closes the handle.");
}

// A Python progress callable for segmentation and segmentation heat maps, called (with the GIL
// taken back) on the thread that is segmenting. An exception in it cancels the run and is re-raised
// instead of CancelledError.
struct Progress {
  py::object fn;
  std::unique_ptr<py::error_already_set> error;

  static int32_t call(uint64_t done, uint64_t total, void* user) {
    auto* self = static_cast<Progress*>(user);
    py::gil_scoped_acquire gil;
    try {
      py::object go_on = self->fn(done, total);
      return go_on.is_none() || go_on.cast<bool>() ? 1 : 0;
    } catch (py::error_already_set& e) {
      self->error = std::make_unique<py::error_already_set>(std::move(e));
      return 0;
    }
  }
};

// The exception instance a call failing with `status` would raise (bind_common.cpp).
py::object status_error(mv_status status, const char* message);

// Load options from the keyword arguments of Image.load() and Model.run_many() (bind_io.cpp);
// pixel_spacing None leaves the file's spacing (mv_image_load_options_init()'s value).
medvision::LoadOptions load_options(int frame, int apply_voi, uint64_t max_values,
                                    const std::string& series_uid,
                                    const py::object& pixel_spacing = py::none());

}  // namespace mvpy
