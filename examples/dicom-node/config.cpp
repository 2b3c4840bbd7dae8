// Parses node.json: every key is known, typed and range-checked; errors name the file and key.

#include "config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <stdexcept>

namespace mvnode {

namespace {

using json = nlohmann::ordered_json;  // ordered: "series" keys are the channel order

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw std::runtime_error(file_ + ": " + key + ": " + what);
  }

  void only_keys(const json& obj, const std::string& where, const std::set<std::string>& known) {
    if (!obj.is_object()) fail(where.empty() ? "(top level)" : where, "must be a JSON object");
    for (const auto& item : obj.items()) {
      if (known.count(item.key()) == 0) {
        fail(where.empty() ? item.key() : where + "." + item.key(), "unknown key");
      }
    }
  }

  std::string ae_title(const json& v, const std::string& key) const {
    if (!v.is_string()) fail(key, "must be a string");
    const auto s = v.get<std::string>();
    if (s.empty() || s.size() > 16) fail(key, "an AE title has 1 to 16 characters");
    for (char c : s) {
      if (c < 0x20 || c > 0x7e || c == '\\') fail(key, "an AE title has printable ASCII only");
    }
    return s;
  }

  std::string string(const json& v, const std::string& key) const {
    if (!v.is_string()) fail(key, "must be a string");
    return v.get<std::string>();
  }

  uint16_t port(const json& v, const std::string& key) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 65535) {
      fail(key, "must be a port number (1-65535)");
    }
    return static_cast<uint16_t>(v.get<int64_t>());
  }

  double seconds(const json& v, const std::string& key, double min) const {
    if (!v.is_number() || v.get<double>() < min) {
      fail(key, "must be a number of seconds >= " + std::to_string(min));
    }
    return v.get<double>();
  }

  int count(const json& v, const std::string& key, int min, int max) const {
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
      fail(key, "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return static_cast<int>(v.get<int64_t>());
  }

  std::vector<std::string> strings(const json& v, const std::string& key) const {
    if (!v.is_array()) fail(key, "must be an array of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) {
      out.push_back(string(v[i], key + "[" + std::to_string(i) + "]"));
    }
    return out;
  }

 private:
  std::string file_;
};

Rule parse_rule(Reader& r, const json& v, const std::string& key) {
  r.only_keys(v, key, {"modality", "body_part", "series", "models"});
  Rule rule;
  if (v.contains("modality")) rule.modality = r.strings(v["modality"], key + ".modality");
  if (v.contains("body_part")) rule.body_part = r.strings(v["body_part"], key + ".body_part");
  if (v.contains("series")) {
    const auto& s = v["series"];
    if (!s.is_object() || s.empty()) {
      r.fail(key + ".series", "must be an object {channel name: regex on SeriesDescription}");
    }
    for (const auto& item : s.items()) {
      const std::string k = key + ".series." + item.key();
      std::string pattern = r.string(item.value(), k);
      try {
        std::string body = pattern.rfind("(?i)", 0) == 0 ? pattern.substr(4) : pattern;
        (void)std::regex(body, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        r.fail(k, std::string("not a valid regular expression: ") + e.what());
      }
      rule.series.emplace_back(item.key(), pattern);
    }
  }
  if (!v.contains("models")) r.fail(key + ".models", "missing (the models to run)");
  rule.models = r.strings(v["models"], key + ".models");
  if (rule.models.empty()) r.fail(key + ".models", "must name at least one model");
  return rule;
}

}  // namespace

std::vector<Rule> default_rules() {
  Rule cxr;
  cxr.modality = {"CR", "DX"};
  cxr.body_part = {"CHEST", ""};
  cxr.models = {"cxr-pneumonia", "cxr-lungs"};
  Rule brain;
  brain.modality = {"MR"};
  brain.series = {{"FLAIR", "(?i)flair"}, {"T1", "(?i)t1"}};
  brain.models = {"brain-tumour"};
  return {cxr, brain};
}

Config load_config(const std::filesystem::path& path) {
  Reader r(path.string());
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open the config file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
  r.only_keys(j, "",
              {"ae_title", "port", "data_dir", "accept_from", "destination", "idle_seconds",
               "workers", "threads", "batch_size", "device", "heatmaps", "rules"});
  Config c;
  c.file = std::filesystem::absolute(path);
  if (j.contains("ae_title")) c.ae_title = r.ae_title(j["ae_title"], "ae_title");
  if (j.contains("port")) c.port = r.port(j["port"], "port");
  if (!j.contains("data_dir")) r.fail("data_dir", "missing (the folder for received files)");
  c.data_dir = r.string(j["data_dir"], "data_dir");
  if (c.data_dir.empty()) r.fail("data_dir", "must not be empty");
  if (c.data_dir.is_relative()) c.data_dir = c.file.parent_path() / c.data_dir;
  if (j.contains("accept_from")) {
    const auto& a = j["accept_from"];
    if (!a.is_array()) r.fail("accept_from", "must be an array of AE titles");
    for (size_t i = 0; i < a.size(); ++i) {
      c.accept_from.push_back(r.ae_title(a[i], "accept_from[" + std::to_string(i) + "]"));
    }
  }
  if (!j.contains("destination")) r.fail("destination", "missing (where results are sent)");
  const auto& d = j["destination"];
  r.only_keys(d, "destination",
              {"ae_title", "host", "port", "retry_initial_seconds", "retry_max_seconds",
               "give_up_seconds"});
  for (const char* k : {"ae_title", "host", "port"}) {
    if (!d.contains(k)) r.fail(std::string("destination.") + k, "missing");
  }
  c.destination.ae_title = r.ae_title(d["ae_title"], "destination.ae_title");
  c.destination.host = r.string(d["host"], "destination.host");
  if (c.destination.host.empty()) r.fail("destination.host", "must not be empty");
  c.destination.port = r.port(d["port"], "destination.port");
  if (d.contains("retry_initial_seconds")) {
    c.destination.retry_initial_seconds =
        r.seconds(d["retry_initial_seconds"], "destination.retry_initial_seconds", 0.1);
  }
  if (d.contains("retry_max_seconds")) {
    c.destination.retry_max_seconds =
        r.seconds(d["retry_max_seconds"], "destination.retry_max_seconds", 0.1);
  }
  if (d.contains("give_up_seconds")) {
    c.destination.give_up_seconds =
        r.seconds(d["give_up_seconds"], "destination.give_up_seconds", 0.0);
  }
  if (c.destination.retry_max_seconds < c.destination.retry_initial_seconds) {
    r.fail("destination.retry_max_seconds", "must be >= retry_initial_seconds");
  }
  if (j.contains("idle_seconds")) c.idle_seconds = r.seconds(j["idle_seconds"], "idle_seconds", 0);
  if (j.contains("workers")) c.workers = r.count(j["workers"], "workers", 1, 64);
  if (j.contains("threads")) c.threads = r.count(j["threads"], "threads", 0, 256);
  if (j.contains("batch_size")) c.batch_size = r.count(j["batch_size"], "batch_size", 1, 256);
  if (j.contains("device")) c.device = r.string(j["device"], "device");
  if (j.contains("heatmaps")) {
    const std::string h = r.string(j["heatmaps"], "heatmaps");
    if (h == "positive") {
      c.heatmaps = HeatmapPolicy::kPositive;
    } else if (h == "all") {
      c.heatmaps = HeatmapPolicy::kAll;
    } else if (h == "none") {
      c.heatmaps = HeatmapPolicy::kNone;
    } else {
      r.fail("heatmaps", "must be \"positive\", \"all\" or \"none\"");
    }
  }
  if (j.contains("rules")) {
    const auto& rules = j["rules"];
    if (!rules.is_array()) r.fail("rules", "must be an array of rules");
    for (size_t i = 0; i < rules.size(); ++i) {
      c.rules.push_back(parse_rule(r, rules[i], "rules[" + std::to_string(i) + "]"));
    }
  } else {
    c.rules = default_rules();
  }
  return c;
}

}  // namespace mvnode
