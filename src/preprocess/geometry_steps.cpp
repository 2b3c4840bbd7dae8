// Geometry steps: they change the pixel grid and record, as they apply, the GridStep that
// describes the change (an affine map per axis). That record is each step's inverse:
// map_to_original() composes the chain's records and interpolates a result back onto the
// original grid once, rather than once per step as undoing steps one by one would. One type per
// manifest "op".

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "common/resample.hpp"
#include "preprocess/step.hpp"

namespace medvision::preprocess {
namespace {

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

// Half-pixel resize: out = in * scale + (0.5 * scale - 0.5) per axis.
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

void resize_to(Work& w, const Size3& to, bool antialias, RunContext& ctx) {
  const Size3 from = w.size();
  if (from == to) return;
  w.replace(resample::resample(w.data(), w.channels(), from, to, antialias && to[0] == from[0]),
            w.channels(), to);
  ctx.moved(resize_step(from, to));
}

void window_crop(Work& w, const Size3& start, const Size3& to, const std::string& op,
                 RunContext& ctx) {
  const Size3 from = w.size();
  if (from == to && start == Size3{{0, 0, 0}}) return;
  w.replace(crop_pad(w.data(), w.channels(), from, start, to), w.channels(), to);
  GridStep g = make_step(op, from, to);
  for (int a = 0; a < 3; ++a) g.offset[a] = as_double(-start[a]);
  ctx.moved(g);
}

// ---- resize: 2D bilinear to [H, W], stretched, letterboxed or resized-and-cropped ---------
enum class ResizeMode { kStretch, kLetterbox, kCenterCrop };
constexpr std::array<Named<ResizeMode>, 3> kResizeModes{{{"stretch", ResizeMode::kStretch},
                                                         {"letterbox", ResizeMode::kLetterbox},
                                                         {"center_crop", ResizeMode::kCenterCrop}}};

class Resize final : public Step {
 public:
  static std::unique_ptr<Step> parse(Params& q) {
    auto s = std::make_unique<Resize>();
    s->mode_ = q.choice("mode", kResizeModes, std::optional(ResizeMode::kStretch));
    const auto size = q.sizes("size", {2}, "two positive integers");
    s->h_ = size[0];
    s->w_ = size[1];
    s->antialias_ = q.boolean("antialias", true);
    return s;
  }

  void apply(Work& w, RunContext& ctx) const override {
    const Size3 in = w.size();
    const int64_t H = h_, W = w_, h = in[1], wd = in[2];
    std::string text = "resize: " + std::string(name_of(kResizeModes, mode_)) + " " +
                       std::to_string(h) + "x" + std::to_string(wd);
    if (mode_ == ResizeMode::kStretch) {
      resize_to(w, {{in[0], H, W}}, antialias_, ctx);
    } else if (mode_ == ResizeMode::kLetterbox) {
      const double f = std::min(as_double(H) / as_double(h), as_double(W) / as_double(wd));
      const int64_t nh = std::clamp<int64_t>(std::llround(as_double(h) * f), 1, H);
      const int64_t nw = std::clamp<int64_t>(std::llround(as_double(wd) * f), 1, W);
      resize_to(w, {{in[0], nh, nw}}, antialias_, ctx);
      window_crop(w, {{0, -((H - nh) / 2), -((W - nw) / 2)}}, {{in[0], H, W}}, "pad", ctx);
      text += " -> " + std::to_string(nh) + "x" + std::to_string(nw) + " padded";
    } else {
      // torchvision Resize(shorter side) + CenterCrop: the axis that needs the larger factor
      // gets its target exactly, the other int(target * long / short) as torchvision truncates.
      int64_t nh = H, nw = W;
      if (as_double(H) * as_double(wd) >= as_double(W) * as_double(h)) {
        nw =
            std::max<int64_t>(W, static_cast<int64_t>(as_double(H) * as_double(wd) / as_double(h)));
      } else {
        nh =
            std::max<int64_t>(H, static_cast<int64_t>(as_double(W) * as_double(h) / as_double(wd)));
      }
      resize_to(w, {{in[0], nh, nw}}, antialias_, ctx);
      window_crop(w, {{0, centred_start(nh, H), centred_start(nw, W)}}, {{in[0], H, W}}, "crop",
                  ctx);
      text += " -> " + std::to_string(nh) + "x" + std::to_string(nw) + " cropped";
    }
    ctx.applied(text + " -> " + std::to_string(H) + "x" + std::to_string(W) +
                (antialias_ ? " (bilinear, antialias)" : " (bilinear)"));
  }

 private:
  ResizeMode mode_ = ResizeMode::kStretch;
  int64_t h_ = 1, w_ = 1;
  bool antialias_ = true;
};

// ---- center_crop: a centred window of [H, W] (or [D, H, W] in 3D), zero-padded ------------
class CenterCrop final : public Step {
 public:
  explicit CenterCrop(std::vector<int64_t> size) : size_(std::move(size)) {}

  void apply(Work& w, RunContext& ctx) const override {
    const Size3 in = w.size();
    Size3 to = in;
    const size_t k = size_.size();
    for (size_t i = 0; i < k; ++i) to[3 - k + i] = size_[i];
    Size3 start{};
    for (int a = 0; a < 3; ++a) start[a] = centred_start(in[a], to[a]);
    window_crop(w, start, to, "crop", ctx);
    ctx.applied("center_crop: " + size_text(in) + " -> " + size_text(to));
  }

 private:
  std::vector<int64_t> size_;
};

// ---- resample (3D): trilinear to a voxel spacing -------------------------------------------
class Resample final : public Step {
 public:
  static std::unique_ptr<Step> parse(Params& q, const InputSpec& input) {
    auto s = std::make_unique<Resample>();
    if (q.has("spacing")) {
      const auto v = q.numbers("spacing", false, 3, 3);
      if (std::any_of(v.begin(), v.end(), [](double e) { return !(e > 0); }))
        q.fail("spacing", "must be three positive numbers [z, y, x] in mm");
      std::copy(v.begin(), v.end(), s->spacing_.begin());
    } else if (!input.spacing.empty()) {
      std::copy(input.spacing.begin(), input.spacing.end(), s->spacing_.begin());
    } else {
      q.fail("spacing", "is required when input.spacing is null");
    }
    if (q.has("order") && q.number("order") != 1.0) q.fail("order", "must be 1 (trilinear)");
    return s;
  }

  void apply(Work& w, RunContext& ctx) const override {
    const Size3 in = w.size();
    Size3 to{};
    for (int a = 0; a < 3; ++a) {
      to[a] = std::max<int64_t>(1, std::llround(as_double(in[a]) * w.spacing_[a] / spacing_[a]));
    }
    for (int a = 0; a < 3; ++a) {
      // Output voxel 0 sits at input coordinate 0.5 * in/out - 0.5 (half-pixel convention).
      const double f = as_double(in[a]) / as_double(to[a]);
      const double shift = (0.5 * f - 0.5) * w.spacing_[a];
      for (int r = 0; r < 3; ++r) w.origin_[r] += w.dir_[a][r] * shift;
      w.spacing_[a] *= f;
    }
    if (to != in) {
      w.replace(resample::resample(w.data(), w.channels(), in, to, false), w.channels(), to);
      ctx.moved(resize_step(in, to));
    }
    ctx.applied("resample: " + size_text(in) + " -> " + size_text(to) + " (trilinear), spacing " +
                num_text(w.spacing_[0]) + "x" + num_text(w.spacing_[1]) + "x" +
                num_text(w.spacing_[2]) + " mm");
  }

 private:
  std::array<double, 3> spacing_{};
};

// ---- reorient (3D): permute and flip axes to RAS or LPS ------------------------------------
enum class Orientation { kRas, kLps };
constexpr std::array<Named<Orientation>, 2> kOrientations{
    {{"RAS", Orientation::kRas}, {"LPS", Orientation::kLps}}};

class Reorient final : public Step {
 public:
  explicit Reorient(Orientation to) : to_(to) {}

  void apply(Work& w, RunContext& ctx) const override {
    const GridStep g = plan(w);
    const bool identity = g.permutation == std::array<int, 3>{{0, 1, 2}} &&
                          g.flip == std::array<bool, 3>{{false, false, false}};
    if (!identity) {
      move_geometry(g, w);
      permute_pixels(g, w);
      ctx.moved(g);
    }
    std::string text = "reorient: to " + std::string(name_of(kOrientations, to_)) + " (axes from";
    for (int a = 0; a < 3; ++a) {
      text += std::string(" ") + (g.flip[a] ? "-" : "+") + "DHW"[g.permutation[a]];
    }
    ctx.applied(text + ")");
  }

 private:
  // Which input axis every output axis takes, and whether it runs backwards.
  GridStep plan(const Work& w) const {
    // Target: W (x) runs to L or R, H (y) to P or A, D (z) to S, i.e. the LPS axis index of
    // array axis a is 2 - a, and its sign is +1 for LPS, (-1, -1, +1) for RAS in (x, y, z).
    const bool ras = to_ == Orientation::kRas;
    // Closest LPS axis of every array axis: greedily take the largest remaining |component|,
    // so that oblique volumes still get a one-to-one assignment.
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
      g.out_size[a] = in[src];
    }
    return g;
  }

  // The new voxel (0, 0, 0) is the old voxel at the flipped ends; axes follow the permutation.
  static void move_geometry(const GridStep& g, Work& w) {
    const Size3 in = w.size();
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
  }

  // out[c][z][y][x] = in[c][i] with i[perm[a]] = flip ? n - 1 - o[a] : o[a].
  static void permute_pixels(const GridStep& g, Work& w) {
    const Size3 in = w.size(), out = g.out_size;
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
  }

  Orientation to_;
};

// ---- crop_pad (3D): a [D, H, W] window centred on the volume or its non-zero box -----------
enum class CropPadMode { kCenter, kNonzero };
constexpr std::array<Named<CropPadMode>, 2> kCropPadModes{
    {{"center", CropPadMode::kCenter}, {"nonzero", CropPadMode::kNonzero}}};

class CropPad final : public Step {
 public:
  static std::unique_ptr<Step> parse(Params& q) {
    auto s = std::make_unique<CropPad>();
    const auto size = q.sizes("size", {3}, "three positive integers [D, H, W]");
    s->size_ = {{size[0], size[1], size[2]}};
    s->mode_ = q.choice("mode", kCropPadModes, std::optional(CropPadMode::kCenter));
    return s;
  }

  void apply(Work& w, RunContext& ctx) const override {
    const Size3 in = w.size();
    Size3 lo{{0, 0, 0}}, hi = in;
    if (mode_ == CropPadMode::kNonzero && !nonzero_box(w, &lo, &hi)) {
      ctx.warn("crop_pad: the image has no non-zero voxels; cropped the centre");
    }
    Size3 start{};
    for (int a = 0; a < 3; ++a) start[a] = lo[a] + centred_start(hi[a] - lo[a], size_[a]);
    window_crop(w, start, size_, "crop_pad", ctx);
    ctx.applied("crop_pad: " + std::string(name_of(kCropPadModes, mode_)) + " " + size_text(in) +
                " -> " + size_text(size_));
  }

 private:
  // Bounding box [lo, hi) of voxels non-zero in any channel; false (box untouched) when none.
  static bool nonzero_box(const Work& w, Size3* lo, Size3* hi) {
    const Size3 in = w.size();
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
    if (!(bhi[0] > blo[0])) return false;
    *lo = blo;
    *hi = bhi;
    return true;
  }

  Size3 size_{};
  CropPadMode mode_ = CropPadMode::kCenter;
};

}  // namespace

std::unique_ptr<Step> parse_resize(Params& q, const InputSpec&) { return Resize::parse(q); }
std::unique_ptr<Step> parse_center_crop(Params& q, const InputSpec& input) {
  return std::make_unique<CenterCrop>(
      input.ndim == 3 ? q.sizes("size", {2, 3}, "two or three positive integers")
                      : q.sizes("size", {2}, "two positive integers"));
}
std::unique_ptr<Step> parse_resample(Params& q, const InputSpec& input) {
  return Resample::parse(q, input);
}
std::unique_ptr<Step> parse_reorient(Params& q, const InputSpec&) {
  return std::make_unique<Reorient>(q.choice("to", kOrientations, std::optional<Orientation>()));
}
std::unique_ptr<Step> parse_crop_pad(Params& q, const InputSpec&) { return CropPad::parse(q); }

}  // namespace medvision::preprocess
