// The NIfTI data type an image is written with when the caller does not choose one.

#include <cmath>

#include "io/writers.hpp"

namespace medvision::io {

NiftiType smallest_exact_nifti_type(const Image& image) {
  bool integral = true, fits_u8 = true;
  const float* p = image.data();
  for (size_t i = 0; i < image.size() && integral; ++i) {
    integral = p[i] == std::floor(p[i]) && p[i] >= -32768.0f && p[i] <= 32767.0f;
    fits_u8 = fits_u8 && p[i] >= 0.0f && p[i] <= 255.0f;
  }
  if (!integral) return NiftiType::kFloat32;
  return fits_u8 ? NiftiType::kUint8 : NiftiType::kInt16;
}

}  // namespace medvision::io
