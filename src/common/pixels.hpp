#pragma once
// Images from a caller's strided pixel buffers (mv_image_from_pixels()).

#include <memory>
#include <string>

#include "common/image.hpp"
#include "medvision/medvision.h"

namespace medvision {

// Copies `pixels` into a new float32 Image: [H, W] grey, [H, W, C] interleaved (C = 1, 3 or 4;
// alpha is dropped) or [C, D, H, W] planar, following the view's byte strides (any, unaligned
// included), with `geometry`'s spacing, origin, direction and photometric (unknown: RGB for 3
// channels, MONOCHROME2 for one). `caller_geometry`: the caller gave the geometry (the spacing's
// source becomes "caller"). The view's dtype must be known and its data non-NULL. Throws
// MV_ERR_INVALID_ARGUMENT "<what>: ..." for another layout, a non-positive extent or spacing, or
// a NaN direction; MV_ERR_OUT_OF_MEMORY past kDefaultMaxValues.
std::unique_ptr<Image> image_from_pixels(const mv_tensor_view& pixels,
                                         const mv_image_geometry& geometry, bool caller_geometry,
                                         const std::string& what);

}  // namespace medvision
