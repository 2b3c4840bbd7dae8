// medvision: the command-line tool. Uses only the public API (medvision.hpp over the C ABI).
// Exit codes: 0 success, 1 usage error, 10 + mv_status for a library failure (e.g. 13 = MV_ERR_IO).

#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "evaluate.hpp"
#include "labels_csv.hpp"
#include "medvision/medvision.hpp"
#include "segment.hpp"

namespace {

using mvcli::exit_code;
using mvcli::expand_inputs;
using mvcli::kStatusBase;
using mvcli::kUsageError;
using mvcli::LabelledSet;
using mvcli::Progress;
using mvcli::read_labels_csv;
using nlohmann::json;

struct Stats {
  double min = 0, max = 0, mean = 0;
};

Stats pixel_stats(const medvision::Image& img) {
  Stats s;
  const float* p = img.data();
  const size_t n = img.size();
  if (n == 0) return s;
  double lo = p[0], hi = p[0], sum = 0;
  for (size_t i = 0; i < n; ++i) {
    lo = std::min(lo, static_cast<double>(p[i]));
    hi = std::max(hi, static_cast<double>(p[i]));
    sum += p[i];
  }
  s.min = lo;
  s.max = hi;
  s.mean = sum / static_cast<double>(n);
  return s;
}

const char* const kMetaKeys[] = {
    "Modality",          "BodyPartExamined",          "ViewPosition",      "Manufacturer",
    "TransferSyntaxUID", "PhotometricInterpretation", "SeriesDescription", "NumberOfFrames",
    "StudyInstanceUID",  "SeriesInstanceUID",         "SOPInstanceUID"};

json describe(const std::string& path, const medvision::Image& img) {
  const auto shape = img.shape();
  const Stats st = pixel_stats(img);
  json j;
  j["file"] = path;
  j["format"] = medvision::to_string(img.format());
  j["shape"] = {
      {"channels", shape[0]}, {"depth", shape[1]}, {"height", shape[2]}, {"width", shape[3]}};
  j["spacing_mm"] = img.spacing();
  j["origin_lps_mm"] = img.origin();
  j["direction"] = img.direction();
  j["photometric"] = medvision::to_string(img.photometric());
  j["stored_dtype"] = medvision::to_string(img.stored_dtype());
  j["bits_stored"] = img.bits_stored();
  j["pixels"] = {{"min", st.min}, {"max", st.max}, {"mean", st.mean}};
  json windows = json::array();
  for (const auto& w : img.windows()) {
    windows.push_back({{"center", w.center},
                       {"width", w.width},
                       {"function", w.function == MV_VOI_SIGMOID        ? "SIGMOID"
                                    : w.function == MV_VOI_LINEAR_EXACT ? "LINEAR_EXACT"
                                    : w.function == MV_VOI_TABLE        ? "TABLE"
                                                                        : "LINEAR"}});
  }
  j["windows"] = windows;
  json meta = json::object();
  for (const char* k : kMetaKeys) {
    if (auto v = img.meta(k)) meta[k] = *v;
  }
  j["meta"] = meta;
  j["warnings"] = img.warnings();
  return j;
}

void print_human(const json& j) {
  const auto& s = j["shape"];
  std::printf("%s\n", j["file"].get<std::string>().c_str());
  std::printf("  format       %s\n", j["format"].get<std::string>().c_str());
  std::printf("  size         %lld x %lld x %lld voxels, %lld channel(s)\n",
              s["width"].get<long long>(), s["height"].get<long long>(),
              s["depth"].get<long long>(), s["channels"].get<long long>());
  const auto sp = j["spacing_mm"];
  std::printf("  spacing      %.4g x %.4g x %.4g mm\n", sp[0].get<double>(), sp[1].get<double>(),
              sp[2].get<double>());
  const auto o = j["origin_lps_mm"];
  std::printf("  origin (LPS) %.4g, %.4g, %.4g mm\n", o[0].get<double>(), o[1].get<double>(),
              o[2].get<double>());
  std::printf("  photometric  %s\n", j["photometric"].get<std::string>().c_str());
  std::printf("  stored as    %s, %d bits\n", j["stored_dtype"].get<std::string>().c_str(),
              j["bits_stored"].get<int>());
  const auto& px = j["pixels"];
  std::printf("  pixel values min %.6g, max %.6g, mean %.6g (physical units)\n",
              px["min"].get<double>(), px["max"].get<double>(), px["mean"].get<double>());
  for (const auto& w : j["windows"]) {
    std::printf("  window       centre %.6g, width %.6g (%s)\n", w["center"].get<double>(),
                w["width"].get<double>(), w["function"].get<std::string>().c_str());
  }
  for (const auto& [k, v] : j["meta"].items()) {
    std::printf("  %-12s %s\n", k.c_str(), v.get<std::string>().c_str());
  }
  for (const auto& w : j["warnings"])
    std::printf("  warning      %s\n", w.get<std::string>().c_str());
}

int run_info(const std::vector<std::string>& files, bool as_json, int frame) {
  int rc = 0;
  for (const auto& f : files) {
    try {
      medvision::LoadOptions opts;
      opts.frame = frame;
      const auto img = medvision::Image::load(f, opts);
      const json j = describe(f, img);
      if (as_json) {
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      } else {
        print_human(j);
      }
    } catch (const medvision::Exception& e) {
      if (as_json) {
        std::cout << json{{"file", f}, {"error", e.status_name()}, {"message", e.what()}}.dump(
                         -1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
      }
      rc = exit_code(e.status());
    }
  }
  return rc;
}

// A probability as a percentage that never rounds to certainty: ">99.9%" rather than "100.0%".
std::string percent(double p) {
  if (p > 0.999) return ">99.9%";
  if (p < 0.001) return "<0.1%";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * p);
  return buf;
}

// A threshold or band limit: one decimal, two below 1% (a threshold of 0.43% must not read 0.4%).
std::string percent_limit(double p) {
  char buf[24];
  std::snprintf(buf, sizeof buf, 100.0 * p >= 1.0 ? "%.1f%%" : "%.2f%%", 100.0 * p);
  return buf;
}

// "positive, threshold 1.2%, chosen for sensitivity 0.80": the decision and the operating point
// that made it, from the result JSON's "operating_point" (the manifest's thresholds record).
std::string decision_text(int32_t decision, const json& op) {
  std::string t = decision ? "POSITIVE" : "negative";
  if (!op.is_object() || !op.contains("threshold")) return t;
  t += ", threshold " + percent_limit(op["threshold"].get<double>());
  const std::string rule = op.value("method", std::string("youden"));
  const auto num = [&](const char* key) {
    char buf[16];
    if (!op.contains(key) || !op[key].is_number()) return std::string("?");
    std::snprintf(buf, sizeof buf, "%.2f", op[key].get<double>());
    return std::string(buf);
  };
  if (rule == "sensitivity" || rule == "specificity") {
    t += ", chosen for " + rule + " " + num("target");
  } else {
    t += ", chosen by Youden's J (sensitivity " + num("sensitivity") + ", specificity " +
         num("specificity") + ")";
  }
  return t;
}

// The rule that made a refer band (manifest "refer_rule"), or a note that the package does not
// record it (packages calibrated before medvision wrote it).
std::string refer_rule_text(const json& op) {
  const json r = op.value("refer_rule", json());
  if (!r.is_object()) return "band rule not recorded in the package";
  const std::string mode = r.value("mode", std::string());
  char buf[160];
  if (mode == "predictive_value") {
    std::snprintf(buf, sizeof buf, "predictive-value band: NPV >= %.2f below, PPV >= %.2f above",
                  r.value("target_npv", NAN), r.value("target_ppv", NAN));
  } else if (mode == "fixed") {
    std::snprintf(buf, sizeof buf, "fixed band: threshold +- %.3f", r.value("half_width", NAN));
  } else if (mode == "logit") {
    std::snprintf(buf, sizeof buf, "logit band: threshold odds x/÷ e^%.2f",
                  r.value("logit_half_width", NAN));
  } else {
    std::snprintf(buf, sizeof buf, "%s band", mode.c_str());
  }
  return buf;
}

void print_result_human(const std::string& file, const medvision::Result& r, bool first) {
  if (first) {
    std::printf("model %s %s — %s\n\n", r.model_name().c_str(), r.model_version().c_str(),
                r.notice().c_str());
  }
  std::printf("%s\n", file.c_str());
  const auto ranked = r.ranked();
  const double alpha = r.conformal_alpha();
  const json j = json::parse(r.json());
  // Softmax sets list classes ("set"); sigmoid ones are per label. No conformal calibration: null.
  const json& conformal = j["conformal"];
  const bool softmax = conformal.is_object() && conformal.contains("set");
  const bool calibrated = !ranked.empty() && !std::isnan(ranked.front().calibrated);
  // The number shown and ranked by is the calibrated probability; the model's raw output stays
  // visible, labelled as a score (it is not a probability: the package says so by calibrating).
  if (calibrated) {
    const json& cal = j["calibration"];
    std::string how = cal.is_object() ? cal.value("method", std::string()) : std::string();
    if (cal.is_object() && cal.contains("images")) {
      how += ", fitted on " + std::to_string(cal["images"].get<long long>()) + " images";
    }
    std::printf("  probability = calibrated (%s); score = the model's uncalibrated output\n",
                how.c_str());
  } else {
    std::printf(
        "  uncalibrated package: the numbers are model scores, not calibrated "
        "probabilities\n");
  }
  std::map<std::string, json> ops;
  for (const auto& e : j["labels"])
    ops[e["label"].get<std::string>()] = e.value("operating_point", json());
  for (const auto& s : ranked) {
    const json& op = ops[s.label];
    if (calibrated) {
      std::printf("  %-22s %7s", s.label.c_str(), percent(s.calibrated).c_str());
    } else {
      std::printf("  %-22s score %7s", s.label.c_str(), percent(s.probability).c_str());
    }
    if (s.decision >= 0) std::printf("  %s", decision_text(s.decision, op).c_str());
    if (s.refer) {
      if (op.is_object() && op.contains("refer_band") && op["refer_band"].is_array()) {
        std::printf("  REFER: in the refer band %s-%s",
                    percent_limit(op["refer_band"][0].get<double>()).c_str(),
                    percent_limit(op["refer_band"][1].get<double>()).c_str());
        std::printf(" (%s)", refer_rule_text(op).c_str());
      } else {
        std::printf("  REFER to a radiologist");
      }
    }
    if (!softmax && s.conformal >= 0) {
      // The label's conformal set at 1 - alpha: one answer, both (the model cannot tell) or
      // none (neither answer is likely enough).
      static const char* const kSets[] = {"set {} (neither answer: uncertain)", "set {negative}",
                                          "set {positive}", "uncertain: {negative, positive}"};
      std::printf("  %s", kSets[s.conformal & 3]);
    }
    if (calibrated) std::printf("  (score %s)", percent(s.probability).c_str());
    std::printf("\n");
  }
  if (!std::isnan(alpha)) {
    if (softmax) {
      std::string set;
      for (const auto& s : ranked) {
        if (s.conformal == MV_CONFORMAL_IN_SET) set += (set.empty() ? "" : ", ") + s.label;
      }
      const auto size = std::count_if(ranked.begin(), ranked.end(), [](const auto& s) {
        return s.conformal == MV_CONFORMAL_IN_SET;
      });
      // One class: the model commits at 1 - alpha; several: it cannot choose among them; none:
      // no class is likely enough (an unusual image).
      std::printf("  %s {%s} at %.0f%% coverage\n",
                  size == 1   ? "set"
                  : size == 0 ? "no class likely enough: set"
                              : "uncertain:",
                  set.c_str(), 100.0 * (1.0 - alpha));
    } else {
      std::printf("  (conformal sets at %.0f%% coverage per label)\n", 100.0 * (1.0 - alpha));
    }
  }
  const json& ood = j["ood"];
  if (ood.is_object() && ood["score"].is_number()) {
    // Issue 16: how unlike the calibration images this image's outputs are (not a probability).
    std::printf(
        "  out-of-distribution score %.1f (%s, percentile %.0f of the calibration "
        "images; far above %.0f)%s\n",
        ood["score"].get<double>(), ood["label"].get<std::string>().c_str(),
        ood["percentile"].get<double>(), ood["far_above"].get<double>(),
        ood["far"].get<bool>() ? ": FAR" : "");
  }
  for (const auto& w : r.warnings()) std::printf("  warning: %s\n", w.c_str());
}

struct ClassifyArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string device = "auto";
  int threads = 0;
  int batch = 8;
  bool json = false;
  bool reduced = false;
  std::string dicom_sr;  // folder for <stem>.sr.dcm (DICOM SR per image), or empty
};

int run_classify(const ClassifyArgs& a) {
  medvision::Model model;
  try {
    medvision::ModelOptions mo;
    mo.device = a.device;
    mo.num_threads = a.threads;
    mo.precision = a.reduced ? MV_PRECISION_REDUCED : MV_PRECISION_FLOAT32;
    model = medvision::Model::load(a.model, mo);
  } catch (const medvision::Exception& e) {
    std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
    return exit_code(e.status());
  }
  const auto files = expand_inputs(a.inputs);
  if (files.empty()) {
    std::fprintf(stderr, "medvision: no input files\n");
    return kUsageError;
  }
  if (!a.dicom_sr.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.dicom_sr, ec);
    if (ec) {
      std::fprintf(stderr, "medvision: cannot create %s: %s\n", a.dicom_sr.c_str(),
                   ec.message().c_str());
      return exit_code(MV_ERR_IO);
    }
  }
  // Output stems that never collide: "image", then "image-2" for a second image.dcm.
  std::set<std::string> used;
  const auto sr_path = [&](const std::string& file) {
    const std::string base = std::filesystem::path(file).stem().string();
    std::string stem = base;
    for (int i = 2; used.count(stem); ++i) stem = base + "-" + std::to_string(i);
    used.insert(stem);
    return (std::filesystem::path(a.dicom_sr) / (stem + ".sr.dcm")).string();
  };
  int rc = 0;
  bool first = true;
  Progress progress(files.size());
  const size_t batch = static_cast<size_t>(std::max(1, a.batch));
  for (size_t start = 0; start < files.size(); start += batch) {
    const size_t end = std::min(files.size(), start + batch);
    std::vector<medvision::Image> images;
    std::vector<std::string> names;
    for (size_t i = start; i < end; ++i) {
      try {
        images.push_back(medvision::Image::load(files[i]));
        names.push_back(files[i]);
      } catch (const medvision::Exception& e) {
        rc = exit_code(e.status());
        if (a.json) {
          std::cout << json{{"file", files[i]}, {"error", e.status_name()}, {"message", e.what()}}
                           .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    << "\n";
        } else {
          std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
        }
      }
    }
    if (!images.empty()) {
      std::vector<const medvision::Image*> ptrs;
      for (const auto& im : images) ptrs.push_back(&im);
      try {
        const auto results = model.run_batch(ptrs);
        for (size_t i = 0; i < results.size(); ++i) {
          std::string sr;
          if (!a.dicom_sr.empty()) {
            sr = sr_path(names[i]);
            try {
              results[i].write_dicom_sr(images[i], sr);
            } catch (const medvision::Exception& e) {
              rc = exit_code(e.status());
              std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
              sr.clear();
            }
          }
          if (a.json) {
            json j = json::parse(results[i].json());
            j["file"] = names[i];
            if (!sr.empty()) j["dicom_sr"] = sr;
            std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
          } else {
            print_result_human(names[i], results[i], first);
            if (!sr.empty()) std::printf("  DICOM SR written to %s\n", sr.c_str());
            first = false;
          }
        }
      } catch (const medvision::Exception& e) {
        rc = exit_code(e.status());
        std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
      }
    }
    progress.update(end);
  }
  return rc;
}

// ---------------------------------------------------------------------------------------------
// bench: decode + run timings (docs/performance.md). Stages per file and repetition:
//   decode   Image::load (file -> float32 physical units, Modality LUT included), one image;
//   run      Model::run_batch on `batch` copies of the decoded image (preprocess + inference +
//            activation: the public API does them in one call);
//   e2e      decode x batch + run, i.e. images/s = batch / (batch * decode + run), taken from
//            the stage medians (decoding `batch` separate files costs batch decodes).
// Also `model_224`: run on a synthetic 224x224 grey image, whose preprocessing is nearly free, so
// it approximates inference alone.

struct BenchArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string device = "auto";
  int threads = 0;
  int batch = 1;
  int repeat = 10;
  int warmup = 1;
  bool json = false;
};

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

// Linear-interpolated percentile (numpy's default) of `v` (copied, sorted).
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double rank = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

json stage_json(const std::vector<double>& ms) {
  return json{{"p50", percentile(ms, 50)},
              {"p95", percentile(ms, 95)},
              {"min", *std::min_element(ms.begin(), ms.end())},
              {"samples", ms}};
}

template <class F>
std::vector<double> time_n(int warmup, int repeat, F&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    const double t0 = now_ms();
    fn();
    ms.push_back(now_ms() - t0);
  }
  return ms;
}

int run_bench(const BenchArgs& a) {
  const double t_start = now_ms();
  medvision::ModelOptions mo;
  mo.device = a.device;
  mo.num_threads = a.threads;
  medvision::Model model;
  try {
    model = medvision::Model::load(a.model, mo);
  } catch (const medvision::Exception& e) {
    std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
    return exit_code(e.status());
  }
  const double load_ms = now_ms() - t_start;
  const auto files = expand_inputs(a.inputs);
  if (files.empty()) {
    std::fprintf(stderr, "medvision: no input files\n");
    return kUsageError;
  }
  const size_t batch = static_cast<size_t>(std::max(1, a.batch));
  const int repeat = std::max(1, a.repeat), warmup = std::max(0, a.warmup);

  json out;
  out["tool"] = "medvision";
  out["version"] = medvision::version();
  out["model"] = model.name();
  out["device"] = model.device();
  out["threads"] = a.threads;
  out["batch"] = batch;
  out["repeat"] = repeat;
  out["load_ms"] = load_ms;
  out["files"] = json::array();
  double first_result_ms = -1;
  for (const auto& f : files) {
    try {
      medvision::Image img = medvision::Image::load(f);
      if (first_result_ms < 0) {
        (void)model.run(img);
        first_result_ms = now_ms() - t_start;
      }
      const auto decode = time_n(warmup, repeat, [&] { img = medvision::Image::load(f); });
      std::vector<const medvision::Image*> ptrs(batch, &img);
      const auto run = time_n(warmup, repeat, [&] {
        if (batch == 1) {
          (void)model.run(img);
        } else {
          (void)model.run_batch(ptrs);
        }
      });
      const double e2e = static_cast<double>(batch) * percentile(decode, 50) + percentile(run, 50);
      json j{{"file", f},
             {"decode_ms", stage_json(decode)},
             {"run_ms", stage_json(run)},
             {"e2e_ms_p50", e2e},
             {"images_per_s", 1000.0 * static_cast<double>(batch) / e2e}};
      if (batch == 1) {
        // Per repetition decode + run, for a p95 of the whole path.
        std::vector<double> sum(decode.size());
        for (size_t i = 0; i < decode.size(); ++i) sum[i] = decode[i] + run[i];
        j["e2e_ms"] = stage_json(sum);
      }
      out["files"].push_back(j);
      if (!a.json) {
        std::printf("%s\n  decode          p50 %8.2f ms  p95 %8.2f ms\n", f.c_str(),
                    percentile(decode, 50), percentile(decode, 95));
        std::printf("  preprocess+infer p50 %7.2f ms  p95 %8.2f ms  (batch %zu)\n",
                    percentile(run, 50), percentile(run, 95), batch);
        std::printf("  end to end      p50 %8.2f ms  %.2f images/s\n", e2e,
                    1000.0 * static_cast<double>(batch) / e2e);
      }
    } catch (const medvision::Exception& e) {
      std::fprintf(stderr, "medvision: %s: %s: %s\n", f.c_str(), e.status_name(), e.what());
      return exit_code(e.status());
    }
  }
  // model_224: a 224x224 grey ramp; scale/resize/normalize on 50k values cost well under 1 ms.
  std::vector<float> ramp(224 * 224);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i % 997);
  mv_tensor_view v{};
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_FLOAT32;
  v.data = ramp.data();
  v.ndim = 2;
  v.shape[0] = v.shape[1] = 224;
  v.strides[0] = 224 * sizeof(float);
  v.strides[1] = sizeof(float);
  const medvision::Image small = medvision::Image::from_pixels(v);
  std::vector<const medvision::Image*> small_ptrs(batch, &small);
  const auto m224 = time_n(warmup, repeat, [&] {
    if (batch == 1) {
      (void)model.run(small);
    } else {
      (void)model.run_batch(small_ptrs);
    }
  });
  out["model_224_ms"] = stage_json(m224);
  out["first_result_ms"] = first_result_ms;
  if (a.json) {
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::printf(
        "model load %.1f ms, first result %.1f ms after start; 224x224 input p50 %.2f ms "
        "(batch %zu, ~inference alone)\n",
        load_ms, first_result_ms, percentile(m224, 50), batch);
  }
  return 0;
}

int run_models(bool as_json) {
  size_t needed = 0;
  medvision::check(mv_model_list(nullptr, 0, &needed));
  std::string buf(needed, '\0');
  medvision::check(mv_model_list(buf.data(), buf.size(), &needed));
  std::stringstream ss(buf.c_str());
  std::string dir;
  int rc = 0;
  while (std::getline(ss, dir)) {
    if (dir.empty()) continue;
    try {
      medvision::ModelOptions mo;
      mo.device = "cpu";
      mo.warmup = false;
      mo.optimize = false;
      const auto m = medvision::Model::load(dir, mo);
      const auto labels = m.labels();
      if (as_json) {
        std::cout << json{{"name", m.name()},
                          {"version", m.version()},
                          {"path", dir},
                          {"task",
                           m.task() == MV_TASK_SEGMENTATION ? "segmentation" : "classification"},
                          {"labels", labels}}
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        std::string l;
        for (const auto& x : labels) l += (l.empty() ? "" : ", ") + x;
        std::printf("%-20s %-8s %-15s %s\n    %s\n", m.name().c_str(), m.version().c_str(),
                    m.task() == MV_TASK_SEGMENTATION ? "segmentation" : "classification", l.c_str(),
                    dir.c_str());
      }
    } catch (const medvision::Exception& e) {
      std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
      rc = exit_code(e.status());
    }
  }
  return rc;
}

struct ExplainArgs {
  std::string npy;
  std::string nifti;
  std::string dicom_sc;
  std::vector<std::string> inputs;  // several: stacked into the channels of one image
  std::string model;
  std::string label;
  std::string out = "overlay.png";
  std::string method = "gradcam";
  std::string device = "auto";
  float alpha = 0.5f;
  bool json = false;
};

int run_explain(const ExplainArgs& a) {
  mv_cam_method method = MV_CAM_GRADCAM;
  if (a.method == "gradcam++" || a.method == "gradcampp") {
    method = MV_CAM_GRADCAM_PLUS_PLUS;
  } else if (a.method == "cam") {
    method = MV_CAM_CAM;
  } else if (a.method != "gradcam") {
    std::fprintf(stderr, "medvision: --method must be gradcam, gradcam++ or cam\n");
    return kUsageError;
  }
  medvision::ModelOptions mo;
  mo.device = a.device;
  const auto model = medvision::Model::load(a.model, mo);
  int32_t label = -1;
  if (!a.label.empty()) {
    const auto labels = model.labels();
    const auto it = std::find(labels.begin(), labels.end(), a.label);
    if (it == labels.end()) {
      std::string all;
      for (const auto& l : labels) all += (all.empty() ? "" : ", ") + l;
      std::fprintf(stderr, "medvision: model %s has no label '%s' (labels: %s)\n",
                   model.name().c_str(), a.label.c_str(), all.c_str());
      return kUsageError;
    }
    label = static_cast<int32_t>(it - labels.begin());
  }
  std::vector<medvision::Image> parts;
  for (const auto& in : a.inputs) parts.push_back(medvision::Image::load(in));
  std::vector<const medvision::Image*> ptrs;
  for (const auto& p : parts) ptrs.push_back(&p);
  const medvision::Image image =
      parts.size() == 1 ? std::move(parts.front()) : medvision::Image::stack(ptrs);
  std::string file;
  for (const auto& in : a.inputs) file += (file.empty() ? "" : "+") + in;
  const auto heatmap = medvision::explain(model, image, method, label);
  heatmap.write_png(a.out, &image, a.alpha);
  const medvision::Image map = heatmap.image();
  if (!a.npy.empty()) {
    std::vector<int64_t> shape = {heatmap.height(), heatmap.width()};
    if (map.depth() > 1) shape.insert(shape.begin(), map.depth());
    mvcli::write_npy(a.npy, heatmap.data(), shape);
  }
  if (!a.nifti.empty()) map.write_nifti(a.nifti);
  if (!a.dicom_sc.empty()) heatmap.write_dicom_sc(a.dicom_sc, image, a.alpha);
  const bool segmentation = model.task() == MV_TASK_SEGMENTATION;
  const float p = heatmap.probability();
  json h = {{"label", heatmap.label()},
            {"method", a.method},
            {"png", a.out},
            {"probability", std::isfinite(p) ? json(p) : json(nullptr)},
            {"slice", heatmap.slice()}};
  if (segmentation) h["region_voxels"] = heatmap.region_voxels();
  if (!a.dicom_sc.empty()) h["dicom_sc"] = a.dicom_sc;
  if (!a.nifti.empty()) h["nifti"] = a.nifti;
  if (!a.npy.empty()) h["npy"] = a.npy;
  if (segmentation) {
    // The segmentation itself is `medvision segment`; this reports the explained region only.
    if (a.json) {
      json j = {{"file", file},           {"model", model.name()},    {"version", model.version()},
                {"task", "segmentation"}, {"notice", model.notice()}, {"heatmap", h}};
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::printf("%s\n  model %s %s (%s)\n", file.c_str(), model.name().c_str(),
                  model.version().c_str(), model.notice().c_str());
      std::printf("  '%s' region: %lld voxels, mean probability %.3f\n", heatmap.label().c_str(),
                  static_cast<long long>(heatmap.region_voxels()), static_cast<double>(p));
      std::printf("  heat map (%s) for '%s' written to %s (slice %lld)\n", a.method.c_str(),
                  heatmap.label().c_str(), a.out.c_str(), static_cast<long long>(heatmap.slice()));
    }
  } else {
    const auto result = model.run(image);
    if (a.json) {
      json j = json::parse(result.json());
      j["file"] = file;
      j["heatmap"] = h;
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      print_result_human(file, result, true);
      std::printf("  heat map (%s) for '%s' written to %s\n", a.method.c_str(),
                  heatmap.label().c_str(), a.out.c_str());
    }
  }
  if (!a.json) {
    if (!a.nifti.empty()) std::printf("  heat map volume written to %s\n", a.nifti.c_str());
    if (!a.dicom_sc.empty()) {
      std::printf("  DICOM Secondary Capture written to %s\n", a.dicom_sc.c_str());
    }
  }
  return 0;
}

struct CalibrateArgs {
  bool check = false;
  std::vector<std::string> inputs;
  std::string model;
  std::string labels;
  std::string out;
  std::string method = "temperature";
  std::string rule = "youden";
  double target = 0.9;
  std::string refer_band = "predictive-value";
  double refer = 0.1;
  double refer_logit = 0.4;
  double refer_npv = 0.95;
  double refer_ppv = 0.9;
  double alpha = 0.0;
  std::string conformal_score = "lac";
  std::string device = "auto";
  int batch = 16;
  std::string version;
};

// Raw outputs of `model` for every file, in order (label_count values per image).
std::vector<float> collect_logits(const medvision::Model& model,
                                  const std::vector<std::string>& files, int batch_size) {
  const size_t labels = model.labels().size();
  std::vector<float> logits;
  Progress progress(files.size());
  const size_t batch = static_cast<size_t>(std::max(1, batch_size));
  for (size_t start = 0; start < files.size(); start += batch) {
    const size_t end = std::min(files.size(), start + batch);
    std::vector<medvision::Image> images;
    for (size_t i = start; i < end; ++i) images.push_back(medvision::Image::load(files[i]));
    std::vector<const medvision::Image*> ptrs;
    for (const auto& im : images) ptrs.push_back(&im);
    for (const auto& r : model.run_batch(ptrs)) {
      for (size_t k = 0; k < labels; ++k) logits.push_back(mv_result_logit(r.get(), k));
    }
    progress.update(end);
  }
  return logits;
}

// `medvision calibrate --check`: has this batch's score distribution moved away from the one
// recorded at calibration time? Exit code 2 when a label shifted.
int run_drift_check(const medvision::Model& model, const CalibrateArgs& a) {
  const auto files = expand_inputs(a.inputs);
  if (files.empty()) {
    std::fprintf(stderr, "medvision: --check needs the images of the new batch\n");
    return kUsageError;
  }
  const auto logits = collect_logits(model, files, a.batch);
  size_t needed = 0;
  medvision::check(
      mv_model_drift_check(model.get(), logits.data(), files.size(), nullptr, 0, &needed));
  std::string buf(needed, '\0');
  medvision::check(mv_model_drift_check(model.get(), logits.data(), files.size(), buf.data(),
                                        buf.size(), &needed));
  const json report = json::parse(buf.c_str());
  std::printf(
      "drift check of %s %s on %zu images: %s\n", model.name().c_str(), model.version().c_str(),
      files.size(),
      report["shifted"].get<bool>() ? "SHIFTED - recalibrate for this site" : "no shift detected");
  for (const auto& l : report["labels"]) {
    std::printf("  %-20s KS %.3f (p %.2g)  PSI %.3f  %s\n", l["label"].get<std::string>().c_str(),
                l["ks"].get<double>(), l["p_value"].get<double>(), l["psi"].get<double>(),
                l["shifted"].get<bool>() ? "shifted" : "");
  }
  return report["shifted"].get<bool>() ? 2 : 0;
}

int run_calibrate(const CalibrateArgs& a) {
  medvision::ModelOptions mo;
  mo.device = a.device;
  const auto model = medvision::Model::load(a.model, mo);
  if (a.check) return run_drift_check(model, a);
  if (a.labels.empty() || a.out.empty()) {
    std::fprintf(stderr, "medvision: calibrate needs --labels and --out (or --check FILE...)\n");
    return kUsageError;
  }
  const auto labels = model.labels();
  const json manifest = json::parse(model.manifest_json());
  const bool softmax = manifest["output"]["activation"] == "softmax";
  // Checked before any image is read: a bad choice should not cost a pass over the data.
  if (a.conformal_score != "lac" && a.conformal_score != "aps") {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "--conformal-score: lac or aps, not '" + a.conformal_score + "'");
  }
  if (a.conformal_score == "aps" && a.alpha <= 0.0) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "--conformal-score aps needs --conformal ALPHA (conformal sets)");
  }
  if (a.conformal_score == "aps" && !softmax) {
    throw medvision::Exception(
        MV_ERR_INVALID_ARGUMENT,
        "--conformal-score aps needs a softmax (single-label) model; " + model.name() +
            " is sigmoid (multi-label), whose conformal sets are per label: use lac");
  }
  const LabelledSet set = read_labels_csv(a.labels, labels, softmax);

  mv_calibrate_options o;
  medvision::check(mv_calibrate_options_default(&o));
  if (a.method == "temperature")
    o.method = MV_CALIBRATION_TEMPERATURE;
  else if (a.method == "platt")
    o.method = MV_CALIBRATION_PLATT;
  else if (a.method == "isotonic")
    o.method = MV_CALIBRATION_ISOTONIC;
  else
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, "--method: temperature, platt or isotonic");
  if (a.rule == "youden")
    o.rule = MV_OPERATING_YOUDEN;
  else if (a.rule == "sensitivity")
    o.rule = MV_OPERATING_SENSITIVITY;
  else if (a.rule == "specificity")
    o.rule = MV_OPERATING_SPECIFICITY;
  else
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "--rule: youden, sensitivity or specificity");
  o.target = a.target;
  if (a.refer_band == "logit")
    o.refer_mode = MV_REFER_LOGIT;
  else if (a.refer_band == "fixed")
    o.refer_mode = MV_REFER_FIXED;
  else if (a.refer_band == "predictive-value")
    o.refer_mode = MV_REFER_PREDICTIVE_VALUE;
  else if (a.refer_band == "none")
    o.refer_mode = MV_REFER_NONE;
  else
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "--refer-band: logit, fixed, predictive-value or none");
  o.refer_half_width = a.refer;
  o.refer_logit_half_width = a.refer_logit;
  o.refer_npv = a.refer_npv;
  o.refer_ppv = a.refer_ppv;
  o.conformal = a.alpha > 0.0;
  if (a.alpha > 0.0) o.alpha = a.alpha;
  o.conformal_score = a.conformal_score == "aps" ? MV_CONFORMAL_SCORE_APS : MV_CONFORMAL_SCORE_LAC;
  const std::string description = a.labels + " (" + std::to_string(set.paths.size()) + " images)";
  o.data_description = description.c_str();
  if (!a.version.empty()) o.version = a.version.c_str();

  const auto logits = collect_logits(model, set.paths, a.batch);
  medvision::check(mv_model_calibrate(model.get(), logits.data(), set.labels.data(),
                                      set.paths.size(), &o, a.out.c_str()));
  const auto report_path = std::filesystem::path(a.out) / "calibration-report.json";
  std::ifstream rf(report_path);
  const json report = json::parse(rf);
  const json out_manifest =
      json::parse(std::ifstream(std::filesystem::path(a.out) / "manifest.json"));
  std::printf("calibrated %s on %zu images (%s) -> %s (version %s)\n", model.name().c_str(),
              set.paths.size(), a.method.c_str(), a.out.c_str(),
              out_manifest["version"].get<std::string>().c_str());
  for (const auto& name : labels) {
    const auto& b = report["before"]["labels"][name];
    const auto& af = report["after"]["labels"][name];
    std::printf(
        "  %-20s ECE %.4f -> %.4f   Brier %.4f -> %.4f   AUROC %s\n", name.c_str(),
        b.value("ece", 0.0), af.value("ece", 0.0), b.value("brier", 0.0), af.value("brier", 0.0),
        af["auroc"].is_null()
            ? "n/a"
            : af["auroc"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    const auto& t = out_manifest["thresholds"];
    if (t.is_object() && t.contains(name))
      std::printf("  %-20s operating point %s\n", "",
                  t[name].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  const auto& conformal = out_manifest["calibration"].value("conformal", json());
  if (conformal.is_object()) {
    std::printf(
        "  conformal sets: alpha %s, score %s, %s held-out images, qhat %s\n",
        conformal["alpha"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str(),
        conformal.value("score", "lac").c_str(),
        conformal.value("n", json())
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
            .c_str(),
        conformal["qhat"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  std::printf("  report: %s, reliability diagram: %s\n", report_path.string().c_str(),
              (std::filesystem::path(a.out) / "reliability.png").string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "medvision: decode medical images and run medvision models.\n"
      "Results support clinicians; they are not for diagnostic use."};
  app.set_version_flag("--version", std::string("medvision ") + medvision::version());
  app.require_subcommand(1);

  std::vector<std::string> info_files;
  bool info_json = false;
  int info_frame = -1;
  auto* info = app.add_subcommand("info", "Decode images and print what medvision sees");
  info->add_option("FILE", info_files,
                   "DICOM, NIfTI, PNG, JPEG, TIFF or BMP files, or DICOM series folders")
      ->required();
  info->add_flag("--json", info_json, "One JSON object per line (JSON Lines)");
  info->add_option("--frame", info_frame, "Multi-frame DICOM: decode only this frame")
      ->default_val(-1);

  ClassifyArgs ca;
  auto* classify = app.add_subcommand("classify", "Classify images with a model package");
  classify->add_option("FILE", ca.inputs, "Images, or folders (searched recursively)")->required();
  classify->add_option("-m,--model", ca.model, "Model package name or folder")->required();
  classify->add_option("--device", ca.device, "auto | cpu | cuda | cuda:N")->default_val("auto");
  classify->add_option("--threads", ca.threads, "CPU threads (0: LibTorch default)")
      ->default_val(0);
  classify->add_option("--batch", ca.batch, "Images per inference batch")->default_val(8);
  classify->add_flag("--reduced-precision", ca.reduced,
                     "bf16 on CPU (where supported), fp16 on CUDA");
  classify->add_flag("--json", ca.json, "One JSON object per line (JSON Lines)");
  classify->add_option("--dicom-sr", ca.dicom_sr,
                       "DICOM inputs: write a DICOM SR (TID 1500 measurement report) per image "
                       "as <stem>.sr.dcm into this folder, in the source's study");

  ExplainArgs ea;
  auto* explain = app.add_subcommand("explain", "Write a heat map of where a model looked");
  explain
      ->add_option("FILE", ea.inputs,
                   "An image (several: stacked into the channels of one image, e.g. MRI "
                   "sequences)")
      ->required();
  explain->add_option("-m,--model", ea.model, "Model package name or folder")->required();
  explain->add_option("--label", ea.label,
                      "Label (segmentation: class) to explain (default: the most probable "
                      "label; the only foreground class)");
  explain->add_option("-o,--out", ea.out, "Output PNG (overlay)")->default_val("overlay.png");
  explain->add_option("--method", ea.method, "gradcam | gradcam++ | cam")->default_val("gradcam");
  explain->add_option("--alpha", ea.alpha, "Overlay opacity at the warmest point")
      ->default_val(0.5f);
  explain->add_option("--device", ea.device, "auto | cpu | cuda | cuda:N")->default_val("auto");
  explain->add_flag("--json", ea.json, "Print the result as JSON");
  explain->add_option("--dicom-sc", ea.dicom_sc,
                      "Also write the overlay as a DICOM Secondary Capture in FILE's study "
                      "(FILE must be DICOM)");
  explain->add_option("--npy", ea.npy,
                      "Also write the heat map (float32, image size; 3D: depth x height x "
                      "width) as .npy");
  explain->add_option("--nifti", ea.nifti,
                      "Also write the heat map as NIfTI (.nii/.nii.gz) on the image's grid");

  BenchArgs ba;
  auto* bench = app.add_subcommand("bench", "Time decode and model runs (p50/p95 per stage)");
  bench->add_option("FILE", ba.inputs, "Images, or folders (searched recursively)")->required();
  bench->add_option("-m,--model", ba.model, "Model package name or folder")->required();
  bench->add_option("--device", ba.device, "auto | cpu | cuda | cuda:N")->default_val("auto");
  bench->add_option("--threads", ba.threads, "CPU threads (0: LibTorch default)")->default_val(0);
  bench->add_option("--batch", ba.batch, "Images per model run")->default_val(1);
  bench->add_option("--repeat", ba.repeat, "Timed repetitions per stage")->default_val(10);
  bench->add_option("--warmup", ba.warmup, "Untimed repetitions first")->default_val(1);
  bench->add_flag("--json", ba.json, "One JSON object with every sample");

  CalibrateArgs cal;
  auto* calibrate = app.add_subcommand(
      "calibrate", "Fit calibration and operating points; write a new package version");
  calibrate->add_option("-m,--model", cal.model, "Model package name or folder")->required();
  calibrate->add_option("--labels", cal.labels,
                        "CSV: path,label (names, '|'-separated) or path,<label>,... (0/1)");
  calibrate->add_option("-o,--out", cal.out, "Folder for the calibrated package");
  calibrate->add_flag("--check", cal.check,
                      "Drift check: compare FILE...'s scores with the calibration-time ones");
  calibrate->add_option("FILE", cal.inputs, "--check: images of the new batch (or folders)");
  calibrate->add_option("--method", cal.method, "temperature | platt | isotonic")
      ->default_val("temperature");
  calibrate->add_option("--rule", cal.rule, "Operating point: youden | sensitivity | specificity")
      ->default_val("youden");
  calibrate->add_option("--target", cal.target, "Target sensitivity or specificity")
      ->default_val(0.9);
  auto* refer_band =
      calibrate
          ->add_option("--refer-band", cal.refer_band,
                       "Refer band: predictive-value (NPV below, PPV above) | logit (odds within "
                       "e^W of the threshold's) | fixed | none")
          ->default_val("predictive-value");
  auto* refer_fixed =
      calibrate
          ->add_option("--refer", cal.refer,
                       "Fixed band half-width around the threshold (implies --refer-band fixed "
                       "unless that is given; 0: no band)")
          ->default_val(0.1);
  calibrate->add_option("--refer-logit", cal.refer_logit, "Logit band half-width W in log-odds")
      ->default_val(0.4);
  calibrate->add_option("--refer-npv", cal.refer_npv, "predictive-value band: NPV below it")
      ->default_val(0.95);
  calibrate->add_option("--refer-ppv", cal.refer_ppv, "predictive-value band: PPV above it")
      ->default_val(0.9);
  calibrate->add_option("--conformal", cal.alpha, "Also fit conformal sets with this alpha")
      ->default_val(0.0);
  calibrate
      ->add_option("--conformal-score", cal.conformal_score,
                   "Conformal score: lac (1 - p of the true class; smallest sets) | aps (mass of "
                   "the classes ranked at or above it; adaptive sets, softmax models only)")
      ->default_val("lac");
  calibrate->add_option("--package-version", cal.version,
                        "Version of the new package (default: <version>+cal)");
  calibrate->add_option("--device", cal.device, "auto | cpu | cuda | cuda:N")->default_val("auto");

  mvcli::SegmentArgs sa;
  mvcli::add_segment_command(app, sa);
  mvcli::EvaluateArgs eva;
  mvcli::add_evaluate_command(app, eva);

  bool models_json = false;
  auto* models = app.add_subcommand("models", "List the model packages on the search path");
  models->add_flag("--json", models_json, "JSON Lines");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kUsageError;
  }
  try {
    if (info->parsed()) return run_info(info_files, info_json, info_frame);
    if (classify->parsed()) return run_classify(ca);
    if (models->parsed()) return run_models(models_json);
    if (bench->parsed()) return run_bench(ba);
    if (explain->parsed()) return run_explain(ea);
    if (calibrate->parsed()) {
      if (refer_fixed->count() > 0 && refer_band->count() == 0) cal.refer_band = "fixed";
      return run_calibrate(cal);
    }
    if (sa.command->parsed()) return mvcli::run_segment(sa);
    if (eva.command->parsed()) return mvcli::run_evaluate(eva);
  } catch (const medvision::Exception& e) {
    std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
    return exit_code(e.status());
  }
  return kUsageError;
}
