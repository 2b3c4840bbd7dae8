#pragma once
// medvision::calibrate: shared types. Scores are held as a row-major [N, L] matrix of doubles;
// labels as ints: for sigmoid (multi-label) models y[N * L] in {0, 1}, for softmax models y[N]
// holding the class index. See docs/calibration.md.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/activation.hpp"

namespace medvision::calibrate {

enum class Activation { kSigmoid, kSoftmax };

// "sigmoid" | "softmax" (the manifest's output.activation); throws MV_ERR_INVALID_ARGUMENT.
Activation activation_from_string(const std::string& name);
const char* to_string(Activation activation);

// A row-major [rows, cols] matrix of doubles.
struct Matrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<double> values;

  Matrix() = default;
  Matrix(size_t r, size_t c, double fill = 0.0) : rows(r), cols(c), values(r * c, fill) {}
  // Copies `v` (float or double, row-major); throws MV_ERR_INVALID_ARGUMENT when
  // v.size() != rows * cols or when rows or cols is zero.
  template <typename T>
  static Matrix from(const std::vector<T>& v, size_t r, size_t c) {
    check_shape(v.size(), r, c);
    Matrix m(r, c);
    for (size_t i = 0; i < v.size(); ++i) m.values[i] = static_cast<double>(v[i]);
    return m;
  }
  double& operator()(size_t i, size_t j) { return values[i * cols + j]; }
  double operator()(size_t i, size_t j) const { return values[i * cols + j]; }
  std::vector<double> column(size_t j) const;

 private:
  static void check_shape(size_t size, size_t r, size_t c);
};

// The logistic function (common/activation.hpp, overflow-safe) and its inverse (clamped to
// +-36.7, i.e. 1e-16).
using medvision::sigmoid;
double logit(double p);

// Activation applied to logits: sigmoid per element or softmax per row (max-subtracted).
Matrix activate(const Matrix& logits, Activation activation);

// Checks labels against the logits' shape (size N*L with values in {0,1} for sigmoid; size N with
// values in [0, L) for softmax; softmax needs L >= 2). Throws MV_ERR_INVALID_ARGUMENT.
void check_labels(const Matrix& logits, const std::vector<int>& labels, Activation activation);

// The labels as one binary outcome per (image, label): sigmoid labels as they are, softmax
// labels one-hot. Column j of the result is the one-vs-rest outcome for label j.
std::vector<std::vector<int>> binary_outcomes(const Matrix& logits, const std::vector<int>& labels,
                                              Activation activation);

inline double to_double(size_t n) { return static_cast<double>(n); }

}  // namespace medvision::calibrate
