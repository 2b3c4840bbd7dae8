#include "preprocess/params.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace medvision::preprocess {

using json = nlohmann::json;

void Params::fail(const std::string& key, const std::string& what) const {
  throw Error(MV_ERR_MODEL, context_ + ": '" + key + "' " + what);
}

double Params::number(const std::string& key) {
  const json& v = get(key);
  if (!v.is_number()) fail(key, "must be a number");
  return v.get<double>();
}

bool Params::boolean(const std::string& key, bool fallback) {
  if (!has(key)) return fallback;
  const json& v = get(key);
  if (!v.is_boolean()) fail(key, "must be true or false");
  return v.get<bool>();
}

std::vector<double> Params::numbers(const std::string& key, bool scalar_ok, size_t min_len,
                                    size_t max_len) {
  const json& v = get(key);
  std::vector<double> out;
  if (v.is_number() && scalar_ok) return {v.get<double>()};
  if (v.is_array() && v.size() >= min_len && v.size() <= max_len) {
    for (const auto& e : v) {
      if (!e.is_number()) break;
      out.push_back(e.get<double>());
    }
    if (out.size() == v.size()) return out;
  }
  const std::string count = min_len == max_len
                                ? std::to_string(min_len)
                                : std::to_string(min_len) + " to " + std::to_string(max_len);
  fail(key, std::string("must be ") + (scalar_ok ? "a number or " : "") + "an array of " + count +
                " numbers");
}

std::vector<int64_t> Params::sizes(const std::string& key, const std::vector<size_t>& lengths,
                                   const std::string& described) {
  const json& v = get(key);
  std::vector<int64_t> out;
  if (v.is_array() && std::find(lengths.begin(), lengths.end(), v.size()) != lengths.end()) {
    for (const auto& e : v) {
      if (!e.is_number_integer() || e.get<int64_t>() <= 0) break;
      out.push_back(e.get<int64_t>());
    }
    if (out.size() == v.size()) return out;
  }
  fail(key, "must be " + described);
}

int64_t Params::positive_int(const std::string& key) {
  const json& v = get(key);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(key, "must be a positive integer");
  return v.get<int64_t>();
}

double Params::percent(const std::string& key, double fallback) {
  const double p = number(key, fallback);
  if (!(p >= 0.0 && p <= 100.0)) fail(key, "must be a percentile in [0, 100]");
  return p;
}

void Params::forbid_unread() const {
  for (auto it = j_.begin(); it != j_.end(); ++it) {
    if (!read_.count(it.key())) {
      throw Error(MV_ERR_MODEL, context_ + ": unknown parameter '" + it.key() + "'");
    }
  }
}

const json& Params::get(const std::string& key) {
  auto it = j_.find(key);
  if (it == j_.end()) fail(key, "is required");
  read_.insert(key);
  return *it;
}

}  // namespace medvision::preprocess
