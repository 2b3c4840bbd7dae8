// medvision segment: label maps, region measurements and mask files for segmentation models.

#include "segment.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One case to segment: its display name, output stem and the files or folder it comes from.
struct Case {
  std::string name;
  std::vector<std::string> sources;  // several with --stack (channels), else one
};

std::string stem_of(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  if (name.empty()) name = fs::path(path).parent_path().filename().string();
  for (const char* ext :
       {".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) {
      return name.substr(0, name.size() - e.size());
    }
  }
  return name;
}

// Output stems that never collide: "FLAIR", then "case_1-FLAIR" for a second FLAIR.nii.gz.
std::string unique_stem(const std::string& path, std::set<std::string>& used) {
  std::string stem = stem_of(path);
  if (used.count(stem)) {
    const std::string parent = fs::path(path).parent_path().filename().string();
    if (!parent.empty()) stem = parent + "-" + stem;
  }
  const std::string base = stem;
  for (int i = 2; used.count(stem); ++i) stem = base + "-" + std::to_string(i);
  used.insert(stem);
  return stem;
}

medvision::Image load_case(const Case& c, const medvision::LoadOptions& lo) {
  if (c.sources.size() == 1) return medvision::Image::load(c.sources.front(), lo);
  std::vector<medvision::Image> parts;
  for (const auto& s : c.sources) parts.push_back(medvision::Image::load(s, lo));
  std::vector<const medvision::Image*> ptrs;
  for (const auto& p : parts) ptrs.push_back(&p);
  return medvision::Image::stack(ptrs);
}

std::vector<Case> collect_cases(const SegmentArgs& a) {
  std::vector<Case> cases;
  if (a.stack) {
    cases.push_back({a.inputs.front(), a.inputs});
    return cases;
  }
  for (const auto& in : a.inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      // A folder holding one DICOM series is one volume; any other folder is a list of files.
      try {
        (void)medvision::Image::load(in);
        cases.push_back({in, {in}});
        continue;
      } catch (const medvision::Exception&) {
      }
      for (const auto& f : expand_inputs({in})) cases.push_back({f, {f}});
    } else {
      cases.push_back({in, {in}});
    }
  }
  return cases;
}

void print_human(const std::string& name, const medvision::Result& r, const json& outputs,
                 bool first) {
  if (first) {
    std::printf("model %s %s — %s\n\n", r.model_name().c_str(), r.model_version().c_str(),
                r.notice().c_str());
  }
  const auto mask = r.mask();
  const bool volume = mask.depth() > 1;
  const std::string source = mask.spacing_source();
  const auto sp = mask.spacing();
  std::printf("%s  (%lld x %lld x %lld)\n", name.c_str(), static_cast<long long>(mask.width()),
              static_cast<long long>(mask.height()), static_cast<long long>(mask.depth()));
  if (source.empty()) {
    std::printf("  spacing unknown: sizes in %s (give --spacing COL,ROW mm for areas)\n",
                volume ? "voxels" : "pixels");
  } else {
    std::printf("  spacing %.4g x %.4g mm from %s%s\n", sp[0], sp[1], source.c_str(),
                source == "ImagerPixelSpacing"
                    ? " (at the detector, not corrected for magnification)"
                    : "");
  }
  for (const auto& [region, st] : r.regions()) {
    std::printf("  %-22s %10llu %s", region.c_str(), static_cast<unsigned long long>(st.voxels),
                volume ? "voxels" : "pixels");
    if (st.spacing_known) {
      std::printf("  %10.2f %s", volume ? st.volume_ml : st.area_mm2, volume ? "mL " : "mm2");
    } else {
      std::printf("  %10s %s", "-", "   ");
    }
    if (st.voxels > 0) {
      std::printf("  %llu component(s), largest centred at ",
                  static_cast<unsigned long long>(st.components));
      if (st.spacing_known) {
        std::printf("(%.1f, %.1f, %.1f) mm LPS", st.centroid[0], st.centroid[1], st.centroid[2]);
      } else {
        std::printf("column %.1f, row %.1f", st.centroid_index[0], st.centroid_index[1]);
      }
    }
    std::printf("\n");
  }
  for (const auto& w : r.warnings()) std::printf("  warning: %s\n", w.c_str());
  for (const auto& [kind, path] : outputs.items()) {
    std::printf("  %-8s %s\n", kind.c_str(), path.get<std::string>().c_str());
  }
}

}  // namespace

void add_segment_command(CLI::App& app, SegmentArgs& a) {
  auto* c = app.add_subcommand(
      "segment", "Segment images or volumes; write label maps, overlays and measurements");
  c->add_option("FILE", a.inputs,
                "Images, volumes (NIfTI, DICOM files or series folders), or folders")
      ->required();
  c->add_option("-m,--model", a.model, "Model package name or folder")->required();
  c->add_option("-o,--out", a.out, "Folder for the output files (created)");
  c->add_flag("--stack", a.stack,
              "All FILEs are the channels of one case, in the model's order (e.g. FLAIR T1)");
  c->add_flag("--nifti", a.nifti, "Write the label map as <stem>.seg.nii.gz (the input's affine)");
  c->add_flag("--png", a.png, "Write an outline overlay <stem>.overlay.png (volumes: --slice)");
  c->add_option("--slice", a.slice, "Slice of a volume for --png (-1: largest foreground)")
      ->default_val(-1);
  c->add_flag("--dicom-seg", a.dicom_seg,
              "DICOM inputs: write a DICOM Segmentation <stem>.seg.dcm in the source's study");
  c->add_option("--dicom-sr", a.dicom_sr,
                "DICOM inputs: write a DICOM SR (TID 1500: region volumes / areas) <stem>.sr.dcm "
                "into this folder, in the source's study; with --dicom-seg it references the SEG");
  c->add_flag("--probabilities", a.probabilities,
              "Write the probability maps as <stem>.prob.npy (float32 [classes, D, H, W])");
  c->add_flag("--npy", a.npy, "Write the label map as <stem>.mask.npy (float32 [D, H, W])");
  c->add_option("--overlap", a.overlap, "Sliding-window overlap in [0, 1) (default: manifest)");
  c->add_option("--batch", a.batch, "Windows per forward pass (default: manifest)");
  c->add_flag("--mirror", a.mirror, "Mirror test-time augmentation");
  c->add_flag("--largest-component", a.largest_component,
              "Keep only the largest connected component of each class");
  c->add_flag("--fill-holes", a.fill_holes, "Fill holes enclosed by each class");
  c->add_option("--device", a.device, kDeviceHelp);
  c->add_option("--threads", a.threads, "CPU threads (0: every CPU this process may use)")
      ->default_val(medvision::ModelOptions().num_threads());
  c->add_flag("--json", a.json, "One JSON object per case (JSON Lines)");
  c->add_option("--spacing", a.spacing,
                "Pixel spacing in mm, COL[,ROW], for inputs that give none (PNG, JPEG) or a wrong "
                "one; without it such sizes are reported in pixels")
      ->delimiter(',')
      ->expected(1, 2)
      ->check(CLI::Validator(
          [](std::string& v) {
            char* end = nullptr;
            const double mm = std::strtod(v.c_str(), &end);
            return end != v.c_str() && *end == '\0' && mm > 0 && std::isfinite(mm)
                       ? std::string()
                       : "must be a pixel spacing in mm greater than 0, not " + v;
          },
          "MM>0"));
  a.command = c;
}

int run_segment(const SegmentArgs& a) {
  if ((a.probabilities || a.npy || a.nifti || a.png || a.dicom_seg) && a.out.empty()) {
    std::fprintf(stderr, "medvision: --out is needed to write files\n");
    return kUsageError;
  }
  medvision::ModelOptions mo;
  mo.set_device(a.device).set_num_threads(a.threads);
  const auto model = medvision::Model::load(a.model, mo);
  if (model.task() != MV_TASK_SEGMENTATION) {
    std::fprintf(stderr, "medvision: %s is not a segmentation model (use classify)\n",
                 model.name().c_str());
    return kUsageError;
  }
  for (const std::string* dir : {&a.out, &a.dicom_sr}) {
    if (dir->empty()) continue;
    std::error_code ec;
    fs::create_directories(*dir, ec);
    if (ec) {
      std::fprintf(stderr, "medvision: cannot create %s: %s\n", dir->c_str(), ec.message().c_str());
      return exit_code(MV_ERR_IO);
    }
  }
  // What is not given keeps mv_segment_options_init()'s value (the manifest's settings).
  medvision::SegmentOptions so;
  if (a.command->count("--overlap") > 0) so.set_overlap(a.overlap);
  if (a.command->count("--batch") > 0) so.set_batch_size(a.batch);
  if (a.mirror) so.set_mirror(1);
  if (a.largest_component) so.set_largest_component(1);
  if (a.fill_holes) so.set_fill_holes(1);
  if (a.probabilities) so.set_probabilities(true);

  medvision::LoadOptions lo;
  if (!a.spacing.empty()) {
    lo.set_pixel_spacing(a.spacing[0], a.spacing.size() > 1 ? a.spacing[1] : a.spacing[0]);
  }

  const std::vector<Case> cases = collect_cases(a);
  int rc = 0;
  bool first = true;
  std::set<std::string> used, used_sr;
  Progress progress(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    try {
      const auto image = load_case(c, lo);
      const auto result = model.segment(image, so);
      json outputs = json::object();
      if (!a.out.empty()) {
        const std::string stem = (fs::path(a.out) / unique_stem(c.name, used)).string();
        const auto mask = result.mask();
        if (a.nifti) {
          outputs["nifti"] = stem + ".seg.nii.gz";
          result.write_nifti(stem + ".seg.nii.gz");
        }
        if (a.png) {
          outputs["png"] = stem + ".overlay.png";
          result.write_overlay_png(image, stem + ".overlay.png", a.slice);
        }
        if (a.dicom_seg) {
          outputs["dicom_seg"] = stem + ".seg.dcm";
          result.write_dicom_seg(image, stem + ".seg.dcm");
        }
        if (a.npy) {
          outputs["mask_npy"] = stem + ".mask.npy";
          write_npy(stem + ".mask.npy", mask.data(), {mask.depth(), mask.height(), mask.width()});
        }
        if (a.probabilities) {
          const auto p = result.probability_map();
          outputs["probabilities"] = stem + ".prob.npy";
          write_npy(stem + ".prob.npy", p.data(), {p.channels(), p.depth(), p.height(), p.width()});
        }
      }
      if (!a.dicom_sr.empty()) {
        const std::string sr = (fs::path(a.dicom_sr) / unique_stem(c.name, used_sr)).string();
        const std::string seg =
            outputs.contains("dicom_seg") ? outputs["dicom_seg"].get<std::string>() : "";
        outputs["dicom_sr"] = sr + ".sr.dcm";
        result.write_dicom_sr(image, sr + ".sr.dcm", seg);
      }
      if (a.json) {
        json j = json::parse(result.json());
        j["file"] = c.name;
        if (c.sources.size() > 1) j["channels"] = c.sources;
        j["outputs"] = outputs;
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      } else {
        print_human(c.name, result, outputs, first);
        first = false;
      }
    } catch (const medvision::Exception& e) {
      rc = exit_code(e.status());
      if (a.json) {
        std::cout << json{{"file", c.name}, {"error", e.status_name()}, {"message", e.what()}}.dump(
                         -1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << "\n";
      } else {
        std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
      }
    }
    progress.update(i + 1);
  }
  return rc;
}

}  // namespace mvcli
