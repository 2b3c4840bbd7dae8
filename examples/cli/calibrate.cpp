// medvision calibrate: fit calibration, operating points and conformal sets on a labelled set and
// write a new package version; with --check, a drift check of a new batch's scores.

#include "calibrate.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "labels_csv.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

namespace {

using nlohmann::json;

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

}  // namespace

void add_calibrate_command(CLI::App& app, CalibrateArgs& a) {
  auto* c = app.add_subcommand("calibrate",
                               "Fit calibration and operating points; write a new package version");
  c->add_option("-m,--model", a.model, "Model package name or folder")->required();
  c->add_option("--labels", a.labels,
                "CSV: path,label (names, '|'-separated) or path,<label>,... (0/1)");
  c->add_option("-o,--out", a.out, "Folder for the calibrated package");
  c->add_flag("--check", a.check,
              "Drift check: compare FILE...'s scores with the calibration-time ones");
  c->add_option("FILE", a.inputs, "--check: images of the new batch (or folders)");
  c->add_option("--method", a.method, "temperature | platt | isotonic")->default_val("temperature");
  c->add_option("--rule", a.rule, "Operating point: youden | sensitivity | specificity")
      ->default_val("youden");
  c->add_option("--target", a.target, "Target sensitivity or specificity")->default_val(0.9);
  auto* refer_band =
      c->add_option("--refer-band", a.refer_band,
                    "Refer band: predictive-value (NPV below, PPV above) | logit (odds within "
                    "e^W of the threshold's) | fixed | none")
          ->default_val("predictive-value");
  auto* refer_fixed =
      c->add_option("--refer", a.refer,
                    "Fixed band half-width around the threshold (implies --refer-band fixed "
                    "unless that is given; 0: no band)")
          ->default_val(0.1);
  c->add_option("--refer-logit", a.refer_logit, "Logit band half-width W in log-odds")
      ->default_val(0.4);
  c->add_option("--refer-npv", a.refer_npv, "predictive-value band: NPV below it")
      ->default_val(0.95);
  c->add_option("--refer-ppv", a.refer_ppv, "predictive-value band: PPV above it")
      ->default_val(0.9);
  c->add_option("--conformal", a.alpha, "Also fit conformal sets with this alpha")
      ->default_val(0.0);
  c->add_option("--conformal-score", a.conformal_score,
                "Conformal score: lac (1 - p of the true class; smallest sets) | aps (mass of "
                "the classes ranked at or above it; adaptive sets, softmax models only)")
      ->default_val("lac");
  c->add_option("--package-version", a.version,
                "Version of the new package (default: <version>+cal)");
  c->add_option("--device", a.device, "auto | cpu | cuda | cuda:N")->default_val("auto");
  a.command = c;
  a.refer_band_option = refer_band;
  a.refer_option = refer_fixed;
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
  // --refer alone implies --refer-band fixed.
  const bool refer_fixed = a.refer_option != nullptr && a.refer_option->count() > 0 &&
                           (a.refer_band_option == nullptr || a.refer_band_option->count() == 0);
  const std::string refer_band = refer_fixed ? "fixed" : a.refer_band;
  if (refer_band == "logit")
    o.refer_mode = MV_REFER_LOGIT;
  else if (refer_band == "fixed")
    o.refer_mode = MV_REFER_FIXED;
  else if (refer_band == "predictive-value")
    o.refer_mode = MV_REFER_PREDICTIVE_VALUE;
  else if (refer_band == "none")
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

}  // namespace mvcli
