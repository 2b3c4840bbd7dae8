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
#include "run_chunks.hpp"

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

// Raw outputs of `model` for `files` through the streaming pipeline (mv_model_run_many), as
// classify runs it. Unreadable files are reported by name on stderr and skipped; `kept` gets
// the files that produced outputs.
std::vector<float> stream_logits(const medvision::Model& model,
                                 const std::vector<std::string>& files, int batch_size,
                                 std::vector<std::string>* kept) {
  const size_t labels = model.labels().size();
  std::vector<float> logits;
  medvision::PipelineOptions po;
  po.batch_size = std::max(1, batch_size);
  run_chunks(
      model, files, po,
      [&](const std::vector<std::string>& names, const std::vector<medvision::ItemResult>& items) {
        for (size_t i = 0; i < items.size(); ++i) {
          if (!items[i].ok()) {
            std::fprintf(stderr, "medvision: skipped %s: %s: %s\n", names[i].c_str(),
                         mv_status_name(items[i].status), items[i].message.c_str());
            continue;
          }
          for (size_t k = 0; k < labels; ++k)
            logits.push_back(mv_result_logit(items[i].result.get(), k));
          kept->push_back(names[i]);
        }
      });
  return logits;
}

// `medvision calibrate --prior-shift FOLDER [--out DIR]`: the label priors at a new site from its
// unlabelled images; with --out, a package version corrected for them. Exit code 2 when no image
// could be read.
int run_prior_shift(const medvision::Model& model, const CalibrateArgs& a) {
  const auto files = expand_inputs({a.prior_shift});
  if (files.empty()) {
    std::fprintf(stderr, "medvision: --prior-shift %s: no images there\n", a.prior_shift.c_str());
    return kUsageError;
  }
  medvision::PriorShiftOptions o;
  o.set_source_prior(a.source_prior).set_version(a.version);
  std::vector<std::string> kept;
  const auto logits = stream_logits(model, files, a.batch, &kept);
  if (kept.empty()) {
    std::fprintf(stderr, "medvision: --prior-shift %s: none of the %zu files could be read\n",
                 a.prior_shift.c_str(), files.size());
    return 2;
  }
  o.set_data_description(a.prior_shift + " (" + std::to_string(kept.size()) +
                         " unlabelled images)");
  const json r = json::parse(
      a.out.empty() ? medvision::estimate_prior(model, logits.data(), kept.size(), o)
                    : medvision::adapt_prior(model, logits.data(), kept.size(), a.out, o));
  const json& ps = r["prior_shift"];
  const auto labels = model.labels();
  const bool softmax = model.activation() == MV_ACTIVATION_SOFTMAX;
  std::printf("prior shift of %s %s on %zu images of %s (%zu skipped): EM %s in %d iterations\n",
              model.name().c_str(), model.version().c_str(), kept.size(), a.prior_shift.c_str(),
              files.size() - kept.size(), ps["converged"].get<bool>() ? "converged" : "stopped",
              ps["iterations"].get<int>());
  for (size_t k = 0; k < labels.size(); ++k) {
    std::printf("  %-20s prevalence %.4f (calibration set) -> %.4f (estimated)", labels[k].c_str(),
                ps["source_prior"][k].get<double>(), ps["target_prior"][k].get<double>());
    if (!softmax) {
      const auto& t = ps["labels"][k]["lr_test"];
      std::printf("  LR test %.2f, p %.3g", t["statistic"].get<double>(),
                  t["p_value"].get<double>());
    }
    std::printf("\n");
    const auto& th = r["thresholds"];
    if (th.is_object() && th.contains(labels[k]) && th[labels[k]].contains("prior_shift")) {
      const auto& e = th[labels[k]];
      const auto& rec = e["prior_shift"];
      if (rec.value("decided_on", "") == "shifted_probabilities") {
        std::printf("  %-20s threshold %.4f -> %.4f (same decisions)", "",
                    rec["source_threshold"].get<double>(), e["threshold"].get<double>());
        if (rec["ppv"].is_number() && rec["npv"].is_number())
          std::printf("; at this prevalence PPV %.3f, NPV %.3f", rec["ppv"].get<double>(),
                      rec["npv"].get<double>());
        std::printf("\n");
      }
    }
  }
  const auto& t = ps["lr_test"];
  std::printf("  the priors changed? likelihood-ratio %.2f on %d dof, p %.3g\n",
              t["statistic"].get<double>(), t["dof"].get<int>(), t["p_value"].get<double>());
  for (const auto& w : ps["warnings"]) std::printf("  warning: %s\n", w.get<std::string>().c_str());
  if (r["drift"].is_object()) {
    std::printf("  drift check of the same images: %s\n",
                r["drift"]["shifted"].get<bool>()
                    ? "the score distribution moved (a prevalence change moves it too; see "
                      "docs/calibration.md, Prior shift)"
                    : "no shift detected");
    for (const auto& l : r["drift"]["labels"]) {
      std::printf("  %-20s KS %.3f (p %.2g)  PSI %.3f\n", l["label"].get<std::string>().c_str(),
                  l["ks"].get<double>(), l["p_value"].get<double>(), l["psi"].get<double>());
    }
  }
  if (r.contains("label_shift_fit") && r["label_shift_fit"].is_object()) {
    std::printf(
        "  the same images against the calibration scores reweighted to the estimate "
        "(a pure prevalence change):\n");
    for (const auto& l : r["label_shift_fit"]["labels"]) {
      std::printf("  %-20s KS %.3f (p %.2g)  %s\n", l["label"].get<std::string>().c_str(),
                  l["ks"].get<double>(), l["p_value"].get<double>(),
                  l["consistent"].get<bool>()
                      ? "consistent with a prevalence change"
                      : "NOT explained by a prevalence change: the images differ (check the site)");
    }
  }
  if (!a.out.empty()) {
    std::printf("  -> %s (version %s), report %s\n", a.out.c_str(),
                r["version"].get<std::string>().c_str(),
                (std::filesystem::path(a.out) / "prior-shift-report.json").string().c_str());
  }
  std::printf("  %s\n", r.value("notice", "Not for diagnostic use.").c_str());
  return 0;
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
  // Every default below is the library's (mv_calibrate_options_init()), never restated here.
  const medvision::CalibrateOptions d;
  c->add_option("--method", a.method, "temperature | platt | isotonic")
      ->default_val(medvision::to_string(d.method()));
  c->add_option("--rule", a.rule, "Operating point: youden | sensitivity | specificity")
      ->default_val(medvision::to_string(d.rule()));
  c->add_option("--target", a.target, "Target sensitivity or specificity")->default_val(d.target());
  auto* refer_band =
      c->add_option("--refer-band", a.refer_band,
                    "Refer band: predictive-value (NPV below, PPV above) | logit (odds within "
                    "e^W of the threshold's) | fixed | none")
          ->default_val(medvision::to_string(d.refer_mode()));
  auto* refer_fixed =
      c->add_option("--refer", a.refer,
                    "Fixed band half-width around the threshold (implies --refer-band fixed "
                    "unless that is given; 0: no band)")
          ->default_val(d.refer_half_width());
  c->add_option("--refer-logit", a.refer_logit, "Logit band half-width W in log-odds")
      ->default_val(d.refer_logit_half_width());
  c->add_option("--refer-npv", a.refer_npv, "predictive-value band: NPV below it")
      ->default_val(d.refer_npv());
  c->add_option("--refer-ppv", a.refer_ppv, "predictive-value band: PPV above it")
      ->default_val(d.refer_ppv());
  // Not a default of the library's: unset (0) fits no conformal sets.
  c->add_option("--conformal", a.alpha, "Also fit conformal sets with this alpha");
  c->add_option("--conformal-score", a.conformal_score,
                "Conformal score: lac (1 - p of the true class; smallest sets) | aps (mass of "
                "the classes ranked at or above it; adaptive sets, softmax models only)")
      ->default_val(medvision::to_string(d.conformal_score()));
  c->add_option("--prior-shift", a.prior_shift,
                "Re-estimate each label's prevalence from the unlabelled images in FOLDER (EM of "
                "Saerens et al. 2002) and, with --out, write a package version whose "
                "probabilities are corrected for it");
  c->add_option("--source-prior", a.source_prior,
                "--prior-shift: the calibration set's prevalence per label (default: the "
                "manifest's calibration.fitted_on)");
  c->add_option("--package-version", a.version,
                "Version of the new package (default: <version>+cal)");
  c->add_option("--device", a.device, kDeviceHelp);
  a.command = c;
  a.refer_band_option = refer_band;
  a.refer_option = refer_fixed;
}

int run_calibrate(const CalibrateArgs& a) {
  medvision::ModelOptions mo;
  mo.set_device(a.device);
  const auto model = medvision::Model::load(a.model, mo);
  if (a.check) return run_drift_check(model, a);
  if (!a.prior_shift.empty()) return run_prior_shift(model, a);
  if (a.labels.empty() || a.out.empty()) {
    std::fprintf(stderr, "medvision: calibrate needs --labels and --out (or --check FILE...)\n");
    return kUsageError;
  }
  const auto labels = model.labels();
  const bool softmax = model.activation() == MV_ACTIVATION_SOFTMAX;
  // Checked before any image is read: a bad choice should not cost a pass over the data. The
  // names are the library's (mv_<enum>_parse); so are the defaults of the flags left out.
  medvision::CalibrateOptions o;
  o.set_method(parse_option("--method", a.method, mv_calibration_method_name))
      .set_rule(parse_option("--rule", a.rule, mv_operating_rule_name))
      .set_conformal_score(
          parse_option("--conformal-score", a.conformal_score, mv_conformal_score_name));
  // --refer alone implies --refer-band fixed.
  const bool refer_fixed = a.refer_option != nullptr && a.refer_option->count() > 0 &&
                           (a.refer_band_option == nullptr || a.refer_band_option->count() == 0);
  o.set_refer_mode(refer_fixed ? MV_REFER_FIXED
                               : parse_option("--refer-band", a.refer_band, mv_refer_mode_name));
  if (o.conformal_score() == MV_CONFORMAL_SCORE_APS && a.alpha <= 0.0) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "--conformal-score aps needs --conformal ALPHA (conformal sets)");
  }
  if (o.conformal_score() == MV_CONFORMAL_SCORE_APS && !softmax) {
    throw medvision::Exception(
        MV_ERR_INVALID_ARGUMENT,
        "--conformal-score aps needs a softmax (single-label) model; " + model.name() +
            " is sigmoid (multi-label), whose conformal sets are per label: use lac");
  }
  const LabelledSet set = read_labels_csv(a.labels, labels, softmax);

  o.set_target(a.target)
      .set_refer_half_width(a.refer)
      .set_refer_logit_half_width(a.refer_logit)
      .set_refer_npv(a.refer_npv)
      .set_refer_ppv(a.refer_ppv)
      .set_conformal(a.alpha > 0.0)
      .set_data_description(a.labels + " (" + std::to_string(set.paths.size()) + " images)")
      .set_version(a.version);
  if (a.alpha > 0.0) o.set_alpha(a.alpha);

  const auto logits = collect_logits(model, set.paths, a.batch);
  // The report comes back from the library: nothing is read back from the new package.
  const json reported = json::parse(
      medvision::calibrate(model, logits.data(), set.labels.data(), set.paths.size(), a.out, o));
  const json& report = reported["report"];
  const json out_manifest = {{"version", reported["version"]},
                             {"thresholds", reported["thresholds"]},
                             {"calibration", reported["calibration"]}};
  const auto report_path = std::filesystem::path(a.out) / "calibration-report.json";
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
