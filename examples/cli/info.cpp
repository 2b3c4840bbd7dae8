// medvision info: decode images and print what medvision sees.

#include "info.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

namespace {

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
  const auto& sp = j["spacing_mm"];
  std::printf("  spacing      %.4g x %.4g x %.4g mm\n", sp[0].get<double>(), sp[1].get<double>(),
              sp[2].get<double>());
  const auto& o = j["origin_lps_mm"];
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

}  // namespace

void add_info_command(CLI::App& app, InfoArgs& a) {
  auto* info = app.add_subcommand("info", "Decode images and print what medvision sees");
  info->add_option("FILE", a.files,
                   "DICOM, NIfTI, PNG, JPEG, TIFF or BMP files, or DICOM series folders")
      ->required();
  info->add_flag("--json", a.json, "One JSON object per line (JSON Lines)");
  info->add_option("--frame", a.frame, "Multi-frame DICOM: decode only this frame")
      ->default_val(medvision::LoadOptions().frame());
  a.command = info;
}

int run_info(const InfoArgs& a) {
  int rc = 0;
  for (const auto& f : a.files) {
    try {
      medvision::LoadOptions opts;
      opts.set_frame(a.frame);
      const auto img = medvision::Image::load(f, opts);
      const json j = describe(f, img);
      if (a.json) {
        std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      } else {
        print_human(j);
      }
    } catch (const medvision::Exception& e) {
      if (a.json) {
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

}  // namespace mvcli
