// Model::regress: the regression pipeline (preprocess -> one batch -> one value per label).

#include <cmath>
#include <string>

#include "common/error.hpp"
#include "model/model.hpp"

namespace medvision::model {

std::vector<Regression> Model::regress(const std::vector<const Image*>& images) const {
  const Manifest& m = manifest_;
  if (m.task != Task::kRegression) {
    throw Error(MV_ERR_INVALID_ARGUMENT, m.path + ": '" + m.name + "' is not a regression model");
  }
  auto inputs = prepare(images);
  std::vector<int64_t> shape;
  const std::vector<float> batch = stack(inputs, &shape);
  const infer::Tensor out = runtime_->run(batch.data(), shape);
  const auto n = static_cast<int64_t>(inputs.size());
  const auto labels = static_cast<int64_t>(m.labels.size());
  if (out.shape.size() != 2 || out.shape[0] != n || out.shape[1] != labels) {
    throw Error(MV_ERR_MODEL, m.path + ": the model's output does not have shape [" +
                                  std::to_string(n) + ", " + std::to_string(labels) + "]");
  }
  std::vector<Regression> results(static_cast<size_t>(n));
  for (size_t i = 0; i < results.size(); ++i) {
    Regression& r = results[i];
    for (size_t k = 0; k < m.labels.size(); ++k) {
      const float v = out.data[i * m.labels.size() + k];
      if (!std::isfinite(v)) {
        throw Error(MV_ERR_MODEL, m.path + ": the model returned a non-finite value for '" +
                                      m.labels[k] + "' of image " + std::to_string(i));
      }
      r.values.push_back({m.labels[k], static_cast<double>(v), m.regress.units[k]});
    }
    r.warnings = std::move(inputs[i].warnings);
    r.chain = std::move(inputs[i].chain);
  }
  return results;
}

}  // namespace medvision::model
