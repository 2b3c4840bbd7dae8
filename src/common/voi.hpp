#pragma once
// The DICOM VOI transformation (PS3.3 C.11.2.1.2), the one copy the library uses: io's
// apply_voi load option, the `window` preprocessing step in 'dicom' and 'explicit' modes, and
// the grey base of renderings. Output is scaled to [0, 1] (the standard's y_min..y_max).

#include <cstddef>

#include "common/image.hpp"

namespace medvision::voi {

// The value of `x` through preset `w`, in [0, 1]; NaN stays NaN.
// - MV_VOI_TABLE (VOI LUT Sequence, C.11.2.1.1): entry clamp(floor(x - first_mapped), 0, n - 1)
//   divided by 2^bits - 1. Entry k holds the output for input first_mapped + k, so a
//   non-integer input (after a fractional rescale) takes the entry of the integer at or below
//   it, as pydicom's apply_voi does; an empty table gives 0.
// - MV_VOI_LINEAR (C.11.2.1.2.1): x <= c - 0.5 - (w - 1) / 2 -> 0, x > c - 0.5 + (w - 1) / 2 ->
//   1, else ((x - (c - 0.5)) / (w - 1) + 0.5); at w = 1 a step at c - 0.5. The standard
//   requires w >= 1 (its half-unit shifts assume integer values); a narrower window, which
//   real PET series in SUV units do carry, is applied as LINEAR_EXACT rather than collapsed to
//   a step (pydicom refuses it).
// - MV_VOI_LINEAR_EXACT (C.11.2.1.3.2): x <= c - w / 2 -> 0, x > c + w / 2 -> 1, else
//   (x - c) / w + 0.5.
// - MV_VOI_SIGMOID (C.11.2.1.3.1): 1 / (1 + exp(-4 (x - c) / w)).
// - Any function with w <= 0 (not allowed; a constant image's percentile window): the limit of
//   LINEAR_EXACT, a step at c (x <= c -> 0, above -> 1).
double value(const WindowPreset& w, double x);

// value() over n floats; `in` may equal `out`. The function is chosen once, not per pixel.
void apply(const WindowPreset& w, const float* in, float* out, size_t n);

// Whether `w` describes a transformation the standard defines (a non-empty table; a width of at
// least 1 for LINEAR, above 0 for LINEAR_EXACT and SIGMOID). value() still answers for the rest.
bool well_formed(const WindowPreset& w);

}  // namespace medvision::voi
