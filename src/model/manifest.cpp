#include "model/manifest.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.hpp"
#include "common/sha256.hpp"
#include "model/archive.hpp"

namespace medvision::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

[[noreturn]] void bad(const std::string& where, const std::string& key, const std::string& what) {
  throw Error(MV_ERR_MODEL, where + ": " + key + ": " + what);
}

const json& require(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) bad(where, key, "missing (required)");
  return *it;
}

std::string require_string(const json& j, const char* key, const std::string& where) {
  const json& v = require(j, key, where);
  if (!v.is_string() || v.get<std::string>().empty()) bad(where, key, "must be a non-empty string");
  return v.get<std::string>();
}

std::string optional_string(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) bad(where, key, "must be a string");
  return it->get<std::string>();
}

void check_keys(const json& j, const std::set<std::string>& allowed, const std::string& where,
                const std::string& prefix) {
  for (const auto& kv : j.items()) {
    if (allowed.count(kv.key()) == 0) {
      bad(where, prefix + kv.key(), "unknown key (misspelt?)");
    }
  }
}

std::vector<int64_t> positive_ints(const json& v, const std::string& where,
                                   const std::string& key) {
  if (!v.is_array()) bad(where, key, "must be an array of positive integers");
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<int64_t>() <= 0) {
      bad(where, key, "must be an array of positive integers");
    }
    out.push_back(e.get<int64_t>());
  }
  return out;
}

// [a-z0-9][a-z0-9._-]*: safe as a folder name and on a command line.
bool is_package_name(const std::string& s) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || !alnum(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

double number_in(const json& s, const char* key, double lo, double hi, bool hi_open,
                 double fallback, const std::string& where) {
  auto it = s.find(key);
  if (it == s.end()) return fallback;
  const std::string k = std::string("segmentation.") + key;
  if (!it->is_number()) bad(where, k, "must be a number");
  const double v = it->get<double>();
  if (!(v >= lo && (hi_open ? v < hi : v <= hi))) {
    bad(where, k,
        "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + (hi_open ? ")" : "]"));
  }
  return v;
}

bool flag(const json& s, const char* key, bool fallback, const std::string& where) {
  auto it = s.find(key);
  if (it == s.end()) return fallback;
  if (!it->is_boolean()) bad(where, std::string("segmentation.") + key, "must be true or false");
  return it->get<bool>();
}

// {value, scheme, meaning}: a DICOM Code Sequence Macro (value, scheme and meaning 1 to 64
// characters each).
ConceptCode parse_concept_code(const json& c, const std::string& where, const std::string& k) {
  if (!c.is_object()) bad(where, k, "must be an object {value, scheme, meaning}");
  check_keys(c, {"value", "scheme", "meaning"}, where, k + ".");
  ConceptCode out;
  for (auto [field, dst] : {std::pair{"value", &out.value}, std::pair{"scheme", &out.scheme},
                            std::pair{"meaning", &out.meaning}}) {
    auto f = c.find(field);
    if (f == c.end() || !f->is_string() || f->get<std::string>().empty() ||
        f->get<std::string>().size() > 64) {
      bad(where, k + "." + field, "must be a non-empty string of at most 64 characters");
    }
    *dst = f->get<std::string>();
  }
  return out;
}

// The manifest's "codes": label -> the finding it reports, coded (DICOM SR).
std::map<std::string, ConceptCode> parse_codes(const json& j,
                                               const std::vector<std::string>& labels,
                                               const std::string& where) {
  std::map<std::string, ConceptCode> out;
  auto it = j.find("codes");
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) bad(where, "codes", "must be an object {label: {value, scheme, meaning}}");
  for (const auto& [label, c] : it->items()) {
    const std::string k = "codes." + label;
    if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
      bad(where, k, "'" + label + "' is not one of the manifest's labels");
    }
    out[label] = parse_concept_code(c, where, k);
  }
  return out;
}

SegmentationSpec parse_segmentation(const json& s, const std::vector<std::string>& labels,
                                    const std::string& where) {
  if (!s.is_object()) bad(where, "segmentation", "must be an object or null");
  check_keys(s,
             {"overlap", "blend", "sigma_scale", "batch_size", "mirror", "threshold",
              "largest_component", "fill_holes", "regions", "codes"},
             where, "segmentation.");
  SegmentationSpec spec;
  spec.overlap = number_in(s, "overlap", 0.0, 1.0, true, spec.overlap, where);
  spec.sigma_scale = number_in(s, "sigma_scale", 0.01, 10.0, false, spec.sigma_scale, where);
  spec.threshold = number_in(s, "threshold", 0.0, 1.0, true, spec.threshold, where);
  if (auto it = s.find("blend"); it != s.end()) {
    if (!it->is_string() || (*it != "gaussian" && *it != "constant")) {
      bad(where, "segmentation.blend", "must be 'gaussian' or 'constant'");
    }
    spec.gaussian = *it == "gaussian";
  }
  if (auto it = s.find("batch_size"); it != s.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1024) {
      bad(where, "segmentation.batch_size", "must be an integer in [1, 1024]");
    }
    spec.batch_size = it->get<int>();
  }
  spec.mirror = flag(s, "mirror", spec.mirror, where);
  spec.largest_component = flag(s, "largest_component", spec.largest_component, where);
  spec.fill_holes = flag(s, "fill_holes", spec.fill_holes, where);
  if (auto it = s.find("regions"); it != s.end() && !it->is_null()) {
    if (!it->is_object()) bad(where, "segmentation.regions", "must be an object");
    for (const auto& [name, members] : it->items()) {
      const std::string k = "segmentation.regions." + name;
      if (!members.is_array() || members.empty()) bad(where, k, "must be a non-empty array");
      std::vector<size_t> idx;
      for (const auto& l : members) {
        auto found = l.is_string() ? std::find(labels.begin(), labels.end(), l.get<std::string>())
                                   : labels.end();
        if (found == labels.end()) {
          bad(where, k,
              l.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                  " is not one of the manifest's labels");
        }
        idx.push_back(static_cast<size_t>(found - labels.begin()));
      }
      spec.regions.emplace_back(name, std::move(idx));
    }
  }
  if (auto it = s.find("codes"); it != s.end() && !it->is_null()) {
    if (!it->is_object()) bad(where, "segmentation.codes", "must be an object");
    for (const auto& [label, c] : it->items()) {
      const std::string k = "segmentation.codes." + label;
      if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
        bad(where, k, "'" + label + "' is not one of the manifest's labels");
      }
      if (!c.is_object()) bad(where, k, "must be an object {category, type}");
      check_keys(c, {"category", "type"}, where, k + ".");
      if (!c.contains("category") || !c.contains("type")) {
        bad(where, k, "needs both 'category' and 'type'");
      }
      spec.codes[label] = {parse_concept_code(c.at("category"), where, k + ".category"),
                           parse_concept_code(c.at("type"), where, k + ".type")};
    }
  }
  return spec;
}

// "population": {"age_years": [min, max], "view_positions": [...], "body_parts": [...],
// "photometric": [...], "description": "..."} (docs/model-package.md).
Population parse_population(const json& p, const std::string& where) {
  if (!p.is_object()) bad(where, "population", "must be an object");
  check_keys(p, {"age_years", "view_positions", "body_parts", "photometric", "description"}, where,
             "population.");
  Population out;
  if (auto it = p.find("age_years"); it != p.end() && !it->is_null()) {
    if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number() || !(*it)[1].is_number() ||
        (*it)[0].get<double>() < 0 || (*it)[0].get<double>() > (*it)[1].get<double>()) {
      bad(where, "population.age_years", "must be [min, max] years with 0 <= min <= max");
    }
    out.age_min_years = (*it)[0].get<double>();
    out.age_max_years = (*it)[1].get<double>();
  }
  const auto strings = [&](const char* key, std::vector<std::string>& dst) {
    auto it = p.find(key);
    if (it == p.end() || it->is_null()) return;
    if (!it->is_array() || it->empty()) {
      bad(where, std::string("population.") + key, "must be a non-empty array of strings");
    }
    for (const auto& s : *it) {
      if (!s.is_string()) bad(where, std::string("population.") + key, "must hold strings");
      dst.push_back(s.get<std::string>());
    }
  };
  strings("view_positions", out.view_positions);
  strings("body_parts", out.body_parts);
  strings("photometric", out.photometric);
  for (const auto& ph : out.photometric) {
    if (ph != "MONOCHROME1" && ph != "MONOCHROME2" && ph != "RGB") {
      bad(where, "population.photometric", "holds MONOCHROME1, MONOCHROME2 or RGB");
    }
  }
  if (auto it = p.find("description"); it != p.end() && !it->is_null()) {
    if (!it->is_string()) bad(where, "population.description", "must be a string");
    out.description = it->get<std::string>();
  }
  return out;
}

}  // namespace

namespace {

// parse_manifest's parts, one per top-level key (or pair of keys); each fills its fields of m.

void parse_labels(const json& j, const std::string& where, Manifest& m) {
  const json& labels = require(j, "labels", where);
  if (!labels.is_array() || labels.empty()) bad(where, "labels", "must be a non-empty array");
  std::set<std::string> seen;
  for (const auto& l : labels) {
    if (!l.is_string() || l.get<std::string>().empty()) {
      bad(where, "labels", "every label must be a non-empty string");
    }
    if (!seen.insert(l.get<std::string>()).second) {
      bad(where, "labels", "duplicate label '" + l.get<std::string>() + "'");
    }
    m.labels.push_back(l.get<std::string>());
  }
}

void parse_input(const json& j, const std::string& where, Manifest& m) {
  const json& input = require(j, "input", where);
  if (!input.is_object()) bad(where, "input", "must be an object");
  check_keys(input, {"channels", "size", "ndim", "spacing", "modalities"}, where, "input.");
  const json& ch = require(input, "channels", where + ": input");
  if (!ch.is_number_integer() || ch.get<int64_t>() <= 0 || ch.get<int64_t>() > 64) {
    bad(where, "input.channels", "must be an integer in 1..64");
  }
  m.input.channels = ch.get<int64_t>();
  m.input.ndim = 2;
  if (auto it = input.find("ndim"); it != input.end()) {
    if (!it->is_number_integer() || (it->get<int>() != 2 && it->get<int>() != 3)) {
      bad(where, "input.ndim", "must be 2 or 3");
    }
    m.input.ndim = it->get<int>();
  }
  m.input.size = positive_ints(require(input, "size", where + ": input"), where, "input.size");
  if (m.input.size.size() != static_cast<size_t>(m.input.ndim)) {
    bad(where, "input.size",
        "expected " + std::to_string(m.input.ndim) + " positive integers for a " +
            std::to_string(m.input.ndim) + "D model");
  }
  if (auto it = input.find("spacing"); it != input.end() && !it->is_null()) {
    if (!it->is_array() || it->size() != 3) bad(where, "input.spacing", "must be [z, y, x] in mm");
    for (const auto& s : *it) {
      if (!s.is_number() || s.get<double>() <= 0) bad(where, "input.spacing", "must be positive");
      m.spacing.push_back(s.get<double>());
    }
  }
  if (auto it = input.find("modalities"); it != input.end() && !it->is_null()) {
    if (!it->is_array()) bad(where, "input.modalities", "must be an array of strings");
    for (const auto& s : *it) {
      if (!s.is_string()) bad(where, "input.modalities", "must be an array of strings");
      m.input.modalities.push_back(s.get<std::string>());
    }
  }
}

void parse_output(const json& j, const std::string& where, Manifest& m) {
  const json& output = require(j, "output", where);
  if (!output.is_object()) bad(where, "output", "must be an object");
  check_keys(output, {"activation"}, where, "output.");
  const std::string act = require_string(output, "activation", where + ": output");
  if (act == "sigmoid") {
    m.activation = Activation::kSigmoid;
  } else if (act == "softmax") {
    m.activation = Activation::kSoftmax;
    if (m.labels.size() < 2) bad(where, "output.activation", "softmax needs at least 2 labels");
  } else {
    bad(where, "output.activation", "'" + act + "' is not one of sigmoid, softmax");
  }
}

// Needs m.task (explain.activations is for segmentation models only).
void parse_explain(const json& j, const std::string& where, Manifest& m) {
  if (auto it = j.find("explain"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) bad(where, "explain", "must be an object or null");
    check_keys(*it, {"features", "head", "activations", "target_layer"}, where, "explain.");
    m.explain_features = optional_string(*it, "features", where + ": explain");
    m.explain_head = optional_string(*it, "head", where + ": explain");
    m.explain_activations = optional_string(*it, "activations", where + ": explain");
    if (m.explain_features.empty() != m.explain_head.empty()) {
      bad(where, "explain", "'features' and 'head' go together");
    }
    if (!m.explain_activations.empty() && m.task != Task::kSegmentation) {
      bad(where, "explain.activations",
          "is for segmentation models (classification: features, head)");
    }
  }
}

void parse_model_file(const json& j, const std::string& where, Manifest& m) {
  m.model_file = optional_string(j, "model_file", where);
  if (m.model_file.empty()) m.model_file = "model.pt";
  if (m.model_file.find("..") != std::string::npos || fs::path(m.model_file).is_absolute()) {
    bad(where, "model_file", "must be a file name inside the package");
  }
  m.sha256 = require_string(j, "sha256", where);
  std::transform(m.sha256.begin(), m.sha256.end(), m.sha256.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (m.sha256.size() != 64 ||
      m.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
    bad(where, "sha256", "must be 64 hex digits");
  }
}

}  // namespace

Manifest parse_manifest(const json& j, const std::string& dir, const std::string& where) {
  if (!j.is_object()) throw Error(MV_ERR_MODEL, where + ": the manifest must be a JSON object");
  check_keys(j,
             {"format_version", "name",   "version",     "task",       "labels",     "input",
              "preprocess",     "output", "calibration", "thresholds", "explain",    "segmentation",
              "intended_use",   "notice", "provenance",  "metrics",    "model_file", "sha256",
              "description",    "codes",  "population",  "inference"},
             where, "");
  Manifest m;
  m.dir = dir;
  m.path = where;
  m.raw = j;

  const json& fv = require(j, "format_version", where);
  if (!fv.is_number_integer() || fv.get<int>() != 1) {
    bad(where, "format_version", "this medvision reads format_version 1");
  }
  m.name = require_string(j, "name", where);
  if (!is_package_name(m.name)) {
    bad(where, "name", "must match [a-z0-9][a-z0-9._-]*");
  }
  m.version = require_string(j, "version", where);

  const std::string task = require_string(j, "task", where);
  if (task == "classification") {
    m.task = Task::kClassification;
  } else if (task == "segmentation") {
    m.task = Task::kSegmentation;
  } else {
    bad(where, "task", "'" + task + "' is not one of classification, segmentation");
  }

  parse_labels(j, where, m);
  m.codes = parse_codes(j, m.labels, where);

  parse_input(j, where, m);

  if (auto it = j.find("preprocess"); it != j.end()) {
    if (!it->is_array()) bad(where, "preprocess", "must be an array of steps");
    m.preprocess = *it;
  }

  parse_output(j, where, m);

  m.calibration = j.value("calibration", json());
  m.thresholds = j.value("thresholds", json());
  if (!m.calibration.is_null() && !m.calibration.is_object()) {
    bad(where, "calibration", "must be an object or null");
  }
  if (!m.thresholds.is_null() && !m.thresholds.is_object()) {
    bad(where, "thresholds", "must be an object or null");
  }

  parse_explain(j, where, m);
  if (auto it = j.find("inference"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) bad(where, "inference", "must be an object or null");
    check_keys(*it, {"graph"}, where, "inference.");
    m.inference_graph = optional_string(*it, "graph", where + ": inference");
    if (!m.inference_graph.empty() && m.inference_graph != "optimize_for_inference" &&
        m.inference_graph != "freeze" && m.inference_graph != "none") {
      bad(where, "inference.graph", "must be optimize_for_inference, freeze or none");
    }
  }
  m.segmentation = j.value("segmentation", json());
  if (!m.segmentation.is_null()) {
    if (m.task != Task::kSegmentation) bad(where, "segmentation", "only for task segmentation");
    m.segment = parse_segmentation(m.segmentation, m.labels, where);
  }
  m.intended_use = optional_string(j, "intended_use", where);
  if (auto it = j.find("population"); it != j.end() && !it->is_null()) {
    m.population = parse_population(*it, where);
  }
  m.notice = optional_string(j, "notice", where);
  if (m.notice.empty()) m.notice = kDefaultNotice;
  m.provenance = j.value("provenance", json::object());
  m.metrics = j.value("metrics", json::object());
  parse_model_file(j, where, m);
  return m;
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / "manifest.json").string();
  std::ifstream f(path);
  if (!f) throw Error(MV_ERR_IO, path + ": cannot open the model manifest");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::parse_error& e) {
    throw Error(MV_ERR_MODEL, path + ": not valid JSON (" + e.what() + ")");
  }
  return parse_manifest(j, dir, path);
}

void verify_checksum(const Manifest& m) {
  const std::string file = (fs::path(m.dir) / m.model_file).string();
  if (!fs::is_regular_file(file)) throw Error(MV_ERR_IO, file + ": model file not found");
  const std::string got = sha256_file(file);
  if (got != m.sha256) {
    throw Error(MV_ERR_MODEL, file + ": checksum mismatch: sha256 is " + got +
                                  ", the manifest says " + m.sha256 +
                                  " (file corrupt, or replaced without updating the manifest)");
  }
}

std::vector<std::string> search_path() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("MEDVISION_MODEL_PATH")) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':')) {
      if (!item.empty()) out.push_back(item);
    }
  }
#ifdef MV_SOURCE_MODELS_DIR
  out.emplace_back(MV_SOURCE_MODELS_DIR);
#endif
#ifdef MV_INSTALL_MODELS_DIR
  out.emplace_back(MV_INSTALL_MODELS_DIR);
#endif
  return out;
}

namespace {
// A package folder is one holding manifest.json; the repository keeps the exported package of
// models/<name>/ in models/<name>/package/.
std::string package_in(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir / "manifest.json", ec)) return dir.string();
  if (fs::is_regular_file(dir / "package" / "manifest.json", ec)) {
    return (dir / "package").string();
  }
  return {};
}
}  // namespace

std::string resolve_package(const std::string& name_or_path) {
  if (name_or_path.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "model name is empty");
  std::error_code ec;
  if (fs::is_directory(name_or_path, ec)) {
    std::string p = package_in(name_or_path);
    if (p.empty()) throw Error(MV_ERR_IO, name_or_path + ": folder holds no manifest.json");
    return p;
  }
  if (is_package_archive(name_or_path)) return name_or_path;
  if (fs::exists(name_or_path, ec)) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                name_or_path +
                    ": a model is a package folder holding manifest.json, or a package "
                    "archive (.tar, .tar.gz, .tgz, .mvpkg)");
  }
  if (name_or_path.find('/') == std::string::npos) {
    for (const auto& dir : search_path()) {
      std::string p = package_in(fs::path(dir) / name_or_path);
      if (!p.empty()) return p;
      for (const std::string& file : archive_names(name_or_path)) {
        std::string a = (fs::path(dir) / file).string();
        if (is_package_archive(a)) return a;
      }
    }
  }
  std::string where;
  for (const auto& dir : search_path()) where += (where.empty() ? "" : ", ") + dir;
  throw Error(MV_ERR_IO, "model '" + name_or_path + "' not found (looked in: " +
                             (where.empty() ? "nothing; set MEDVISION_MODEL_PATH" : where) + ")");
}

std::vector<std::string> list_packages() {
  std::vector<std::string> out;
  std::set<std::string> names;
  for (const auto& dir : search_path()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) {
      std::string p = package_in(e);
      std::string name = e.filename().string();
      if (p.empty() && is_package_archive(e.string())) {
        p = e.string();
        name = archive_stem(name);
      }
      if (!p.empty() && names.insert(name).second) out.push_back(p);
    }
  }
  return out;
}

}  // namespace medvision::model
