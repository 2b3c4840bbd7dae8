#pragma once
// Reliability diagrams as PNG: one panel per curve (e.g. before / after calibration), bars of
// the observed frequency per confidence bin against the diagonal, the gap to the bin's mean
// confidence shaded, ECE and MCE in the title.

#include <cstdint>
#include <string>
#include <vector>

#include "calibrate/metrics.hpp"

namespace medvision::calibrate {

struct ReliabilityPanel {
  std::string title;       // ASCII (drawn with OpenCV's Hershey font)
  CalibrationError stats;  // from calibration_error(..., Binning::kEqualWidth)
};

// PNG bytes of the diagram (panels side by side, 480 x 480 pixels each).
std::vector<uint8_t> reliability_png(const std::vector<ReliabilityPanel>& panels);
// Writes reliability_png() to `path`; throws MV_ERR_IO when it cannot.
void write_reliability_png(const std::string& path, const std::vector<ReliabilityPanel>& panels);

}  // namespace medvision::calibrate
