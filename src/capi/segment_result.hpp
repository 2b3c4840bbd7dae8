#pragma once
// Wrapping model::Result in mv_result handles (capi_model.cpp), shared with capi_segment.cpp.

#include "capi/handles.hpp"

namespace medvision::capi {

// Wraps a Result in a new mv_result (the mask and probability maps become borrowed handles).
mv_result* wrap_result(model::Result&& result);

}  // namespace medvision::capi
