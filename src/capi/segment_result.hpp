#pragma once
// Segmentation results behind the C API (capi_segment.cpp), shared with capi_model.cpp.

#include <string>
#include <vector>

#include "capi/handles.hpp"

namespace medvision::capi {

// Wraps a Segmentation in a new mv_result (mask and probability maps become image handles).
mv_result* make_segmentation_result(const model::Model& model, model::Segmentation&& s);

// The warnings of either kind of result.
const std::vector<std::string>& result_warnings(const mv_result& r);

}  // namespace medvision::capi
