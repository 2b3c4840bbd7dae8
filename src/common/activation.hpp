#pragma once
// Output activations, the one copy the library uses (classification scores, segmentation
// probabilities, CAM scores, calibration): a logistic function that never overflows and a
// max-subtracted softmax summed in double.

#include <cmath>
#include <cstdint>

namespace medvision {

// 1 / (1 + exp(-z)), evaluated so that exp only ever sees a non-positive argument.
inline double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// softmax over the n values z[0], z[stride], ..., z[(n - 1) * stride], written to out with the
// same stride (out may be z). The maximum is subtracted (in T, then widened) before exp, so no
// finite input overflows; the sum is in double. n >= 1.
template <typename T>
void softmax(const T* z, int64_t n, int64_t stride, T* out) {
  T mx = z[0];
  for (int64_t k = 1; k < n; ++k) mx = z[k * stride] > mx ? z[k * stride] : mx;
  double sum = 0.0;
  for (int64_t k = 0; k < n; ++k) sum += std::exp(static_cast<double>(z[k * stride] - mx));
  for (int64_t k = 0; k < n; ++k) {
    out[k * stride] = static_cast<T>(std::exp(static_cast<double>(z[k * stride] - mx)) / sum);
  }
}

// Entry `k` of softmax(z) alone (same conventions).
template <typename T>
double softmax_at(const T* z, int64_t n, int64_t stride, int64_t k) {
  T mx = z[0];
  for (int64_t j = 1; j < n; ++j) mx = z[j * stride] > mx ? z[j * stride] : mx;
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(z[j * stride] - mx));
  return std::exp(static_cast<double>(z[k * stride] - mx)) / sum;
}

}  // namespace medvision
