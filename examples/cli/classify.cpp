// medvision classify: classify images with a model package.

#include "classify.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"
#include "result_text.hpp"
#include "run_chunks.hpp"

namespace mvcli {

using nlohmann::json;

void add_classify_command(CLI::App& app, ClassifyArgs& a) {
  auto* c = app.add_subcommand("classify", "Classify images with a model package");
  c->add_option("FILE", a.inputs, "Images, or folders (searched recursively)")->required();
  c->add_option("-m,--model", a.model, "Model package name or folder")->required();
  c->add_option("--device", a.device, kDeviceHelp);
  c->add_option("--threads", a.threads, "CPU threads (0: every CPU this process may use)")
      ->default_val(medvision::ModelOptions().num_threads());
  c->add_option("--batch", a.batch, "Images per inference batch")->default_val(8);
  c->add_option("--decode-threads", a.decode_threads,
                "Threads decoding the next images while a batch runs (0: min(2, CPUs))")
      ->default_val(0);
  c->add_flag("--reduced-precision", a.reduced, "bf16 on CPU (where supported), fp16 on CUDA");
  c->add_flag("--json", a.json, "One JSON object per line (JSON Lines)");
  c->add_option("--dicom-sr", a.dicom_sr,
                "DICOM inputs: write a DICOM SR (TID 1500 measurement report) per image "
                "as <stem>.sr.dcm into this folder, in the source's study");
  a.command = c;
}

int run_classify(const ClassifyArgs& a) {
  medvision::Model model;
  try {
    medvision::ModelOptions mo;
    mo.set_device(a.device).set_num_threads(a.threads);
    if (a.reduced) mo.set_precision(MV_PRECISION_REDUCED);
    model = medvision::Model::load(a.model, mo);
  } catch (const medvision::Exception& e) {
    std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
    return exit_code(e.status());
  }
  // A model of another task would run and then print an empty classification (or fail on a
  // label index): say what it is instead, before any image is read.
  if (model.task() != MV_TASK_CLASSIFICATION) {
    std::fprintf(stderr, "medvision: %s is a %s model: classify runs classification models%s\n",
                 a.model.c_str(), medvision::to_string(model.task()),
                 model.task() == MV_TASK_SEGMENTATION ? " (use `medvision segment`)" : "");
    return kUsageError;
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
  // The library's streaming pipeline (mv_model_run_many): files are decoded and preprocessed on
  // worker threads while the previous batch runs, so that only a few full-size images exist at
  // once. It runs over chunks of files so that results are printed as they come; a failure of
  // the run itself (MV_ERR_CANCELLED) is reported by main() with its exit code.
  medvision::PipelineOptions po;
  po.batch_size = std::max(1, a.batch);
  po.decode_threads = std::max(0, a.decode_threads);
  run_chunks(
      model, files, po,
      [&](const std::vector<std::string>& names, const std::vector<medvision::ItemResult>& items) {
        for (size_t i = 0; i < items.size(); ++i) {
          const auto& item = items[i];
          if (!item.ok()) {
            rc = exit_code(item.status);
            if (a.json) {
              std::cout << json{{"file", names[i]},
                                {"error", mv_status_name(item.status)},
                                {"message", item.message}}
                               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                        << "\n";
            } else {
              std::fprintf(stderr, "medvision: %s: %s\n", mv_status_name(item.status),
                           item.message.c_str());
            }
            continue;
          }
          std::string sr;
          if (!a.dicom_sr.empty()) {
            sr = sr_path(names[i]);
            try {
              // The pipeline frees each decoded image after preprocessing; the SR's study and
              // references come from the file, read again here.
              item.result.write_dicom_sr(medvision::Image::load(names[i]), sr);
            } catch (const medvision::Exception& e) {
              rc = exit_code(e.status());
              std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
              sr.clear();
            }
          }
          if (a.json) {
            json j = json::parse(item.result.json());
            j["file"] = names[i];
            if (!sr.empty()) j["dicom_sr"] = sr;
            std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
          } else {
            print_result_human(names[i], item.result, first);
            if (!sr.empty()) std::printf("  DICOM SR written to %s\n", sr.c_str());
            first = false;
          }
        }
      });
  return rc;
}

}  // namespace mvcli
