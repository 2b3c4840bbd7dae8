// Intensity steps: they change pixel values (and possibly the channel count), never the grid,
// so they record nothing for map_to_original(). One type per manifest "op".

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "common/percentile.hpp"
#include "common/voi.hpp"
#include "preprocess/step.hpp"

namespace medvision::preprocess {
namespace {

// ---- monochrome: MONOCHROME1 (inverted) images become MONOCHROME2 -------------------------
class Monochrome final : public Step {
 public:
  void apply(Work& w, RunContext& ctx) const override {
    if (w.photometric_ != MV_PHOTOMETRIC_MONOCHROME1) {
      ctx.applied("monochrome: not MONOCHROME1, unchanged");
      return;
    }
    const auto mm = w.min_max();
    const float sum = mm.first + mm.second;
    const float* in = w.data();
    float* out = w.elementwise_output();
    for (int64_t i = 0; i < w.count(); ++i) out[i] = sum - in[i];
    w.commit_elementwise();
    w.photometric_ = MV_PHOTOMETRIC_MONOCHROME2;
    ctx.applied("monochrome: MONOCHROME1 inverted (max + min - x)");
  }
};

// ---- window: the DICOM VOI transformation to [0, 1] (common/voi.hpp) -----------------------
enum class WindowMode { kDicom, kExplicit, kPercentile };
constexpr std::array<Named<WindowMode>, 3> kWindowModes{{{"dicom", WindowMode::kDicom},
                                                         {"explicit", WindowMode::kExplicit},
                                                         {"percentile", WindowMode::kPercentile}}};
enum class WindowFunction { kLinear, kSigmoid };
constexpr std::array<Named<WindowFunction>, 2> kWindowFunctions{
    {{"linear", WindowFunction::kLinear}, {"sigmoid", WindowFunction::kSigmoid}}};

class Window final : public Step {
 public:
  static std::unique_ptr<Step> parse(Params& q) {
    auto s = std::make_unique<Window>();
    s->mode_ = q.choice("mode", kWindowModes, std::optional(WindowMode::kDicom));
    s->function_ = q.choice("function", kWindowFunctions, std::optional(WindowFunction::kLinear));
    const bool linear = s->function_ == WindowFunction::kLinear;
    if (s->mode_ == WindowMode::kExplicit) {
      s->center_ = q.number("center");
      s->width_ = q.number("width");
      // DICOM defines linear windows for width >= 1 only (the formula divides by width - 1).
      if (linear ? !(s->width_ >= 1.0) : !(s->width_ > 0.0)) {
        q.fail("width", linear ? "must be >= 1 for a linear window" : "must be positive");
      }
    } else {
      // In 'dicom' mode these are the fallback for images without a VOI preset.
      s->low_ = q.percent("low", 0.5);
      s->high_ = q.percent("high", 99.5);
      if (!(s->low_ < s->high_)) q.fail("low", "must be below 'high'");
    }
    return s;
  }

  void apply(Work& w, RunContext& ctx) const override {
    const bool sigmoid = function_ == WindowFunction::kSigmoid;
    WindowPreset own;  // the window applied, unless it is the image's own preset
    own.function = sigmoid ? MV_VOI_SIGMOID : MV_VOI_LINEAR;
    own.center = center_;
    own.width = width_;
    const WindowPreset* preset = &own;
    std::string what = "explicit";
    if (mode_ == WindowMode::kDicom && !ctx.image.windows.empty()) {
      const WindowPreset& wp = ctx.image.windows.front();
      what = "dicom preset" + (wp.explanation.empty() ? "" : " '" + wp.explanation + "'");
      if (wp.function != MV_VOI_TABLE || !wp.table.empty()) {
        preset = &wp;
      } else {  // a table preset without its table: its centre and width, linearly
        own.center = wp.center;
        own.width = wp.width;
        own.function = MV_VOI_LINEAR;
      }
    } else if (mode_ != WindowMode::kExplicit) {
      if (mode_ == WindowMode::kDicom) {
        ctx.warn("window: the image has no VOI preset; used percentiles " + num_text(low_) + "-" +
                 num_text(high_));
      }
      // A percentile window is the exact linear map [p_low, p_high] -> [0, 1] (DICOM's
      // LINEAR_EXACT), since the half-unit shifts of C.11.2.1.2 assume integer stored values.
      const auto lh = percentiles(w.data(), w.count(), low_, high_);
      own.function = sigmoid ? MV_VOI_SIGMOID : MV_VOI_LINEAR_EXACT;
      own.center = (lh.first + lh.second) / 2;
      own.width = lh.second - lh.first;
      what = "percentile " + num_text(low_) + "-" + num_text(high_);
    }
    float* out = w.elementwise_output();
    voi::apply(*preset, w.data(), out, static_cast<size_t>(w.count()));
    w.commit_elementwise();
    const double c = preset->center, width = preset->width;
    if (preset->function == MV_VOI_TABLE) {
      ctx.applied("window: " + what + " (VOI LUT table)");
    } else if (!(width > 0)) {
      // A degenerate window (constant image, or a broken preset): a step at the centre.
      ctx.warn("window: zero width (constant image?); output is a step at " + num_text(c));
      ctx.applied("window: " + what + " (degenerate)");
    } else {
      ctx.applied("window: " + what + " center " + num_text(c) + " width " + num_text(width) +
                  (preset->function == MV_VOI_SIGMOID ? " sigmoid" : " linear"));
    }
  }

 private:
  WindowMode mode_ = WindowMode::kDicom;
  WindowFunction function_ = WindowFunction::kLinear;
  double center_ = 0, width_ = 1, low_ = 0.5, high_ = 99.5;
};

// ---- scale: a linear map of [lo, hi] to [0, 1] ---------------------------------------------
enum class ScaleMode { kMinmax, kPercentile, kFixed };
constexpr std::array<Named<ScaleMode>, 3> kScaleModes{{{"minmax", ScaleMode::kMinmax},
                                                       {"percentile", ScaleMode::kPercentile},
                                                       {"fixed", ScaleMode::kFixed}}};

class Scale final : public Step {
 public:
  static std::unique_ptr<Step> parse(Params& q) {
    auto s = std::make_unique<Scale>();
    s->mode_ = q.choice("mode", kScaleModes, std::optional<ScaleMode>());
    if (s->mode_ == ScaleMode::kPercentile) {
      s->low_ = q.percent("low", 0.5);
      s->high_ = q.percent("high", 99.5);
      if (!(s->low_ < s->high_)) q.fail("low", "must be below 'high'");
    } else if (s->mode_ == ScaleMode::kFixed) {
      s->min_ = q.number("min");
      s->max_ = q.number("max");
      if (!(s->min_ < s->max_)) q.fail("min", "must be below 'max'");
    }
    s->clip_ = q.boolean("clip", true);
    return s;
  }

  void apply(Work& w, RunContext& ctx) const override {
    double lo = min_, hi = max_;
    if (mode_ == ScaleMode::kMinmax) {
      const auto mm = w.min_max();
      lo = mm.first;
      hi = mm.second;
    } else if (mode_ == ScaleMode::kPercentile) {
      std::tie(lo, hi) = percentiles(w.data(), w.count(), low_, high_);
    }
    const float* in = w.data();
    float* out = w.elementwise_output();
    const int64_t n = w.count();
    if (!(hi > lo)) {
      ctx.warn("scale: the image has no value range (all values " + num_text(lo) +
               "); the output is 0");
      std::fill(out, out + n, 0.0f);
    } else {
      const float a = static_cast<float>(lo), inv = static_cast<float>(1.0 / (hi - lo));
      if (clip_) {
        for (int64_t i = 0; i < n; ++i) out[i] = std::min(std::max((in[i] - a) * inv, 0.0f), 1.0f);
      } else {
        for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - a) * inv;
      }
    }
    w.commit_elementwise();
    ctx.applied("scale: " + std::string(name_of(kScaleModes, mode_)) + " [" + num_text(lo) + ", " +
                num_text(hi) + "] -> [0, 1]" + (clip_ ? " clipped" : ""));
  }

 private:
  ScaleMode mode_ = ScaleMode::kMinmax;
  double low_ = 0.5, high_ = 99.5, min_ = 0, max_ = 1;
  bool clip_ = true;
};

// ---- channels: grey -> n copies, RGB -> grey ----------------------------------------------
class Channels final : public Step {
 public:
  explicit Channels(int64_t n) : n_(n) {}

  void apply(Work& w, RunContext& ctx) const override {
    const int64_t c = w.channels(), n = n_, v = w.voxels();
    if (c == n) {
      ctx.applied("channels: " + std::to_string(c) + " (unchanged)");
      return;
    }
    std::unique_ptr<float[]> out(new float[static_cast<size_t>(n * v)]);
    const float* in = w.data();
    if (c == 1) {
      for (int64_t k = 0; k < n; ++k) std::copy(in, in + v, out.get() + k * v);
      ctx.applied("channels: grey -> " + std::to_string(n) + " copies");
    } else if (c == 3 && n == 1) {
      const float *r = in, *g = in + v, *b = in + 2 * v;
      for (int64_t i = 0; i < v; ++i) out[i] = 0.299f * r[i] + 0.587f * g[i] + 0.114f * b[i];
      ctx.applied("channels: RGB -> grey (BT.601 luma)");
    } else {
      throw Error(MV_ERR_SHAPE_MISMATCH, context() + ": cannot convert " + std::to_string(c) +
                                             " channels to " + std::to_string(n));
    }
    w.replace(std::move(out), n, w.size());
  }

 private:
  int64_t n_;
};

// ---- normalize: per-channel (x - mean) / std, z-score, or a clipped range map --------------
enum class NormalizeMode { kMeanStd, kZscore, kRange };
constexpr std::array<Named<NormalizeMode>, 3> kNormalizeModes{
    {{"mean_std", NormalizeMode::kMeanStd},
     {"zscore", NormalizeMode::kZscore},
     {"range", NormalizeMode::kRange}}};

class Normalize final : public Step {
 public:
  static std::unique_ptr<Step> parse(Params& q, const InputSpec& input) {
    auto s = std::make_unique<Normalize>();
    s->mode_ = q.choice("mode", kNormalizeModes, std::optional(NormalizeMode::kMeanStd));
    if (s->mode_ == NormalizeMode::kMeanStd) {
      const size_t n = static_cast<size_t>(input.channels);
      s->mean_ = q.numbers("mean", true, 1, n);
      s->std_ = q.numbers("std", true, 1, n);
      for (const auto* v : {&s->mean_, &s->std_}) {
        if (v->size() != 1 && v->size() != n) {
          q.fail(v == &s->mean_ ? "mean" : "std",
                 "must have 1 or input.channels (" + std::to_string(n) + ") values");
        }
      }
      if (std::any_of(s->std_.begin(), s->std_.end(), [](double v) { return !(v > 0); })) {
        q.fail("std", "must be positive");
      }
    } else if (s->mode_ == NormalizeMode::kZscore) {
      s->nonzero_ = q.boolean("nonzero", false);
    } else {
      s->min_ = q.number("min");
      s->max_ = q.number("max");
      if (!(s->min_ < s->max_)) q.fail("min", "must be below 'max'");
      s->to_ = q.numbers("to", false, 2, 2);
      if (!(s->to_[0] < s->to_[1])) q.fail("to", "must be [a, b] with a < b");
    }
    return s;
  }

  void apply(Work& w, RunContext& ctx) const override {
    if (mode_ == NormalizeMode::kRange) {
      apply_range(w, ctx);
    } else {
      apply_standardise(w, ctx);
    }
    w.commit_elementwise();
  }

 private:
  void apply_range(Work& w, RunContext& ctx) const {
    // y = a + (b - a) * (clip(x, min, max) - min) / (max - min). For torchxrayvision's
    // normalize(img, maxval) = (2 * img / maxval - 1) * 1024 this is min 0, max maxval,
    // to [-1024, 1024]; xrv raises on values above maxval where this clips them.
    const double lo = min_, hi = max_, a = to_[0], k = (to_[1] - to_[0]) / (hi - lo);
    const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
    const float* in = w.data();
    float* out = w.elementwise_output();
    for (int64_t i = 0; i < w.count(); ++i) {
      out[i] = static_cast<float>(a + k * (std::min(std::max(in[i], flo), fhi) - lo));
    }
    ctx.applied("normalize: range [" + num_text(lo) + ", " + num_text(hi) + "] -> [" +
                num_text(to_[0]) + ", " + num_text(to_[1]) + "]");
  }

  void apply_standardise(Work& w, RunContext& ctx) const {
    const int64_t c = w.channels(), v = w.voxels();
    const bool mean_std = mode_ == NormalizeMode::kMeanStd;
    if (mean_std && ((mean_.size() != 1 && static_cast<int64_t>(mean_.size()) != c) ||
                     (std_.size() != 1 && static_cast<int64_t>(std_.size()) != c))) {
      throw Error(MV_ERR_SHAPE_MISMATCH, context() + ": has per-channel values for " +
                                             std::to_string(std::max(mean_.size(), std_.size())) +
                                             " channels but the image has " + std::to_string(c));
    }
    const float* in = w.data();
    float* out = w.elementwise_output();
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* x = in + ch * v;
      float* y = out + ch * v;
      double mean, sd;
      if (mean_std) {
        mean = mean_[mean_.size() == 1 ? 0 : ch];
        sd = std_[std_.size() == 1 ? 0 : ch];
      } else {
        // Population statistics (ddof 0), as MONAI NormalizeIntensity; in double so that
        // large volumes do not lose precision.
        double sum = 0, sum2 = 0;
        int64_t m = 0;
        for (int64_t i = 0; i < v; ++i) {
          if (nonzero_ && x[i] == 0.0f) continue;
          sum += x[i];
          ++m;
        }
        mean = m ? sum / as_double(m) : 0.0;
        for (int64_t i = 0; i < v; ++i) {
          if (nonzero_ && x[i] == 0.0f) continue;
          sum2 += (x[i] - mean) * (x[i] - mean);
        }
        sd = m ? std::sqrt(sum2 / as_double(m)) : 0.0;
        if (!(sd > 0)) {
          ctx.warn("normalize: channel " + std::to_string(ch) +
                   " is constant; z-score used a standard deviation of 1");
          sd = 1.0;
        }
      }
      const float fm = static_cast<float>(mean), inv = static_cast<float>(1.0 / sd);
      if (nonzero_ && !mean_std) {
        for (int64_t i = 0; i < v; ++i) y[i] = x[i] == 0.0f ? 0.0f : (x[i] - fm) * inv;
      } else {
        for (int64_t i = 0; i < v; ++i) y[i] = (x[i] - fm) * inv;
      }
    }
    ctx.applied(mean_std
                    ? "normalize: mean/std"
                    : std::string("normalize: zscore") + (nonzero_ ? " over non-zero voxels" : ""));
  }

  NormalizeMode mode_ = NormalizeMode::kMeanStd;
  std::vector<double> mean_, std_, to_;
  double min_ = 0, max_ = 1;
  bool nonzero_ = false;
};

// ---- clip: values limited to [min, max], fixed or per-image percentiles --------------------
// nnU-Net's CT normalisation clips to the training set's 0.5 and 99.5 percentiles before
// subtracting its mean and dividing by its standard deviation: `clip` then `normalize` take
// those four numbers as they are. MONAI's ClipIntensityPercentiles is the per-image form.
enum class ClipMode { kFixed, kPercentile };
constexpr std::array<Named<ClipMode>, 2> kClipModes{
    {{"fixed", ClipMode::kFixed}, {"percentile", ClipMode::kPercentile}}};

class Clip final : public Step {
 public:
  static std::unique_ptr<Step> parse(Params& q) {
    auto s = std::make_unique<Clip>();
    s->mode_ = q.choice("mode", kClipModes, std::optional(ClipMode::kFixed));
    if (s->mode_ == ClipMode::kFixed) {
      s->min_ = q.number("min");
      s->max_ = q.number("max");
      if (!(s->min_ < s->max_)) q.fail("min", "must be below 'max'");
    } else {
      s->low_ = q.percent("low", 0.5);
      s->high_ = q.percent("high", 99.5);
      if (!(s->low_ < s->high_)) q.fail("low", "must be below 'high'");
    }
    return s;
  }

  void apply(Work& w, RunContext& ctx) const override {
    double lo = min_, hi = max_;
    if (mode_ == ClipMode::kPercentile)
      std::tie(lo, hi) = percentiles(w.data(), w.count(), low_, high_);
    const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
    const float* in = w.data();
    float* out = w.elementwise_output();
    // NaN stays NaN (std::max and std::min return their first argument when unordered).
    for (int64_t i = 0; i < w.count(); ++i) out[i] = std::min(std::max(in[i], flo), fhi);
    w.commit_elementwise();
    ctx.applied("clip: " + std::string(name_of(kClipModes, mode_)) + " [" + num_text(lo) + ", " +
                num_text(hi) + "]");
  }

 private:
  ClipMode mode_ = ClipMode::kFixed;
  double min_ = 0, max_ = 1, low_ = 0.5, high_ = 99.5;
};

}  // namespace

std::unique_ptr<Step> parse_clip(Params& q, const InputSpec&) { return Clip::parse(q); }
std::unique_ptr<Step> parse_monochrome(Params&, const InputSpec&) {
  return std::make_unique<Monochrome>();
}
std::unique_ptr<Step> parse_window(Params& q, const InputSpec&) { return Window::parse(q); }
std::unique_ptr<Step> parse_scale(Params& q, const InputSpec&) { return Scale::parse(q); }
std::unique_ptr<Step> parse_channels(Params& q, const InputSpec&) {
  return std::make_unique<Channels>(q.positive_int("channels"));
}
std::unique_ptr<Step> parse_normalize(Params& q, const InputSpec& input) {
  return Normalize::parse(q, input);
}

}  // namespace medvision::preprocess
