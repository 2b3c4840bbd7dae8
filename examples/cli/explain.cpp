// medvision explain: a heat map of where a model looked.

#include "explain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"
#include "result_text.hpp"

namespace mvcli {

using nlohmann::json;

void add_explain_command(CLI::App& app, ExplainArgs& a) {
  auto* c = app.add_subcommand("explain", "Write a heat map of where a model looked");
  c->add_option("FILE", a.inputs,
                "An image (several: stacked into the channels of one image, e.g. MRI "
                "sequences)")
      ->required();
  c->add_option("-m,--model", a.model, "Model package name or folder")->required();
  c->add_option("--label", a.label,
                "Label (segmentation: class) to explain (default: the most probable "
                "label; the only foreground class)");
  c->add_option("-o,--out", a.out, "Output PNG (overlay)")->default_val("overlay.png");
  c->add_option("--method", a.method, "gradcam | gradcam++ | cam")
      ->default_val(medvision::to_string(medvision::ExplainOptions().method()));
  c->add_option("--alpha", a.alpha, "Overlay opacity at the warmest point")->default_val(0.5f);
  c->add_option("--device", a.device, kDeviceHelp);
  c->add_flag("--json", a.json, "Print the result as JSON");
  c->add_option("--dicom-sc", a.dicom_sc,
                "Also write the overlay as a DICOM Secondary Capture in FILE's study "
                "(FILE must be DICOM)");
  c->add_option("--npy", a.npy,
                "Also write the heat map (float32, image size; 3D: depth x height x "
                "width) as .npy");
  c->add_option("--nifti", a.nifti,
                "Also write the heat map as NIfTI (.nii/.nii.gz) on the image's grid");
  a.command = c;
}

int run_explain(const ExplainArgs& a) {
  medvision::ExplainOptions eo;  // the label left out: mv_explain_options_init()'s
  try {
    eo.set_method(medvision::parse<mv_cam_method>(a.method));
  } catch (const medvision::Exception&) {
    std::fprintf(stderr, "medvision: --method must be gradcam, gradcam++ or cam\n");
    return kUsageError;
  }
  medvision::ModelOptions mo;
  mo.set_device(a.device);
  const auto model = medvision::Model::load(a.model, mo);
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
    eo.set_label(static_cast<int32_t>(it - labels.begin()));
  }
  std::vector<medvision::Image> parts;
  for (const auto& in : a.inputs) parts.push_back(medvision::Image::load(in));
  std::vector<const medvision::Image*> ptrs;
  for (const auto& p : parts) ptrs.push_back(&p);
  const medvision::Image image =
      parts.size() == 1 ? std::move(parts.front()) : medvision::Image::stack(ptrs);
  std::string file;
  for (const auto& in : a.inputs) file += (file.empty() ? "" : "+") + in;
  const auto heatmap = medvision::explain(model, image, eo);
  heatmap.write_png(a.out, &image, a.alpha);
  const medvision::Image map = heatmap.image();
  if (!a.npy.empty()) {
    std::vector<int64_t> shape = {heatmap.height(), heatmap.width()};
    if (map.depth() > 1) shape.insert(shape.begin(), map.depth());
    write_npy(a.npy, heatmap.data(), shape);
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

}  // namespace mvcli
