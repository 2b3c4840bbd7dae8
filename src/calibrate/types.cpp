#include "calibrate/types.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"

namespace medvision::calibrate {

Activation activation_from_string(const std::string& name) {
  if (name == "sigmoid") return Activation::kSigmoid;
  if (name == "softmax") return Activation::kSoftmax;
  throw Error(MV_ERR_INVALID_ARGUMENT,
              "calibrate: unknown activation '" + name + "' (want sigmoid or softmax)");
}

const char* to_string(Activation activation) {
  return activation == Activation::kSigmoid ? "sigmoid" : "softmax";
}

void Matrix::check_shape(size_t size, size_t r, size_t c) {
  if (r == 0 || c == 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: empty score matrix");
  }
  if (size != r * c) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: " + std::to_string(size) +
                                             " scores do not make a [" + std::to_string(r) + ", " +
                                             std::to_string(c) + "] matrix");
  }
}

std::vector<double> Matrix::column(size_t j) const {
  std::vector<double> out(rows);
  for (size_t i = 0; i < rows; ++i) out[i] = (*this)(i, j);
  return out;
}

double logit(double p) {
  constexpr double kLimit = 36.7;  // logit(1 - 1e-16)
  if (!(p > 0)) return -kLimit;
  if (!(p < 1)) return kLimit;
  return std::clamp(std::log(p) - std::log1p(-p), -kLimit, kLimit);
}

Matrix activate(const Matrix& logits, Activation activation) {
  Matrix out(logits.rows, logits.cols);
  if (activation == Activation::kSigmoid) {
    for (size_t k = 0; k < logits.values.size(); ++k) out.values[k] = sigmoid(logits.values[k]);
    return out;
  }
  const auto cols = static_cast<int64_t>(logits.cols);
  for (size_t i = 0; i < logits.rows; ++i) {
    softmax(&logits.values[i * logits.cols], cols, 1, &out.values[i * logits.cols]);
  }
  return out;
}

void check_labels(const Matrix& logits, const std::vector<int>& labels, Activation activation) {
  if (logits.rows == 0 || logits.cols == 0 || logits.values.size() != logits.rows * logits.cols) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: empty or malformed score matrix");
  }
  for (double v : logits.values) {
    if (!std::isfinite(v)) throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: non-finite score");
  }
  if (activation == Activation::kSigmoid) {
    if (labels.size() != logits.rows * logits.cols) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "calibrate: sigmoid labels need one 0/1 value per (image, label): got " +
                      std::to_string(labels.size()) + " for [" + std::to_string(logits.rows) +
                      ", " + std::to_string(logits.cols) + "] scores");
    }
    for (int y : labels) {
      if (y != 0 && y != 1) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: sigmoid labels must be 0 or 1");
      }
    }
    return;
  }
  if (logits.cols < 2) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "calibrate: softmax needs at least two classes");
  }
  if (labels.size() != logits.rows) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                "calibrate: softmax labels need one class index per image: got " +
                    std::to_string(labels.size()) + " for " + std::to_string(logits.rows) +
                    " images");
  }
  for (int y : labels) {
    if (y < 0 || static_cast<size_t>(y) >= logits.cols) {
      throw Error(MV_ERR_INVALID_ARGUMENT,
                  "calibrate: class index " + std::to_string(y) + " out of range");
    }
  }
}

std::vector<std::vector<int>> binary_outcomes(const Matrix& logits, const std::vector<int>& labels,
                                              Activation activation) {
  check_labels(logits, labels, activation);
  std::vector<std::vector<int>> out(logits.cols, std::vector<int>(logits.rows, 0));
  for (size_t i = 0; i < logits.rows; ++i) {
    if (activation == Activation::kSigmoid) {
      for (size_t j = 0; j < logits.cols; ++j) out[j][i] = labels[i * logits.cols + j];
    } else {
      out[static_cast<size_t>(labels[i])][i] = 1;
    }
  }
  return out;
}

}  // namespace medvision::calibrate
