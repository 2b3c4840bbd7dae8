// C API of regression results (mv_result_value / mv_result_unit).

#include <cstddef>
#include <limits>

#include "capi/handles.hpp"

namespace {

const medvision::model::RegressionValue* value_of(const mv_result* r, size_t i) {
  if (r == nullptr || r->task != MV_TASK_REGRESSION || i >= r->result.regression.values.size()) {
    return nullptr;
  }
  return &r->result.regression.values[i];
}

}  // namespace

extern "C" {

double mv_result_value(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* v = value_of(r, i);
  return v ? v->value : std::numeric_limits<double>::quiet_NaN();
}

const char* mv_result_unit(const mv_result* r, size_t i) MV_NOEXCEPT {
  const auto* v = value_of(r, i);
  return v ? v->unit.c_str() : nullptr;
}

}  // extern "C"
