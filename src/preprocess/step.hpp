#pragma once
// One preprocessing step = one type: it parses its manifest entry (Params), applies itself to
// the working tensor (Work), and, when it changes the pixel grid, records the GridStep that
// map_to_original() inverts. Steps are listed once, in the table in registry.cpp; intensity
// steps live in intensity_steps.cpp, geometry steps in geometry_steps.cpp. Internal to the
// module; docs/architecture.md, "Add a preprocessing step", is the checklist.

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/image.hpp"
#include "preprocess/params.hpp"
#include "preprocess/preprocess.hpp"

namespace medvision::preprocess {

using Size3 = std::array<int64_t, 3>;  // (D, H, W)

inline double as_double(int64_t v) { return static_cast<double>(v); }

inline std::string size_text(const Size3& s) {
  return std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]);
}

inline std::string num_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// The working tensor, [C][D][H][W], plus the geometry the 3D steps need. It borrows the input
// image's pixels until a step writes, so a pipeline that starts with a resize never copies the
// full-size image.
class Work {
 public:
  explicit Work(const Image& image);

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
  void replace(const std::vector<float>& pixels, int64_t channels, const Size3& size);
  void replace(std::unique_ptr<float[]> pixels, int64_t channels, const Size3& size);

  // Smallest and largest value over all channels, cached until the pixels change (the run-time
  // checks, `monochrome` and `scale minmax` all need it). NaNs are skipped.
  std::pair<float, float> min_max() const;

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

// Everything a step may read or add to besides the pixels.
struct RunContext {
  const Image& image;
  const InputSpec& input;
  Prepared& out;
  void applied(const std::string& s) { out.chain.applied.push_back(s); }
  void warn(const std::string& s) { out.warnings.push_back(s); }
  // Geometry steps: records one change of the pixel grid for map_to_original().
  void moved(const GridStep& g) { out.chain.steps.push_back(g); }
};

class Step {
 public:
  virtual ~Step() = default;
  // Transforms `w` in place. Throws medvision::Error naming context() on a run-time mismatch.
  virtual void apply(Work& w, RunContext& ctx) const = 0;
  const std::string& context() const { return context_; }
  void set_context(std::string c) { context_ = std::move(c); }

 private:
  std::string context_;  // "<where>: preprocess[i] (op)" for run-time messages
};

// What a step does, for the table and for docs: intensity steps change values only; geometry
// steps change the grid and record its inverse (a GridStep) as they apply.
enum class StepFamily { kIntensity, kGeometry };

// One row of the step table: the manifest's "op", the family, whether the step needs a 3D
// model, and its parser (reads every parameter through Params; throws MV_ERR_MODEL naming the
// step and the field).
struct StepKind {
  const char* op;
  StepFamily family;
  bool only_3d;
  std::unique_ptr<Step> (*parse)(Params& q, const InputSpec& input);
};

// The table (registry.cpp), and the row for `op` (nullptr when unknown).
const std::vector<StepKind>& step_table();
const StepKind* find_step(const std::string& op);

// Parsers, one per step (intensity_steps.cpp and geometry_steps.cpp).
std::unique_ptr<Step> parse_monochrome(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_window(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_scale(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_channels(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_normalize(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_clip(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_resize(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_center_crop(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_resample(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_reorient(Params& q, const InputSpec& input);
std::unique_ptr<Step> parse_crop_pad(Params& q, const InputSpec& input);

}  // namespace medvision::preprocess
