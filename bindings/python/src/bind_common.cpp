// Versions, status codes, the exception hierarchy and the log callback.
#include <array>
#include <cerrno>
#include <cstring>

#include "bindings.hpp"

namespace mvpy {
namespace {

// One Python class per mv_status, created once and kept for the life of the process (the
// references are deliberately never released: a translator may run during interpreter shutdown).
constexpr size_t kStatusCount = MV_ERR_UNKNOWN + 1;
std::array<PyObject*, kStatusCount> g_status_class{};
PyObject* g_base_error = nullptr;
PyObject* g_file_not_found = nullptr;

PyObject* new_exception(py::module_& m, const char* name, const char* doc,
                        std::initializer_list<PyObject*> bases) {
  const std::string qualified = std::string("medvision.") + name;
  py::tuple b(bases.size());
  size_t i = 0;
  for (PyObject* base : bases) b[i++] = py::reinterpret_borrow<py::object>(base);
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, b.ptr(), nullptr);
  if (cls == nullptr) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(cls));
  return cls;  // the new reference is kept forever
}

// MV_ERR_IO is a FileNotFoundError when the file or package does not exist. The library's
// messages say so ("no such file or folder", strerror(ENOENT) = "No such file or directory",
// "not found" for model packages and the files in them); other I/O failures stay MedvisionIOError.
bool is_not_found(const char* message) {
  return std::strstr(message, "o such file") != nullptr ||
         std::strstr(message, std::strerror(ENOENT)) != nullptr ||
         std::strstr(message, "not found") != nullptr;
}

void log_trampoline(mv_log_level level, const char* message, void* user) {
  // Called from whatever thread is inside medvision, usually with the GIL released.
  if (!Py_IsInitialized()) return;
  py::gil_scoped_acquire gil;
  try {
    py::handle(static_cast<PyObject*>(user))(static_cast<int>(level), message);
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("medvision log handler");
  }
}

// Sets the Python error for a failed call: the class of `status`, the message of
// mv_last_error(), and `status` / `status_name` on the instance.
void set_status_error(mv_status status, const char* message) {
  const auto idx = static_cast<size_t>(status);
  PyObject* cls = idx < kStatusCount && g_status_class[idx] ? g_status_class[idx] : g_base_error;
  if (status == MV_ERR_IO && is_not_found(message)) cls = g_file_not_found;
  PyObject* exc = PyObject_CallFunction(cls, "s", message);
  if (exc == nullptr) return;  // the error of the failed construction stands
  PyObject* code = PyLong_FromLong(static_cast<long>(status));
  PyObject* name = PyUnicode_FromString(mv_status_name(status));
  if (code != nullptr && name != nullptr) {
    PyObject_SetAttrString(exc, "status", code);
    PyObject_SetAttrString(exc, "status_name", name);
  }
  Py_XDECREF(code);
  Py_XDECREF(name);
  PyErr_SetObject(cls, exc);
  Py_DECREF(exc);
}

}  // namespace

void bind_common(py::module_& m) {
  m.def("version", &medvision::version, "The linked libmedvision's version string.");
  m.def("version_number", &mv_version_number);
  m.def("abi_version", &mv_abi_version);
  m.attr("HEADER_VERSION") = MV_VERSION_STRING;
  m.def(
      "status_name", [](int s) { return std::string(mv_status_name(static_cast<mv_status>(s))); },
      py::arg("status"), "The name of a status code, e.g. 'MV_ERR_IO'.");

  // The hierarchy of STYLE.md B3. Each class also carries its status as a class attribute.
  PyObject* runtime = PyExc_RuntimeError;
  g_base_error = new_exception(
      m, "MedvisionError",
      "A medvision call failed. `status` (int, an mv_status) and `status_name` say how; the "
      "message is mv_last_error() and names the file or tag involved.",
      {runtime});
  auto add = [&](mv_status s, const char* name, const char* doc,
                 std::initializer_list<PyObject*> bases) {
    PyObject* cls = new_exception(m, name, doc, bases);
    g_status_class[static_cast<size_t>(s)] = cls;
    return cls;
  };
  add(MV_ERR_INVALID_ARGUMENT, "InvalidArgumentError", "MV_ERR_INVALID_ARGUMENT",
      {g_base_error, PyExc_ValueError});
  add(MV_ERR_OUT_OF_MEMORY, "MedvisionOutOfMemoryError",
      "MV_ERR_OUT_OF_MEMORY (an allocation failed or a size limit was exceeded)",
      {g_base_error, PyExc_MemoryError});
  PyObject* io = add(MV_ERR_IO, "MedvisionIOError", "MV_ERR_IO (a file could not be read)",
                     {g_base_error, PyExc_OSError});
  g_file_not_found = new_exception(m, "MedvisionFileNotFoundError",
                                   "MV_ERR_IO for a file or model package that does not exist",
                                   {io, PyExc_FileNotFoundError});
  PyObject* format = new_exception(m, "FileFormatError",
                                   "The content could not be decoded (unsupported or corrupt).",
                                   {g_base_error, PyExc_ValueError});
  add(MV_ERR_UNSUPPORTED_FORMAT, "UnsupportedFormatError", "MV_ERR_UNSUPPORTED_FORMAT", {format});
  add(MV_ERR_CORRUPT_DATA, "CorruptDataError", "MV_ERR_CORRUPT_DATA (truncated or malformed)",
      {format});
  add(MV_ERR_MODEL, "ModelError", "MV_ERR_MODEL (a model package or the model failed)",
      {g_base_error});
  add(MV_ERR_DEVICE, "DeviceError", "MV_ERR_DEVICE (the compute device is missing or failed)",
      {g_base_error});
  add(MV_ERR_SHAPE_MISMATCH, "ShapeMismatchError", "MV_ERR_SHAPE_MISMATCH",
      {g_base_error, PyExc_ValueError});
  add(MV_ERR_ABI_MISMATCH, "AbiMismatchError", "MV_ERR_ABI_MISMATCH", {g_base_error});
  add(MV_ERR_CANCELLED, "CancelledError", "MV_ERR_CANCELLED", {g_base_error});
  add(MV_ERR_NOT_IMPLEMENTED, "MedvisionNotImplementedError", "MV_ERR_NOT_IMPLEMENTED",
      {g_base_error, PyExc_NotImplementedError});
  add(MV_ERR_INTERNAL, "InternalError", "MV_ERR_INTERNAL (a bug in medvision)", {g_base_error});
  add(MV_ERR_UNKNOWN, "UnknownError", "MV_ERR_UNKNOWN", {g_base_error});
  for (size_t s = 1; s < kStatusCount; ++s) {
    py::handle(g_status_class[s]).attr("status") = static_cast<int>(s);
  }
  py::handle(g_base_error).attr("status") = static_cast<int>(MV_ERR_UNKNOWN);
  py::handle(format).attr("status") = static_cast<int>(MV_ERR_CORRUPT_DATA);
  py::handle(g_file_not_found).attr("status") = static_cast<int>(MV_ERR_IO);

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const medvision::Exception& e) {
      set_status_error(e.status(), e.what());
    }
  });

  m.def(
      "set_log_handler",
      [](py::object handler, int min_level) {
        if (handler.is_none()) {
          mv_set_log_callback(nullptr, nullptr, MV_LOG_OFF);
          return;
        }
        // The handler is kept for the life of the process: a thread may still be inside the old
        // callback when a new one is installed (see mv_set_log_callback()).
        PyObject* user = handler.release().ptr();
        mv_set_log_callback(&log_trampoline, user, static_cast<mv_log_level>(min_level));
      },
      py::arg("handler"), py::arg("min_level") = static_cast<int>(MV_LOG_WARN),
      "Installs handler(level: int, message: str) as the library's log sink (None removes it).");
}

// The exception instance for `status` and `message` (as a failed call would raise it), for the
// per-input errors of Model.run_many.
py::object status_error(mv_status status, const char* message) {
  const auto idx = static_cast<size_t>(status);
  PyObject* cls = idx < kStatusCount && g_status_class[idx] ? g_status_class[idx] : g_base_error;
  if (status == MV_ERR_IO && is_not_found(message)) cls = g_file_not_found;
  py::object exc = py::handle(cls)(message);
  exc.attr("status") = static_cast<int>(status);
  exc.attr("status_name") = mv_status_name(status);
  return exc;
}

}  // namespace mvpy
