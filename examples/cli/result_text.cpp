// The human-readable classification result (result_text.hpp).

#include "result_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

namespace mvcli {

using nlohmann::json;

std::string percent(double p) {
  if (p > 0.999) return ">99.9%";
  if (p < 0.001) return "<0.1%";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * p);
  return buf;
}

std::string percent_limit(double p) {
  char buf[24];
  std::snprintf(buf, sizeof buf, 100.0 * p >= 1.0 ? "%.1f%%" : "%.2f%%", 100.0 * p);
  return buf;
}

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
static std::string refer_rule_text(const json& op) {
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

}  // namespace mvcli
