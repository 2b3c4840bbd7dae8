#pragma once
// medvision segment (examples/cli/segment.cpp).

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace mvcli {

struct SegmentArgs {
  std::vector<std::string> inputs;
  std::string model;
  std::string out;
  std::string device;    // "": the library's default (mv_model_options)
  int threads = 0;       // --threads' default: mv_model_options_init()'s
  double overlap = 0.0;  // read only when --overlap is given
  int batch = 0;         // read only when --batch is given
  bool stack = false;
  bool nifti = false;
  bool png = false;
  int64_t slice = -1;
  bool dicom_seg = false;
  std::string dicom_sr;  // folder for <stem>.sr.dcm (DICOM SR), or empty
  bool probabilities = false;
  bool npy = false;
  bool mirror = false;
  bool largest_component = false;
  bool fill_holes = false;
  bool json = false;
  std::vector<double> spacing;  // --spacing: {column, row} mm (one value: both), or empty
  CLI::App* command = nullptr;
};

void add_segment_command(CLI::App& app, SegmentArgs& args);
int run_segment(const SegmentArgs& args);

}  // namespace mvcli
