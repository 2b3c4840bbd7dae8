#include "calibrate/reliability.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.hpp"

namespace medvision::calibrate {
namespace {

constexpr int kPanel = 480;
constexpr int kLeft = 70, kRight = 20, kTop = 50, kBottom = 60;

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void draw_panel(cv::Mat& img, int x0, const ReliabilityPanel& panel) {
  const int w = kPanel - kLeft - kRight, h = kPanel - kTop - kBottom;
  const auto px = [&](double v) { return x0 + kLeft + static_cast<int>(std::lround(v * w)); };
  const auto py = [&](double v) { return kTop + h - static_cast<int>(std::lround(v * h)); };
  const cv::Scalar black(0, 0, 0), grey(160, 160, 160), blue(200, 110, 40), red(60, 60, 220);
  const int font = cv::FONT_HERSHEY_SIMPLEX;

  for (const Bin& b : panel.stats.bins) {
    if (b.count == 0) continue;
    cv::rectangle(img, cv::Point(px(b.lo) + 1, py(b.accuracy)), cv::Point(px(b.hi) - 1, py(0)),
                  blue, cv::FILLED);
    // The gap between observed frequency and mean confidence, hatched red.
    const cv::Point g0(px(b.lo) + 1, py(b.accuracy)), g1(px(b.hi) - 1, py(b.confidence));
    const cv::Rect gap(g0, g1);
    if (gap.area() > 0) {
      cv::Mat roi = img(gap);
      cv::Mat tint(roi.size(), roi.type(), red);
      cv::addWeighted(roi, 0.5, tint, 0.5, 0.0, roi);
    }
    cv::rectangle(img, g0, g1, red, 1);
  }
  cv::line(img, cv::Point(px(0), py(0)), cv::Point(px(1), py(1)), grey, 1, cv::LINE_AA);
  cv::rectangle(img, cv::Point(px(0), py(1)), cv::Point(px(1), py(0)), black, 1);
  for (int t = 0; t <= 4; ++t) {
    const double v = t / 4.0;
    const std::string s = fixed(v, 2);
    cv::line(img, cv::Point(px(v), py(0)), cv::Point(px(v), py(0) + 5), black, 1);
    cv::putText(img, s, cv::Point(px(v) - 16, py(0) + 22), font, 0.45, black, 1, cv::LINE_AA);
    cv::line(img, cv::Point(px(0) - 5, py(v)), cv::Point(px(0), py(v)), black, 1);
    cv::putText(img, s, cv::Point(px(0) - 45, py(v) + 5), font, 0.45, black, 1, cv::LINE_AA);
  }
  cv::putText(img, "confidence", cv::Point(px(0.5) - 45, py(0) + 48), font, 0.55, black, 1,
              cv::LINE_AA);
  cv::putText(img, "frequency", cv::Point(x0 + 4, kTop - 8), font, 0.45, black, 1, cv::LINE_AA);
  const std::string title =
      panel.title + "  ECE " + fixed(panel.stats.ece, 4) + "  MCE " + fixed(panel.stats.mce, 3);
  cv::putText(img, title, cv::Point(x0 + kLeft, 24), font, 0.5, black, 1, cv::LINE_AA);
}

}  // namespace

std::vector<uint8_t> reliability_png(const std::vector<ReliabilityPanel>& panels) {
  if (panels.empty()) throw Error(MV_ERR_INVALID_ARGUMENT, "reliability: no panels");
  cv::Mat img(kPanel, kPanel * static_cast<int>(panels.size()), CV_8UC3, cv::Scalar(255, 255, 255));
  for (size_t k = 0; k < panels.size(); ++k) {
    for (const Bin& b : panels[k].stats.bins) {
      if (!(b.lo >= 0 && b.hi <= 1 && b.lo <= b.hi && b.accuracy >= 0 && b.accuracy <= 1 &&
            b.confidence >= 0 && b.confidence <= 1)) {
        throw Error(MV_ERR_INVALID_ARGUMENT, "reliability: bins must lie in [0, 1]");
      }
    }
    draw_panel(img, static_cast<int>(k) * kPanel, panels[k]);
  }
  std::vector<uint8_t> png;
  if (!cv::imencode(".png", img, png)) {
    throw Error(MV_ERR_INTERNAL, "reliability: PNG encoding failed");
  }
  return png;
}

void write_reliability_png(const std::string& path, const std::vector<ReliabilityPanel>& panels) {
  const std::vector<uint8_t> png = reliability_png(panels);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  if (!f) throw Error(MV_ERR_IO, "reliability: cannot write " + path);
}

}  // namespace medvision::calibrate
