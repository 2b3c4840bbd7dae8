// 8-bit renderings: the grey base shared by heat-map and segmentation overlays, segment outlines,
// and PNG output.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/percentile.hpp"
#include "common/voi.hpp"
#include "io/io.hpp"
#include "io/writers.hpp"

namespace medvision::io {
namespace {

bool usable(const WindowPreset& w) {
  if (w.function == MV_VOI_TABLE) return !w.table.empty();
  return w.function == MV_VOI_LINEAR_EXACT || w.width > 0.0;
}

}  // namespace

std::vector<float> grey_slice(const Image& image, int64_t slice, GreyWindow window) {
  if (slice < 0 || slice >= image.depth()) {
    throw Error(MV_ERR_INVALID_ARGUMENT,
                fmt::format("slice {} is outside the image's {} slices", slice, image.depth()));
  }
  const size_t n = image.plane_size();
  const float* p = image.data() + static_cast<size_t>(slice) * n;
  // First channel, or luma for RGB.
  std::vector<float> grey(n);
  if (image.channels() >= 3) {
    const size_t cs = image.channel_size();
    for (size_t i = 0; i < n; ++i)
      grey[i] = 0.299f * p[i] + 0.587f * p[cs + i] + 0.114f * p[2 * cs + i];
  } else {
    std::copy(p, p + n, grey.begin());
  }
  const bool preset = window == GreyWindow::kPresetOrPercent && image.channels() < 3 &&
                      !image.windows.empty() && usable(image.windows.front());
  if (preset) {
    voi::apply(image.windows.front(), grey.data(), grey.data(), grey.size());
  } else {
    const auto range = percentiles(grey.data(), static_cast<int64_t>(n), 0.5, 99.5);
    const auto lo = static_cast<float>(range.first), hi = static_cast<float>(range.second);
    const float span = hi > lo ? hi - lo : 1.0f;
    for (float& g : grey) g = std::clamp((g - lo) / span, 0.0f, 1.0f);
  }
  if (image.photometric == MV_PHOTOMETRIC_MONOCHROME1) {
    for (float& g : grey) g = 1.0f - g;
  }
  return grey;
}

std::vector<uint8_t> render_outline_overlay(const Image& image, const Image& label_map,
                                            int64_t slice,
                                            const std::vector<SegmentDescription>& segments,
                                            int64_t* out_height, int64_t* out_width) {
  const int64_t h = image.height(), w = image.width();
  if (label_map.channels() != 1 || label_map.depth() != image.depth() || label_map.height() != h ||
      label_map.width() != w) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                "render_outline_overlay: the label map must have one "
                "channel and the image's grid");
  }
  const size_t n = image.plane_size();
  if (slice < 0) {  // the slice with the most foreground, else the middle one
    slice = image.depth() / 2;
    size_t best = 0;
    for (int64_t k = 0; k < label_map.depth(); ++k) {
      const float* p = label_map.data() + static_cast<size_t>(k) * n;
      const auto area =
          static_cast<size_t>(std::count_if(p, p + n, [](float v) { return v != 0; }));
      if (area > best) {
        best = area;
        slice = k;
      }
    }
  }
  const std::vector<float> grey = grey_slice(image, slice, GreyWindow::kPresetOrPercent);
  std::vector<uint8_t> rgb(n * 3);
  for (size_t i = 0; i < n; ++i) {
    const auto g = static_cast<uint8_t>(std::lround(255.0f * grey[i]));
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = g;
  }
  const float* lab = label_map.data() + static_cast<size_t>(slice) * n;
  constexpr float kFill = 0.2f;  // interior tint, light enough to keep the anatomy readable
  for (const auto& seg : segments) {
    const auto value = static_cast<float>(seg.value);
    auto in = [&](int64_t y, int64_t x) {
      return y >= 0 && y < h && x >= 0 && x < w && lab[static_cast<size_t>(y * w + x)] == value;
    };
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        if (!in(y, x)) continue;
        // A boundary pixel has a 4-neighbour outside the segment (or outside the image).
        const bool edge = !in(y - 1, x) || !in(y + 1, x) || !in(y, x - 1) || !in(y, x + 1);
        uint8_t* px = rgb.data() + 3 * static_cast<size_t>(y * w + x);
        for (size_t c = 0; c < 3; ++c) {
          px[c] = edge ? seg.rgb[c]
                       : static_cast<uint8_t>(std::lround((1.0f - kFill) * px[c] +
                                                          kFill * static_cast<float>(seg.rgb[c])));
        }
      }
    }
  }
  if (out_height != nullptr) *out_height = h;
  if (out_width != nullptr) *out_width = w;
  return rgb;
}

std::array<uint8_t, 3> heat_colour(float v) {
  // One lookup table, built once from OpenCV's cividis (thread-safe static initialisation).
  static const std::vector<uint8_t> lut = [] {
    cv::Mat ramp(1, 256, CV_8U);
    for (int i = 0; i < 256; ++i) ramp.data[i] = static_cast<uint8_t>(i);
    cv::Mat colour;  // BGR
    cv::applyColorMap(ramp, colour, cv::COLORMAP_CIVIDIS);
    std::vector<uint8_t> t(256 * 3);
    for (size_t i = 0; i < 256; ++i)
      for (size_t c = 0; c < 3; ++c) t[3 * i + c] = colour.data[3 * i + 2 - c];  // -> RGB
    return t;
  }();
  const auto i = static_cast<size_t>(std::lround(255.0f * std::clamp(v, 0.0f, 1.0f)));
  return {{lut[3 * i], lut[3 * i + 1], lut[3 * i + 2]}};
}

std::array<uint8_t, 3> class_colour(int value) {
  // Okabe-Ito, most distinct first; black is left out (it vanishes on a radiograph).
  static constexpr std::array<std::array<uint8_t, 3>, 8> kOkabeIto = {{{{230, 159, 0}},
                                                                       {{86, 180, 233}},
                                                                       {{0, 158, 115}},
                                                                       {{240, 228, 66}},
                                                                       {{0, 114, 178}},
                                                                       {{213, 94, 0}},
                                                                       {{204, 121, 167}},
                                                                       {{255, 255, 255}}}};
  return kOkabeIto[static_cast<size_t>(std::max(value - 1, 0)) % kOkabeIto.size()];
}

std::vector<uint8_t> annotate(const std::vector<uint8_t>& rgb, int64_t height, int64_t width,
                              const Annotation& a, int64_t* out_height, int64_t* out_width) {
  if (height <= 0 || width <= 0 || rgb.size() != static_cast<size_t>(height * width * 3)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "annotate: RGB buffer size does not match its shape");
  }
  // Text scales with the picture (readable on a 224-pixel radiograph and on a 3000-pixel one).
  constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
  const double scale = std::clamp(static_cast<double>(width) / 700.0, 0.4, 2.5);
  const int thick = scale >= 1.2 ? 2 : 1;
  int base = 0;
  const cv::Size glyph = cv::getTextSize("Ag", kFont, scale, thick, &base);
  const int pad = std::max(4, glyph.height / 2);
  const int line = glyph.height + base + pad;
  const int swatch = glyph.height + base;
  const std::string notice = "NOT FOR DIAGNOSTIC USE";
  std::vector<std::string> texts = {a.title, notice};
  for (const auto& s : a.swatches) texts.push_back(s.first);
  if (!a.colour_bar.empty()) texts.push_back(a.colour_bar);
  int text_w = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const int indent = i >= 2 && i < 2 + a.swatches.size() ? swatch + pad : 0;
    text_w = std::max(text_w, indent + cv::getTextSize(texts[i], kFont, scale, thick, &base).width);
  }
  const int bar_lines = a.colour_bar.empty() ? 0 : 2;  // the label, then the bar
  const int lines = 2 + static_cast<int>(a.swatches.size()) + bar_lines;
  const int64_t canvas_w = std::max<int64_t>(width, text_w + 2 * pad);
  const int64_t canvas_h = height + lines * line + pad;
  if (canvas_h > 65535 || canvas_w > 65535) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "annotate: the picture is too large to annotate");
  }
  cv::Mat canvas(static_cast<int>(canvas_h), static_cast<int>(canvas_w), CV_8UC3,
                 cv::Scalar(40, 40, 40));
  cv::Mat picture(static_cast<int>(height), static_cast<int>(width), CV_8UC3,
                  const_cast<uint8_t*>(rgb.data()));
  picture.copyTo(canvas(cv::Rect(0, 0, static_cast<int>(width), static_cast<int>(height))));
  const cv::Scalar white(255, 255, 255);
  int y = static_cast<int>(height) + pad;  // top of the current line
  auto text = [&](const std::string& t, int x, const cv::Scalar& colour) {
    cv::putText(canvas, t, cv::Point(x, y + glyph.height), kFont, scale, colour, thick,
                cv::LINE_AA);
    y += line;
  };
  text(a.title, pad, white);
  text(notice, pad, cv::Scalar(255, 220, 120));  // canvas is RGB: a warm yellow
  for (const auto& [label, c] : a.swatches) {
    cv::rectangle(canvas, cv::Rect(pad, y, swatch, swatch), cv::Scalar(c[0], c[1], c[2]),
                  cv::FILLED);
    text(label, 2 * pad + swatch, white);
  }
  if (!a.colour_bar.empty()) {
    text(a.colour_bar, pad, white);
    const int lo_w = cv::getTextSize("low", kFont, scale, thick, &base).width;
    const int hi_w = cv::getTextSize("high", kFont, scale, thick, &base).width;
    const int x0 = 2 * pad + lo_w, x1 = static_cast<int>(canvas_w) - 2 * pad - hi_w;
    for (int x = x0; x < x1; ++x) {
      const auto c =
          heat_colour(static_cast<float>(x - x0) / static_cast<float>(std::max(1, x1 - x0 - 1)));
      cv::line(canvas, cv::Point(x, y), cv::Point(x, y + swatch - 1), cv::Scalar(c[0], c[1], c[2]));
    }
    const int yl = y;
    text("low", pad, white);
    y = yl;
    text("high", x1 + pad, white);
  }
  if (out_height != nullptr) *out_height = canvas_h;
  if (out_width != nullptr) *out_width = canvas_w;
  return std::vector<uint8_t>(canvas.data, canvas.data + canvas.total() * 3);
}

void write_png_rgb(const std::string& path, const std::vector<uint8_t>& rgb, int64_t height,
                   int64_t width) {
  if (height <= 0 || width <= 0 || rgb.size() != static_cast<size_t>(height * width * 3)) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": RGB buffer size does not match its shape");
  }
  cv::Mat m(static_cast<int>(height), static_cast<int>(width), CV_8UC3,
            const_cast<uint8_t*>(rgb.data()));
  cv::Mat bgr;
  cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  // Encode explicitly as PNG: cv::imwrite would pick the format from the file name.
  std::vector<uint8_t> png;
  if (!cv::imencode(".png", bgr, png)) throw Error(MV_ERR_INTERNAL, path + ": PNG encoding failed");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f || std::fwrite(png.data(), 1, png.size(), f.get()) != png.size()) {
    throw Error(MV_ERR_IO, path + ": cannot write (" + std::strerror(errno) + ")");
  }
}

}  // namespace medvision::io
