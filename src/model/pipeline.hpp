#pragma once
// medvision::model::run_many: the streaming pipeline (docs/c-api.md, "Many images").
//
// Many inputs (paths or in-memory images) in, one result or one error per input out, in input
// order. A few decode workers read and preprocess the inputs into a bounded window of
// model-sized tensors while the calling thread runs batched inference on them, so that decoding
// the next images overlaps inference of the current batch and at most `decode_threads` full-size
// images exist at once. One bad input never fails the others.
//
// Threads: `decode_threads` workers (0: min(2, usable CPUs)) plus the calling thread, which runs
// inference on LibTorch's intra-op pool as the model set it at load (mv_model_options
// num_threads). The pipeline never changes that pool: it is process-wide. Rule (docs/c-api.md):
// decode workers + intra-op threads <= usable CPUs avoids oversubscription; the CLI loads its
// model with that split when --threads is 0.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/image.hpp"
#include "io/io.hpp"
#include "model/model.hpp"
#include "model/result.hpp"

namespace medvision::model {

// One input: a file path, or (when `image` is set) an image the caller owns and keeps alive for
// the duration of the call.
struct PipelineInput {
  std::string path;
  const Image* image = nullptr;
};

struct PipelineOptions {
  int batch_size = 8;      // classification: images per inference batch (>= 1)
  int decode_threads = 0;  // 0: min(2, usable CPUs)
  int queue_batches = 2;   // prepared inputs waiting for inference, in batches (>= 1)
  // Called on the calling thread after each batch (and after each failed input) with the inputs
  // finished so far and the total; returning false cancels (MV_ERR_CANCELLED is thrown).
  std::function<bool(uint64_t, uint64_t)> progress;
  // How paths are decoded, and a hook applied to each image decoded from a path (the C API's
  // user pixel spacing); images passed in memory are used as they are.
  io::LoadOptions load;
  std::function<void(Image&)> after_load;
};

struct PipelineItem {
  mv_status status = MV_OK;
  std::string message;           // names the input and the problem; "" when status is MV_OK
  std::optional<Result> result;  // set when status is MV_OK
};

// The number of decode workers for `requested` (0: min(2, usable CPUs)).
int pipeline_decode_threads(int requested);

// Runs `model` on every input. Per-input failures are reported in the items; throws
// medvision::Error only for bad options (MV_ERR_INVALID_ARGUMENT) and cancellation
// (MV_ERR_CANCELLED), after every worker has stopped. Thread-safe like Model::run.
std::vector<PipelineItem> run_many(const Model& model, const std::vector<PipelineInput>& inputs,
                                   const PipelineOptions& options);

}  // namespace medvision::model
