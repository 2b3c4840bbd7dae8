#pragma once
// medvision::preprocess: turns a decoded Image into the tensor a model expects, exactly as the
// model package's manifest declares (docs/model-package.md, "Steps"), and records what it did so
// that heat maps and masks can be mapped back onto the original image.

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/image.hpp"

namespace medvision::preprocess {

// One geometric change of the pixel grid, per spatial axis a in (z, y, x) = (depth, height,
// width): the voxel centre at input index i lands at output index
//   out[a] = i[permutation[a]] * scale[a] + offset[a].
// Crops have scale 1 and a negative offset; pads a positive one; resizes scale out/in with the
// half-pixel convention (offset = 0.5 * scale - 0.5). `reorient` steps permute, and flip with
// scale -1 and offset n - 1 (`flip` repeats that for readers). Every step is affine per axis, so
// a chain composes into one permutation plus one scale and offset per axis.
struct GridStep {
  std::string op;                     // "resize", "crop", "pad", "letterbox", "reorient", ...
  std::array<int64_t, 3> in_size{};   // (D, H, W) before
  std::array<int64_t, 3> out_size{};  // (D, H, W) after
  std::array<double, 3> scale{{1, 1, 1}};
  std::array<double, 3> offset{{0, 0, 0}};
  std::array<int, 3> permutation{{0, 1, 2}};  // output axis a takes input axis permutation[a]
  std::array<bool, 3> flip{{false, false, false}};
};

// The whole record: original grid, every grid step in order, and the final tensor shape.
struct TransformChain {
  std::array<int64_t, 3> original_size{};  // (D, H, W) of the input image
  std::vector<GridStep> steps;
  // Human-readable list of every step applied, value steps included (for results and logs).
  std::vector<std::string> applied;
};

struct InputSpec {
  int64_t channels = 1;
  int ndim = 2;                         // 2 or 3
  std::vector<int64_t> size;            // [H, W] or [D, H, W]
  std::vector<std::string> modalities;  // expected DICOM modalities (warning only)
  // 3D: the manifest's input.spacing [z, y, x] mm, the default of a `resample` step without its
  // own `spacing`; empty for null.
  std::vector<double> spacing;
};

// The result of running a pipeline on one image.
struct Prepared {
  std::vector<float> data;     // C-contiguous [C, H, W] (2D) or [C, D, H, W] (3D)
  std::vector<int64_t> shape;  // matching `data`
  TransformChain chain;
  // Warnings about the input looking wrong for the model (range, photometric, modality,
  // channel count). Never PHI.
  std::vector<std::string> warnings;
};

class Step;  // one step of a pipeline (step.hpp, internal)

class Pipeline {
 public:
  // Parses and validates the manifest's "preprocess" array against the input spec. Throws
  // medvision::Error(MV_ERR_MODEL, "<where>: preprocess[3].op: unknown step 'foo'") on any error.
  // `where` names the manifest for messages.
  static Pipeline from_json(const nlohmann::json& steps, const InputSpec& input,
                            const std::string& where);

  // Runs every step. Thread-safe (const, no shared mutable state). Throws medvision::Error.
  Prepared run(const Image& image) const;

  const InputSpec& input() const { return input_; }

 private:
  InputSpec input_;
  std::vector<std::shared_ptr<const Step>> steps_;
  bool has_monochrome_ = false;
};

// Maps a per-pixel map computed on the model input grid (e.g. a heat map or class probabilities,
// `channels` x the final grid of `chain`) back onto the original image grid, undoing every grid
// step in reverse (crop → place, pad → remove, resize → resize back, reorient → inverse).
// Areas that the model never saw (cropped away) get `fill`. `nearest` for label maps, else
// (bi/tri)linear. Returns channels x original (D, H, W), C-contiguous.
std::vector<float> map_to_original(const TransformChain& chain, const float* data, int64_t channels,
                                   bool nearest, float fill);

}  // namespace medvision::preprocess
