// medvision._core: the pybind11 extension over the public C++ wrapper (STYLE.md B3).
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "medvision native core (bound through medvision.hpp; use the medvision package)";
  mvpy::bind_common(m);
  mvpy::bind_io(m);
  mvpy::bind_model(m);
  mvpy::bind_explain(m);
  mvpy::bind_calibrate(m);
}
