#pragma once
// mv_image_load_options -> io::LoadOptions, shared by mv_image_load*() and mv_model_run_many().

#include "common/image.hpp"
#include "io/io.hpp"
#include "medvision/medvision.h"

namespace medvision::capi {

// The user's pixel spacing (mv_image_load_options.pixel_spacing), applied after decoding.
struct SpacingOverride {
  double column = 0.0, row = 0.0;
  void apply(Image& image) const {
    if (column <= 0.0) return;
    image.geometry.spacing[0] = column;
    image.geometry.spacing[1] = row;
    image.geometry.spacing_source = "user";
  }
};

// Checks `in` (NULL: the defaults) and fills `out` and `spacing`; on bad options sets the last
// error and returns its status.
mv_status resolve_options(const mv_image_load_options* in, io::LoadOptions* out,
                          SpacingOverride* spacing);

}  // namespace medvision::capi
