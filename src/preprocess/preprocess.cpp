#include "preprocess/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "common/error.hpp"
#include "preprocess/resize.hpp"

namespace medvision::preprocess {

namespace {

using json = nlohmann::json;
using Size3 = std::array<int64_t, 3>;  // (D, H, W)

double as_double(int64_t v) { return static_cast<double>(v); }

std::string size_text(const Size3& s) {
  return std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
}

std::string num_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// Manifest parameters: typed getters that remember which keys were read, so that anything left
// over (a typo, a parameter of another mode) is reported instead of silently ignored.
class Params {
 public:
  Params(const json& j, std::string context) : j_(j), context_(std::move(context)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(MV_ERR_MODEL, context_ + ": '" + key + "' " + what);
  }
  bool has(const std::string& key) const { return j_.contains(key); }

  double number(const std::string& key) {
    const json& v = get(key);
    if (!v.is_number()) fail(key, "must be a number");
    return v.get<double>();
  }
  double number(const std::string& key, double fallback) {
    return has(key) ? number(key) : fallback;
  }
  bool boolean(const std::string& key, bool fallback) {
    if (!has(key)) return fallback;
    const json& v = get(key);
    if (!v.is_boolean()) fail(key, "must be true or false");
    return v.get<bool>();
  }
  std::string choice(const std::string& key, const std::vector<std::string>& options,
                     const char* fallback) {
    if (!has(key) && fallback != nullptr) return fallback;
    const json& v = get(key);
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (std::find(options.begin(), options.end(), s) != options.end()) return s;
    }
    std::string list;
    for (const auto& o : options) list += (list.empty() ? "'" : ", '") + o + "'";
    fail(key, "must be one of " + list);
  }
  // A number, or an array of `lengths` numbers.
  std::vector<double> numbers(const std::string& key, bool scalar_ok, size_t min_len,
                              size_t max_len) {
    const json& v = get(key);
    std::vector<double> out;
    if (v.is_number() && scalar_ok) return {v.get<double>()};
    if (v.is_array() && v.size() >= min_len && v.size() <= max_len) {
      for (const auto& e : v) {
        if (!e.is_number()) break;
        out.push_back(e.get<double>());
      }
      if (out.size() == v.size()) return out;
    }
    const std::string count = min_len == max_len
                                  ? std::to_string(min_len)
                                  : std::to_string(min_len) + " to " + std::to_string(max_len);
    fail(key, std::string("must be ") + (scalar_ok ? "a number or " : "") + "an array of " + count +
                  " numbers");
  }
  // An array of positive integers whose length is one of `lengths`.
  std::vector<int64_t> sizes(const std::string& key, const std::vector<size_t>& lengths,
                             const std::string& described) {
    const json& v = get(key);
    std::vector<int64_t> out;
    if (v.is_array() && std::find(lengths.begin(), lengths.end(), v.size()) != lengths.end()) {
      for (const auto& e : v) {
        if (!e.is_number_integer() || e.get<int64_t>() <= 0) break;
        out.push_back(e.get<int64_t>());
      }
      if (out.size() == v.size()) return out;
    }
    fail(key, "must be " + described);
  }
  int64_t positive_int(const std::string& key) {
    const json& v = get(key);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(key, "must be a positive integer");
    return v.get<int64_t>();
  }
  double percent(const std::string& key, double fallback) {
    const double p = number(key, fallback);
    if (!(p >= 0.0 && p <= 100.0)) fail(key, "must be a percentile in [0, 100]");
    return p;
  }
  void forbid_unread() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!read_.count(it.key())) {
        throw Error(MV_ERR_MODEL, context_ + ": unknown parameter '" + it.key() + "'");
      }
    }
  }
  const std::string& context() const { return context_; }

 private:
  const json& get(const std::string& key) {
    auto it = j_.find(key);
    if (it == j_.end()) fail(key, "is required");
    read_.insert(key);
    return *it;
  }
  const json& j_;
  std::string context_;
  std::set<std::string> read_{"op"};
};

// ---------------------------------------------------------------------------------------------
// The working tensor, [C][D][H][W], plus the geometry the 3D steps need. It borrows the input
// image's pixels until a step writes, so a pipeline that starts with a resize never copies the
// full-size image.
class Work {
 public:
  explicit Work(const Image& image)
      : src_(image.data()),
        channels_(image.channels()),
        size_{{image.depth(), image.height(), image.width()}} {
    photometric_ = image.photometric;
    // Image geometry is (column, row, slice) = (x, y, z); ours is indexed (D, H, W) = (z, y, x).
    for (int a = 0; a < 3; ++a) {
      spacing_[a] = image.geometry.spacing[2 - a];
      for (int r = 0; r < 3; ++r) dir_[a][r] = image.geometry.direction[r * 3 + (2 - a)];
    }
    origin_ = image.geometry.origin;
  }

  const float* data() const { return src_; }
  int64_t channels() const { return channels_; }
  const Size3& size() const { return size_; }
  int64_t voxels() const { return size_[0] * size_[1] * size_[2]; }
  int64_t count() const { return channels_ * voxels(); }

  // For element-wise steps: a buffer of the current shape to write, which may alias data().
  float* elementwise_output() {
    if (!owned_) {
      owned_.reset(new float[static_cast<size_t>(count())]);  // not zero-filled: all overwritten
    }
    return owned_.get();
  }
  void commit_elementwise() {
    src_ = owned_.get();
    range_valid_ = false;
  }

  // Replaces the pixels with a new tensor of the given shape.
  void replace(std::vector<float> pixels, int64_t channels, const Size3& size) {
    owned_.reset(new float[pixels.size()]);
    std::copy(pixels.begin(), pixels.end(), owned_.get());
    src_ = owned_.get();
    channels_ = channels;
    size_ = size;
    range_valid_ = false;
  }
  void replace(std::unique_ptr<float[]> pixels, int64_t channels, const Size3& size) {
    owned_ = std::move(pixels);
    src_ = owned_.get();
    channels_ = channels;
    size_ = size;
    range_valid_ = false;
  }

  // Smallest and largest value over all channels, cached until the pixels change (the run-time
  // checks, `monochrome` and `scale minmax` all need it). NaNs are skipped.
  std::pair<float, float> min_max() const {
    if (range_valid_) return range_;
    // Eight independent lanes: the compiler vectorises this, where a single running min/max
    // would be a serial dependency chain (about 4x slower on a 5-Mpixel radiograph).
    constexpr int kLanes = 8;
    float lo[kLanes], hi[kLanes];
    std::fill(lo, lo + kLanes, std::numeric_limits<float>::infinity());
    std::fill(hi, hi + kLanes, -std::numeric_limits<float>::infinity());
    const float* p = src_;
    const int64_t n = count();
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        lo[k] = p[i + k] < lo[k] ? p[i + k] : lo[k];
        hi[k] = p[i + k] > hi[k] ? p[i + k] : hi[k];
      }
    }
    for (; i < n; ++i) {
      lo[0] = p[i] < lo[0] ? p[i] : lo[0];
      hi[0] = p[i] > hi[0] ? p[i] : hi[0];
    }
    range_ = {*std::min_element(lo, lo + kLanes), *std::max_element(hi, hi + kLanes)};
    range_valid_ = true;
    return range_;
  }

  mv_photometric photometric_ = MV_PHOTOMETRIC_UNKNOWN;
  std::array<double, 3> spacing_{};             // (D, H, W) mm
  std::array<std::array<double, 3>, 3> dir_{};  // dir_[axis] = LPS unit vector of (D, H, W) axis
  std::array<double, 3> origin_{};              // LPS of voxel (0, 0, 0)

 private:
  const float* src_;
  std::unique_ptr<float[]> owned_;
  int64_t channels_;
  Size3 size_;
  mutable std::pair<float, float> range_{};
  mutable bool range_valid_ = false;
};

// numpy.percentile(..., method='linear') of `n` values for two percentiles at once.
std::pair<double, double> percentiles(const float* p, int64_t n, double low, double high) {
  std::vector<float> v(p, p + n);
  v.erase(std::remove_if(v.begin(), v.end(), [](float x) { return std::isnan(x); }), v.end());
  if (v.empty()) return {0.0, 0.0};
  const auto pick = [&](double q, size_t from) {
    const double pos = q / 100.0 * as_double(static_cast<int64_t>(v.size()) - 1);
    const size_t k = static_cast<size_t>(std::floor(pos));
    std::nth_element(v.begin() + static_cast<std::ptrdiff_t>(from),
                     v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    const double a = v[k];
    // After nth_element everything past k is >= v[k], so the next order statistic is their min.
    const double b = k + 1 < v.size() ? *std::min_element(
                                            v.begin() + static_cast<std::ptrdiff_t>(k + 1), v.end())
                                      : a;
    return std::make_pair(a + (b - a) * (pos - std::floor(pos)), k);
  };
  const auto lo = pick(low, 0);
  const auto hi = pick(high, high >= low ? lo.second : 0);
  return {lo.first, hi.first};
}

// The first index of a `want`-long window centred on `have` samples, as torchvision's
// center_crop computes it: round-half-even when cropping, floor((want-have)/2) padding.
int64_t centred_start(int64_t have, int64_t want) {
  if (have >= want) return static_cast<int64_t>(std::nearbyint(as_double(have - want) / 2.0));
  return -((want - have) / 2);
}

GridStep make_step(const std::string& op, const Size3& in, const Size3& out) {
  GridStep g;
  g.op = op;
  g.in_size = in;
  g.out_size = out;
  return g;
}

GridStep resize_step(const Size3& in, const Size3& out) {
  GridStep g = make_step("resize", in, out);
  for (int a = 0; a < 3; ++a) {
    g.scale[a] = as_double(out[a]) / as_double(in[a]);
    g.offset[a] = 0.5 * g.scale[a] - 0.5;
  }
  return g;
}

// Copies the window starting at `start` (may be negative or run past the end) of every plane;
// samples outside the input are 0.
std::unique_ptr<float[]> crop_pad(const float* in, int64_t planes, const Size3& in_size,
                                  const Size3& start, const Size3& out_size) {
  const int64_t out_count = planes * out_size[0] * out_size[1] * out_size[2];
  std::unique_ptr<float[]> out(new float[static_cast<size_t>(out_count)]);
  std::fill(out.get(), out.get() + out_count, 0.0f);
  const int64_t x0 = std::max<int64_t>(0, -start[2]);
  const int64_t x1 = std::min(out_size[2], in_size[2] - start[2]);
  if (x1 <= x0) return out;
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t z = 0; z < out_size[0]; ++z) {
      const int64_t iz = z + start[0];
      if (iz < 0 || iz >= in_size[0]) continue;
      for (int64_t y = 0; y < out_size[1]; ++y) {
        const int64_t iy = y + start[1];
        if (iy < 0 || iy >= in_size[1]) continue;
        const float* s = in + ((p * in_size[0] + iz) * in_size[1] + iy) * in_size[2] + start[2];
        float* d = out.get() + ((p * out_size[0] + z) * out_size[1] + y) * out_size[2];
        std::copy(s + x0, s + x1, d + x0);
      }
    }
  }
  return out;
}

enum class Op {
  kMonochrome,
  kWindow,
  kScale,
  kResize,
  kCenterCrop,
  kChannels,
  kNormalize,
  kResample,
  kReorient,
  kCropPad
};

}  // namespace

// ---------------------------------------------------------------------------------------------
struct Pipeline::Step {
  Op op{};
  std::string context;  // "<where>: preprocess[i] (op)" for run-time messages
  std::string mode;
  std::string function = "linear";
  double center = 0, width = 1, low = 0.5, high = 99.5, min = 0, max = 1;
  bool clip = true, antialias = true, nonzero = false;
  std::vector<int64_t> size;
  int64_t channels = 0;
  std::vector<double> mean, std, to, spacing;
};

namespace {

// Maps a value through a window of centre c and width w to [0, 1] (DICOM PS3.3 C.11.2.1.2).
struct WindowFn {
  mv_voi_function function;
  double c, w;
  float operator()(float xf) const {
    const double x = xf;
    switch (function) {
      case MV_VOI_SIGMOID:  // C.11.2.1.3.1
        return static_cast<float>(1.0 / (1.0 + std::exp(-4.0 * (x - c) / w)));
      case MV_VOI_LINEAR_EXACT:  // C.11.2.1.3.2
        if (x <= c - w / 2) return 0.0f;
        if (x > c + w / 2) return 1.0f;
        return static_cast<float>((x - c) / w + 0.5);
      default:  // C.11.2.1.2.1: the half-unit shifts place integer inputs at bin centres.
        if (x <= c - 0.5 - (w - 1) / 2) return 0.0f;
        if (x > c - 0.5 + (w - 1) / 2) return 1.0f;
        return static_cast<float>((x - (c - 0.5)) / (w - 1) + 0.5);
    }
  }
};

}  // namespace

Pipeline Pipeline::from_json(const nlohmann::json& steps, const InputSpec& input,
                             const std::string& where) {
  if (input.ndim != 2 && input.ndim != 3) {
    throw Error(MV_ERR_MODEL, where + ": input.ndim must be 2 or 3");
  }
  if (input.channels <= 0) throw Error(MV_ERR_MODEL, where + ": input.channels must be positive");
  if (!input.spacing.empty() &&
      (input.spacing.size() != 3 || std::any_of(input.spacing.begin(), input.spacing.end(),
                                                [](double v) { return !(v > 0); }))) {
    throw Error(MV_ERR_MODEL, where + ": input.spacing must be three positive numbers or null");
  }
  if (!steps.is_array()) throw Error(MV_ERR_MODEL, where + ": 'preprocess' must be an array");

  Pipeline p;
  p.input_ = input;
  const bool is3d = input.ndim == 3;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& j = steps[i];
    const std::string at = where + ": preprocess[" + std::to_string(i) + "]";
    if (!j.is_object()) throw Error(MV_ERR_MODEL, at + ": must be an object");
    if (!j.contains("op") || !j["op"].is_string()) {
      throw Error(MV_ERR_MODEL, at + ": 'op' is required and must be a string");
    }
    const std::string op = j["op"].get<std::string>();
    Params q(j, at + " (" + op + ")");
    auto s = std::make_shared<Step>();
    s->context = q.context();
    if (op == "monochrome") {
      s->op = Op::kMonochrome;
      p.has_monochrome_ = true;
    } else if (op == "window") {
      s->op = Op::kWindow;
      s->mode = q.choice("mode", {"dicom", "explicit", "percentile"}, "dicom");
      s->function = q.choice("function", {"linear", "sigmoid"}, "linear");
      if (s->mode == "explicit") {
        s->center = q.number("center");
        s->width = q.number("width");
        // DICOM defines linear windows for width >= 1 only (the formula divides by width - 1).
        if (s->function == "linear" ? !(s->width >= 1.0) : !(s->width > 0.0)) {
          q.fail("width",
                 s->function == "linear" ? "must be >= 1 for a linear window" : "must be positive");
        }
      } else {
        // In 'dicom' mode these are the fallback for images without a VOI preset.
        s->low = q.percent("low", 0.5);
        s->high = q.percent("high", 99.5);
        if (!(s->low < s->high)) q.fail("low", "must be below 'high'");
      }
    } else if (op == "scale") {
      s->op = Op::kScale;
      s->mode = q.choice("mode", {"minmax", "percentile", "fixed"}, nullptr);
      if (s->mode == "percentile") {
        s->low = q.percent("low", 0.5);
        s->high = q.percent("high", 99.5);
        if (!(s->low < s->high)) q.fail("low", "must be below 'high'");
      } else if (s->mode == "fixed") {
        s->min = q.number("min");
        s->max = q.number("max");
        if (!(s->min < s->max)) q.fail("min", "must be below 'max'");
      }
      s->clip = q.boolean("clip", true);
    } else if (op == "resize") {
      s->op = Op::kResize;
      s->mode = q.choice("mode", {"stretch", "letterbox", "center_crop"}, "stretch");
      s->size = q.sizes("size", {2}, "two positive integers");
      s->antialias = q.boolean("antialias", true);
    } else if (op == "center_crop") {
      s->op = Op::kCenterCrop;
      s->size = is3d ? q.sizes("size", {2, 3}, "two or three positive integers")
                     : q.sizes("size", {2}, "two positive integers");
    } else if (op == "channels") {
      s->op = Op::kChannels;
      s->channels = q.positive_int("channels");
    } else if (op == "normalize") {
      s->op = Op::kNormalize;
      s->mode = q.choice("mode", {"mean_std", "zscore", "range"}, "mean_std");
      if (s->mode == "mean_std") {
        const size_t n = static_cast<size_t>(input.channels);
        s->mean = q.numbers("mean", true, 1, n);
        s->std = q.numbers("std", true, 1, n);
        for (const auto* v : {&s->mean, &s->std}) {
          if (v->size() != 1 && v->size() != n) {
            q.fail(v == &s->mean ? "mean" : "std",
                   "must have 1 or input.channels (" + std::to_string(n) + ") values");
          }
        }
        if (std::any_of(s->std.begin(), s->std.end(), [](double v) { return !(v > 0); })) {
          q.fail("std", "must be positive");
        }
      } else if (s->mode == "zscore") {
        s->nonzero = q.boolean("nonzero", false);
      } else {
        s->min = q.number("min");
        s->max = q.number("max");
        if (!(s->min < s->max)) q.fail("min", "must be below 'max'");
        s->to = q.numbers("to", false, 2, 2);
        if (!(s->to[0] < s->to[1])) q.fail("to", "must be [a, b] with a < b");
      }
    } else if (op == "resample" || op == "reorient" || op == "crop_pad") {
      if (!is3d) throw Error(MV_ERR_MODEL, q.context() + ": only for 3D models (input.ndim 3)");
      if (op == "resample") {
        s->op = Op::kResample;
        if (q.has("spacing")) {
          s->spacing = q.numbers("spacing", false, 3, 3);
          if (std::any_of(s->spacing.begin(), s->spacing.end(), [](double v) { return !(v > 0); }))
            q.fail("spacing", "must be three positive numbers [z, y, x] in mm");
        } else if (!input.spacing.empty()) {
          s->spacing = input.spacing;
        } else {
          q.fail("spacing", "is required when input.spacing is null");
        }
        if (q.has("order") && q.number("order") != 1.0) q.fail("order", "must be 1 (trilinear)");
      } else if (op == "reorient") {
        s->op = Op::kReorient;
        s->mode = q.choice("to", {"RAS", "LPS"}, nullptr);
      } else {
        s->op = Op::kCropPad;
        s->size = q.sizes("size", {3}, "three positive integers [D, H, W]");
        s->mode = q.choice("mode", {"center", "nonzero"}, "center");
      }
    } else {
      throw Error(MV_ERR_MODEL, at + ".op: unknown step '" + op + "'");
    }
    q.forbid_unread();
    p.steps_.push_back(std::move(s));
  }
  return p;
}

namespace {

// Everything a step may read or add to besides the pixels.
struct RunContext {
  const Image& image;
  const InputSpec& input;
  Prepared& out;
  void applied(const std::string& s) { out.chain.applied.push_back(s); }
  void warn(const std::string& s) { out.warnings.push_back(s); }
};

void apply_window(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  mv_voi_function fn = s.function == "sigmoid" ? MV_VOI_SIGMOID : MV_VOI_LINEAR_EXACT;
  double c = s.center, width = s.width;
  const WindowPreset* table = nullptr;
  std::string what;
  if (s.mode == "explicit") {
    fn = s.function == "sigmoid" ? MV_VOI_SIGMOID : MV_VOI_LINEAR;
    what = "explicit";
  } else if (s.mode == "dicom" && !ctx.image.windows.empty()) {
    const WindowPreset& wp = ctx.image.windows.front();
    fn = wp.function;
    c = wp.center;
    width = wp.width;
    if (fn == MV_VOI_TABLE && !wp.table.empty()) table = &wp;
    what = "dicom preset" + (wp.explanation.empty() ? "" : " '" + wp.explanation + "'");
  } else {
    if (s.mode == "dicom") {
      ctx.warn("window: the image has no VOI preset; used percentiles " + num_text(s.low) + "-" +
               num_text(s.high));
    }
    // A percentile window is the exact linear map [p_low, p_high] -> [0, 1] (DICOM's
    // LINEAR_EXACT), since the half-unit shifts of C.11.2.1.2 assume integer stored values.
    const auto lh = percentiles(w.data(), w.count(), s.low, s.high);
    c = (lh.first + lh.second) / 2;
    width = lh.second - lh.first;
    what = "percentile " + num_text(s.low) + "-" + num_text(s.high);
  }
  const float* in = w.data();
  float* out = w.elementwise_output();
  const int64_t n = w.count();
  if (table != nullptr) {
    const auto& t = table->table;
    const int64_t last = static_cast<int64_t>(t.size()) - 1;
    const double scale = 1.0 / (std::ldexp(1.0, table->table_bits) - 1.0);
    for (int64_t i = 0; i < n; ++i) {
      const double k = std::nearbyint(static_cast<double>(in[i]) - table->first_mapped);
      const int64_t idx = k <= 0 ? 0 : (k >= as_double(last) ? last : static_cast<int64_t>(k));
      out[i] = static_cast<float>(t[idx] * scale);
    }
    ctx.applied("window: " + what + " (VOI LUT table)");
  } else if (!(width > 0)) {
    // A degenerate window (constant image, or a broken preset): a step at the centre.
    ctx.warn("window: zero width (constant image?); output is a step at " + num_text(c));
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] > c ? 1.0f : 0.0f;
    ctx.applied("window: " + what + " (degenerate)");
  } else {
    if (fn == MV_VOI_LINEAR && width < 1) fn = MV_VOI_LINEAR_EXACT;  // C.11.2.1.2 needs w >= 1
    const WindowFn f{fn, c, width};
    for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
    ctx.applied("window: " + what + " center " + num_text(c) + " width " + num_text(width) +
                (fn == MV_VOI_SIGMOID ? " sigmoid" : " linear"));
  }
  w.commit_elementwise();
}

void apply_scale(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  double lo = s.min, hi = s.max;
  if (s.mode == "minmax") {
    const auto mm = w.min_max();
    lo = mm.first;
    hi = mm.second;
  } else if (s.mode == "percentile") {
    std::tie(lo, hi) = percentiles(w.data(), w.count(), s.low, s.high);
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
    if (s.clip) {
      for (int64_t i = 0; i < n; ++i) out[i] = std::min(std::max((in[i] - a) * inv, 0.0f), 1.0f);
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - a) * inv;
    }
  }
  w.commit_elementwise();
  ctx.applied("scale: " + s.mode + " [" + num_text(lo) + ", " + num_text(hi) + "] -> [0, 1]" +
              (s.clip ? " clipped" : ""));
}

void apply_resize_to(Work& w, const Size3& to, bool antialias, RunContext& ctx) {
  const Size3 from = w.size();
  if (from == to) return;
  std::vector<float> r =
      detail::resample(w.data(), w.channels(), from, to, antialias && to[0] == from[0]);
  w.replace(std::move(r), w.channels(), to);
  ctx.out.chain.steps.push_back(resize_step(from, to));
}

void apply_window_crop(Work& w, const Size3& start, const Size3& to, const std::string& op,
                       RunContext& ctx) {
  const Size3 from = w.size();
  if (from == to && start == Size3{{0, 0, 0}}) return;
  w.replace(crop_pad(w.data(), w.channels(), from, start, to), w.channels(), to);
  GridStep g = make_step(op, from, to);
  for (int a = 0; a < 3; ++a) g.offset[a] = as_double(-start[a]);
  ctx.out.chain.steps.push_back(g);
}

void apply_resize(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  const Size3 in = w.size();
  const int64_t H = s.size[0], W = s.size[1], h = in[1], wd = in[2];
  std::string text = "resize: " + s.mode + " " + std::to_string(h) + "x" + std::to_string(wd);
  if (s.mode == "stretch") {
    apply_resize_to(w, {{in[0], H, W}}, s.antialias, ctx);
  } else if (s.mode == "letterbox") {
    const double f = std::min(as_double(H) / as_double(h), as_double(W) / as_double(wd));
    const int64_t nh = std::clamp<int64_t>(std::llround(as_double(h) * f), 1, H);
    const int64_t nw = std::clamp<int64_t>(std::llround(as_double(wd) * f), 1, W);
    apply_resize_to(w, {{in[0], nh, nw}}, s.antialias, ctx);
    apply_window_crop(w, {{0, -((H - nh) / 2), -((W - nw) / 2)}}, {{in[0], H, W}}, "pad", ctx);
    text += " -> " + std::to_string(nh) + "x" + std::to_string(nw) + " padded";
  } else {
    // torchvision Resize(shorter side) + CenterCrop: the axis that needs the larger factor gets
    // its target exactly, the other int(target * long / short) as torchvision truncates it.
    int64_t nh = H, nw = W;
    if (as_double(H) * as_double(wd) >= as_double(W) * as_double(h)) {
      nw = std::max<int64_t>(W, static_cast<int64_t>(as_double(H) * as_double(wd) / as_double(h)));
    } else {
      nh = std::max<int64_t>(H, static_cast<int64_t>(as_double(W) * as_double(h) / as_double(wd)));
    }
    apply_resize_to(w, {{in[0], nh, nw}}, s.antialias, ctx);
    apply_window_crop(w, {{0, centred_start(nh, H), centred_start(nw, W)}}, {{in[0], H, W}}, "crop",
                      ctx);
    text += " -> " + std::to_string(nh) + "x" + std::to_string(nw) + " cropped";
  }
  ctx.applied(text + " -> " + std::to_string(H) + "x" + std::to_string(W) +
              (s.antialias ? " (bilinear, antialias)" : " (bilinear)"));
}

void apply_center_crop(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  const Size3 in = w.size();
  Size3 to = in;
  const size_t k = s.size.size();
  for (size_t i = 0; i < k; ++i) to[3 - k + i] = s.size[i];
  Size3 start{};
  for (int a = 0; a < 3; ++a) start[a] = centred_start(in[a], to[a]);
  apply_window_crop(w, start, to, "crop", ctx);
  ctx.applied("center_crop: " + size_text(in) + " -> " + size_text(to));
}

void apply_channels(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  const int64_t c = w.channels(), n = s.channels, v = w.voxels();
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
    throw Error(MV_ERR_SHAPE_MISMATCH, s.context + ": cannot convert " + std::to_string(c) +
                                           " channels to " + std::to_string(n));
  }
  w.replace(std::move(out), n, w.size());
}

void apply_normalize(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  const int64_t c = w.channels(), v = w.voxels();
  const float* in = w.data();
  float* out = w.elementwise_output();
  if (s.mode == "range") {
    // y = a + (b - a) * (clip(x, min, max) - min) / (max - min). For torchxrayvision's
    // normalize(img, maxval) = (2 * img / maxval - 1) * 1024 this is min 0, max maxval,
    // to [-1024, 1024]; xrv raises on values above maxval where this clips them.
    const double lo = s.min, hi = s.max, a = s.to[0], k = (s.to[1] - s.to[0]) / (hi - lo);
    const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi);
    for (int64_t i = 0; i < c * v; ++i) {
      out[i] = static_cast<float>(a + k * (std::min(std::max(in[i], flo), fhi) - lo));
    }
    ctx.applied("normalize: range [" + num_text(lo) + ", " + num_text(hi) + "] -> [" +
                num_text(s.to[0]) + ", " + num_text(s.to[1]) + "]");
  } else {
    if (s.mode == "mean_std" && ((s.mean.size() != 1 && static_cast<int64_t>(s.mean.size()) != c) ||
                                 (s.std.size() != 1 && static_cast<int64_t>(s.std.size()) != c))) {
      throw Error(MV_ERR_SHAPE_MISMATCH, s.context + ": has per-channel values for " +
                                             std::to_string(std::max(s.mean.size(), s.std.size())) +
                                             " channels but the image has " + std::to_string(c));
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* x = in + ch * v;
      float* y = out + ch * v;
      double mean, sd;
      if (s.mode == "mean_std") {
        mean = s.mean[s.mean.size() == 1 ? 0 : ch];
        sd = s.std[s.std.size() == 1 ? 0 : ch];
      } else {
        // Population statistics (ddof 0), as MONAI NormalizeIntensity; in double so that
        // large volumes do not lose precision.
        double sum = 0, sum2 = 0;
        int64_t m = 0;
        for (int64_t i = 0; i < v; ++i) {
          if (s.nonzero && x[i] == 0.0f) continue;
          sum += x[i];
          ++m;
        }
        mean = m ? sum / as_double(m) : 0.0;
        for (int64_t i = 0; i < v; ++i) {
          if (s.nonzero && x[i] == 0.0f) continue;
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
      if (s.nonzero && s.mode == "zscore") {
        for (int64_t i = 0; i < v; ++i) y[i] = x[i] == 0.0f ? 0.0f : (x[i] - fm) * inv;
      } else {
        for (int64_t i = 0; i < v; ++i) y[i] = (x[i] - fm) * inv;
      }
    }
    ctx.applied(s.mode == "mean_std" ? "normalize: mean/std"
                                     : std::string("normalize: zscore") +
                                           (s.nonzero ? " over non-zero voxels" : ""));
  }
  w.commit_elementwise();
}

void apply_resample(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  const Size3 in = w.size();
  Size3 to{};
  for (int a = 0; a < 3; ++a) {
    to[a] = std::max<int64_t>(1, std::llround(as_double(in[a]) * w.spacing_[a] / s.spacing[a]));
  }
  for (int a = 0; a < 3; ++a) {
    // Output voxel 0 sits at input coordinate 0.5 * in/out - 0.5 (half-pixel convention).
    const double f = as_double(in[a]) / as_double(to[a]);
    const double shift = (0.5 * f - 0.5) * w.spacing_[a];
    for (int r = 0; r < 3; ++r) w.origin_[r] += w.dir_[a][r] * shift;
    w.spacing_[a] *= f;
  }
  if (to != in) {
    std::vector<float> r = detail::resample(w.data(), w.channels(), in, to, false);
    w.replace(std::move(r), w.channels(), to);
    ctx.out.chain.steps.push_back(resize_step(in, to));
  }
  ctx.applied("resample: " + size_text(in) + " -> " + size_text(to) + " (trilinear), spacing " +
              num_text(w.spacing_[0]) + "x" + num_text(w.spacing_[1]) + "x" +
              num_text(w.spacing_[2]) + " mm");
}

void apply_reorient(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  // Target: W (x) runs to L or R, H (y) to P or A, D (z) to S, i.e. the LPS axis index of array
  // axis a is 2 - a, and its sign is +1 for LPS, (-1, -1, +1) for RAS in (x, y, z).
  const bool ras = s.mode == "RAS";
  // Closest LPS axis of every array axis: greedily take the largest remaining |component|, so
  // that oblique volumes still get a one-to-one assignment.
  std::array<int, 3> patient_of{{-1, -1, -1}};
  std::array<bool, 3> axis_used{}, patient_used{};
  for (int round = 0; round < 3; ++round) {
    int best_a = 0, best_r = 0;
    double best = -1;
    for (int a = 0; a < 3; ++a) {
      for (int r = 0; r < 3; ++r) {
        if (axis_used[a] || patient_used[r]) continue;
        if (std::fabs(w.dir_[a][r]) > best) {
          best = std::fabs(w.dir_[a][r]);
          best_a = a;
          best_r = r;
        }
      }
    }
    axis_used[best_a] = patient_used[best_r] = true;
    patient_of[best_a] = best_r;
  }
  GridStep g = make_step("reorient", w.size(), w.size());
  const Size3 in = w.size();
  Size3 out{};
  for (int a = 0; a < 3; ++a) {
    const int want_r = 2 - a;  // LPS axis that output axis a must follow
    int src = 0;
    for (int k = 0; k < 3; ++k) {
      if (patient_of[k] == want_r) src = k;
    }
    const double want_sign = (ras && want_r < 2) ? -1.0 : 1.0;
    g.permutation[a] = src;
    g.flip[a] = (w.dir_[src][want_r] * want_sign) < 0;
    g.scale[a] = g.flip[a] ? -1.0 : 1.0;
    g.offset[a] = g.flip[a] ? as_double(in[src] - 1) : 0.0;
    out[a] = in[src];
  }
  g.out_size = out;
  const bool identity = g.permutation == std::array<int, 3>{{0, 1, 2}} &&
                        g.flip == std::array<bool, 3>{{false, false, false}};
  if (!identity) {
    // Geometry: the new voxel (0, 0, 0) is the old voxel at the flipped ends.
    for (int a = 0; a < 3; ++a) {
      if (g.flip[a]) {
        const int src = g.permutation[a];
        for (int r = 0; r < 3; ++r) {
          w.origin_[r] += w.dir_[src][r] * w.spacing_[src] * as_double(in[src] - 1);
        }
      }
    }
    std::array<std::array<double, 3>, 3> dir{};
    std::array<double, 3> sp{};
    for (int a = 0; a < 3; ++a) {
      for (int r = 0; r < 3; ++r) dir[a][r] = w.dir_[g.permutation[a]][r] * g.scale[a];
      sp[a] = w.spacing_[g.permutation[a]];
    }
    w.dir_ = dir;
    w.spacing_ = sp;
    // Data: out[c][z][y][x] = in[c][i] with i[perm[a]] = flip ? n - 1 - o[a] : o[a].
    std::array<int64_t, 3> in_stride{{in[1] * in[2], in[2], 1}};
    std::array<int64_t, 3> step{}, base{};
    for (int a = 0; a < 3; ++a) {
      const int64_t st = in_stride[g.permutation[a]];
      step[a] = g.flip[a] ? -st : st;
      base[a] = g.flip[a] ? st * (in[g.permutation[a]] - 1) : 0;
    }
    const int64_t v = w.voxels();
    std::unique_ptr<float[]> o(new float[static_cast<size_t>(w.count())]);
    for (int64_t c = 0; c < w.channels(); ++c) {
      const float* src = w.data() + c * v + base[0] + base[1] + base[2];
      float* dst = o.get() + c * v;
      for (int64_t z = 0; z < out[0]; ++z) {
        for (int64_t y = 0; y < out[1]; ++y) {
          const float* row = src + z * step[0] + y * step[1];
          for (int64_t x = 0; x < out[2]; ++x) *dst++ = row[x * step[2]];
        }
      }
    }
    w.replace(std::move(o), w.channels(), out);
    ctx.out.chain.steps.push_back(g);
  }
  std::string text = "reorient: to " + s.mode + " (axes from";
  for (int a = 0; a < 3; ++a) {
    text += std::string(" ") + (g.flip[a] ? "-" : "+") + "DHW"[g.permutation[a]];
  }
  ctx.applied(text + ")");
}

void apply_crop_pad(const Pipeline::Step& s, Work& w, RunContext& ctx) {
  const Size3 in = w.size();
  const Size3 to{{s.size[0], s.size[1], s.size[2]}};
  Size3 lo{{0, 0, 0}}, hi = in;
  if (s.mode == "nonzero") {
    // Bounding box of voxels non-zero in any channel.
    Size3 blo{{in[0], in[1], in[2]}}, bhi{{0, 0, 0}};
    const float* p = w.data();
    for (int64_t c = 0; c < w.channels(); ++c) {
      for (int64_t z = 0; z < in[0]; ++z) {
        for (int64_t y = 0; y < in[1]; ++y) {
          for (int64_t x = 0; x < in[2]; ++x) {
            if (*p++ == 0.0f) continue;
            blo = {{std::min(blo[0], z), std::min(blo[1], y), std::min(blo[2], x)}};
            bhi = {{std::max(bhi[0], z + 1), std::max(bhi[1], y + 1), std::max(bhi[2], x + 1)}};
          }
        }
      }
    }
    if (bhi[0] > blo[0]) {
      lo = blo;
      hi = bhi;
    } else {
      ctx.warn("crop_pad: the image has no non-zero voxels; cropped the centre");
    }
  }
  Size3 start{};
  for (int a = 0; a < 3; ++a) start[a] = lo[a] + centred_start(hi[a] - lo[a], to[a]);
  apply_window_crop(w, start, to, "crop_pad", ctx);
  ctx.applied("crop_pad: " + s.mode + " " + size_text(in) + " -> " + size_text(to));
}

}  // namespace

Prepared Pipeline::run(const Image& image) const {
  if (image.size() == 0) throw Error(MV_ERR_INVALID_ARGUMENT, "preprocess: the image is empty");
  if (input_.ndim == 2 && image.depth() != 1) {
    throw Error(MV_ERR_SHAPE_MISMATCH, "preprocess: the model takes 2D images but the image has " +
                                           std::to_string(image.depth()) +
                                           " slices; pick one slice (or frame) first");
  }
  Prepared prepared;
  RunContext ctx{image, input_, prepared};
  prepared.chain.original_size = {{image.depth(), image.height(), image.width()}};

  // Warnings about an input that does not look like what the model was trained on.
  if (const std::string* m = image.find_meta("Modality");
      m != nullptr && !input_.modalities.empty() &&
      std::find(input_.modalities.begin(), input_.modalities.end(), *m) ==
          input_.modalities.end()) {
    std::string list;
    for (const auto& e : input_.modalities) list += (list.empty() ? "" : ", ") + e;
    ctx.warn("modality " + *m + " is not one the model expects (" + list + ")");
  }
  if (image.photometric == MV_PHOTOMETRIC_MONOCHROME1 && !has_monochrome_) {
    ctx.warn("the image is MONOCHROME1 (inverted) and the pipeline has no monochrome step");
  }
  if ((image.channels() == 3 || image.photometric == MV_PHOTOMETRIC_RGB) && input_.channels == 1) {
    ctx.warn("a colour image is given to a single-channel model");
  }
  Work w(image);
  {
    const auto mm = w.min_max();
    if (!(mm.first <= mm.second)) {
      ctx.warn("the image has no finite values");
    } else if (!std::isfinite(mm.first) || !std::isfinite(mm.second)) {
      ctx.warn("the image has infinite values");
    } else if (mm.first == mm.second) {
      ctx.warn("the image is constant (all values " + num_text(mm.first) + ")");
    }
  }

  for (const auto& sp : steps_) {
    const Step& s = *sp;
    switch (s.op) {
      case Op::kMonochrome:
        if (w.photometric_ == MV_PHOTOMETRIC_MONOCHROME1) {
          const auto mm = w.min_max();
          const float sum = mm.first + mm.second;
          const float* in = w.data();
          float* out = w.elementwise_output();
          for (int64_t i = 0; i < w.count(); ++i) out[i] = sum - in[i];
          w.commit_elementwise();
          w.photometric_ = MV_PHOTOMETRIC_MONOCHROME2;
          ctx.applied("monochrome: MONOCHROME1 inverted (max + min - x)");
        } else {
          ctx.applied("monochrome: not MONOCHROME1, unchanged");
        }
        break;
      case Op::kWindow:
        apply_window(s, w, ctx);
        break;
      case Op::kScale:
        apply_scale(s, w, ctx);
        break;
      case Op::kResize:
        apply_resize(s, w, ctx);
        break;
      case Op::kCenterCrop:
        apply_center_crop(s, w, ctx);
        break;
      case Op::kChannels:
        apply_channels(s, w, ctx);
        break;
      case Op::kNormalize:
        apply_normalize(s, w, ctx);
        break;
      case Op::kResample:
        apply_resample(s, w, ctx);
        break;
      case Op::kReorient:
        apply_reorient(s, w, ctx);
        break;
      case Op::kCropPad:
        apply_crop_pad(s, w, ctx);
        break;
    }
  }
  if (w.channels() != input_.channels) {
    throw Error(MV_ERR_SHAPE_MISMATCH,
                "preprocess: the model expects " + std::to_string(input_.channels) +
                    " channels but the pipeline produced " + std::to_string(w.channels()) +
                    " (add or fix a 'channels' step)");
  }
  const Size3& sz = w.size();
  prepared.shape = input_.ndim == 2 ? std::vector<int64_t>{w.channels(), sz[1], sz[2]}
                                    : std::vector<int64_t>{w.channels(), sz[0], sz[1], sz[2]};
  prepared.data.assign(w.data(), w.data() + w.count());
  return prepared;
}

// ---------------------------------------------------------------------------------------------
std::vector<float> map_to_original(const TransformChain& chain, const float* data, int64_t channels,
                                   bool nearest, float fill) {
  // Compose the chain into model[a] = original[perm[a]] * scale[a] + offset[a].
  std::array<int, 3> perm{{0, 1, 2}};
  std::array<double, 3> scale{{1, 1, 1}}, offset{{0, 0, 0}};
  Size3 model = chain.original_size;
  for (const GridStep& g : chain.steps) {
    std::array<int, 3> p2{};
    std::array<double, 3> s2{}, o2{};
    for (int a = 0; a < 3; ++a) {
      const int k = g.permutation[a];
      p2[a] = perm[k];
      s2[a] = scale[k] * g.scale[a];
      o2[a] = offset[k] * g.scale[a] + g.offset[a];
    }
    perm = p2;
    scale = s2;
    offset = o2;
    model = g.out_size;
  }
  const Size3& orig = chain.original_size;
  const Size3 model_stride{{model[1] * model[2], model[2], 1}};

  // Per original axis: for every index, the two model samples (as flat offsets) and the weight
  // of the second; -1 marks positions the model never saw.
  struct Axis {
    std::vector<int64_t> i0, i1;
    std::vector<float> w1;
  };
  std::array<Axis, 3> ax;
  for (int a = 0; a < 3; ++a) {
    const int k = perm[a];  // original axis feeding model axis a
    Axis& t = ax[k];
    const int64_t n = model[a];
    t.i0.resize(orig[k]);
    t.i1.resize(orig[k]);
    t.w1.resize(orig[k]);
    for (int64_t i = 0; i < orig[k]; ++i) {
      const double c = as_double(i) * scale[a] + offset[a];
      if (c < -0.5 || c > as_double(n) - 0.5) {
        t.i0[i] = t.i1[i] = -1;
        t.w1[i] = 0;
        continue;
      }
      if (nearest) {
        const int64_t j = std::clamp<int64_t>(static_cast<int64_t>(std::floor(c + 0.5)), 0, n - 1);
        t.i0[i] = t.i1[i] = j * model_stride[a];
        t.w1[i] = 0;
      } else {
        const double cc = std::clamp(c, 0.0, as_double(n - 1));
        const int64_t j = std::min<int64_t>(static_cast<int64_t>(cc), n - 1);
        const int64_t j1 = std::min<int64_t>(j + 1, n - 1);
        t.i0[i] = j * model_stride[a];
        t.i1[i] = j1 * model_stride[a];
        t.w1[i] = static_cast<float>(cc - as_double(j));
      }
    }
  }

  const int64_t model_count = model[0] * model[1] * model[2];
  const int64_t orig_count = orig[0] * orig[1] * orig[2];
  std::vector<float> out(static_cast<size_t>(channels * orig_count));
  float* dst = out.data();
  for (int64_t c = 0; c < channels; ++c) {
    const float* m = data + c * model_count;
    for (int64_t z = 0; z < orig[0]; ++z) {
      const int64_t z0 = ax[0].i0[z], z1 = ax[0].i1[z];
      const float wz = ax[0].w1[z];
      for (int64_t y = 0; y < orig[1]; ++y) {
        const int64_t y0 = ax[1].i0[y], y1 = ax[1].i1[y];
        const float wy = ax[1].w1[y];
        if (z0 < 0 || y0 < 0) {
          std::fill(dst, dst + orig[2], fill);
          dst += orig[2];
          continue;
        }
        for (int64_t x = 0; x < orig[2]; ++x) {
          const int64_t x0 = ax[2].i0[x], x1 = ax[2].i1[x];
          if (x0 < 0) {
            *dst++ = fill;
            continue;
          }
          const float wx = ax[2].w1[x];
          const auto bilinear = [&](int64_t zo) {
            const float a = m[zo + y0 + x0] + wx * (m[zo + y0 + x1] - m[zo + y0 + x0]);
            const float b = m[zo + y1 + x0] + wx * (m[zo + y1 + x1] - m[zo + y1 + x0]);
            return a + wy * (b - a);
          };
          const float v0 = bilinear(z0);
          *dst++ = wz == 0.0f ? v0 : v0 + wz * (bilinear(z1) - v0);
        }
      }
    }
  }
  return out;
}

}  // namespace medvision::preprocess
