#pragma once
// Manifest parameters of one preprocessing step: typed getters that remember which keys were
// read, so that anything left over (a typo, a parameter of another mode) is reported instead of
// silently ignored. Internal to the module.

#include <array>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace medvision::preprocess {

// One spelling of a mode in the manifest and the enum value it parses to.
template <typename E>
struct Named {
  const char* name;
  E value;
};

// The manifest spelling of `value` in `names` (for messages and the applied-steps list).
template <typename E, size_t N>
const char* name_of(const std::array<Named<E>, N>& names, E value) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

class Params {
 public:
  Params(const nlohmann::json& j, std::string context) : j_(j), context_(std::move(context)) {}

  // Throws MV_ERR_MODEL "<context>: '<key>' <what>".
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  bool has(const std::string& key) const { return j_.contains(key); }

  double number(const std::string& key);
  double number(const std::string& key, double fallback) {
    return has(key) ? number(key) : fallback;
  }
  bool boolean(const std::string& key, bool fallback);
  // A string among `names`, parsed to its enum once; `fallback` when absent (required when
  // nullopt).
  template <typename E, size_t N>
  E choice(const std::string& key, const std::array<Named<E>, N>& names,
           std::optional<E> fallback) {
    if (!has(key) && fallback) return *fallback;
    const nlohmann::json& v = get(key);
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      for (const auto& n : names) {
        if (s == n.name) return n.value;
      }
    }
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "'" : ", '") + std::string(n.name) + "'";
    fail(key, "must be one of " + list);
  }
  // A number (when `scalar_ok`), or an array of min_len to max_len numbers.
  std::vector<double> numbers(const std::string& key, bool scalar_ok, size_t min_len,
                              size_t max_len);
  // An array of positive integers whose length is one of `lengths`.
  std::vector<int64_t> sizes(const std::string& key, const std::vector<size_t>& lengths,
                             const std::string& described);
  int64_t positive_int(const std::string& key);
  double percent(const std::string& key, double fallback);
  // Throws on any key that no getter read ("unknown parameter 'x'").
  void forbid_unread() const;
  const std::string& context() const { return context_; }

 private:
  const nlohmann::json& get(const std::string& key);
  const nlohmann::json& j_;
  std::string context_;
  std::set<std::string> read_{"op"};
};

}  // namespace medvision::preprocess
