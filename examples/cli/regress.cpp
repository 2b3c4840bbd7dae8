// medvision regress: measure images with a regression model package (one value per label).

#include "regress.hpp"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

using nlohmann::json;

void add_regress_command(CLI::App& app, RegressArgs& a) {
  auto* c = app.add_subcommand("regress", "Measure images with a regression model package");
  c->add_option("FILE", a.inputs, "Images, or folders (searched recursively)")->required();
  c->add_option("-m,--model", a.model, "Model package name or folder")->required();
  c->add_option("--device", a.device, "auto | cpu | cuda | cuda:N")->default_val("auto");
  c->add_flag("--json", a.json, "One JSON object per line (JSON Lines)");
  a.command = c;
}

int run_regress(const RegressArgs& a) {
  medvision::ModelOptions mo;
  mo.device = a.device;
  const medvision::Model model = medvision::Model::load(a.model, mo);
  if (model.task() != MV_TASK_REGRESSION) {
    std::fprintf(stderr, "medvision: %s is a %s model: use `medvision %s`\n", a.model.c_str(),
                 medvision::to_string(model.task()),
                 model.task() == MV_TASK_SEGMENTATION ? "segment" : "classify");
    return kUsageError;
  }
  const auto files = expand_inputs(a.inputs);
  if (files.empty()) {
    std::fprintf(stderr, "medvision: no input files\n");
    return kUsageError;
  }
  if (!a.json) {
    std::printf("model %s %s — %s\n\n", model.name().c_str(), model.version().c_str(),
                model.notice().c_str());
  }
  int rc = 0;
  for (const auto& file : files) {
    try {
      const medvision::Image image = medvision::Image::load(file);
      const medvision::Result r = model.run(image);
      if (a.json) {
        json j = json::parse(r.json());
        j["file"] = file;
        std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
        continue;
      }
      std::printf("%s\n", file.c_str());
      for (const auto& v : r.values()) {
        std::printf("  %-22s %.4g %s\n", v.name.c_str(), v.value, v.unit.c_str());
      }
      for (const auto& w : r.warnings()) std::printf("  warning: %s\n", w.c_str());
    } catch (const medvision::Exception& e) {
      rc = exit_code(e.status());
      std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
    }
  }
  return rc;
}

}  // namespace mvcli
