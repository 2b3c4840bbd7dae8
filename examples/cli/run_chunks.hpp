#pragma once
// The CLI's one way to run many files through the library's streaming pipeline
// (medvision::run_many, mv_model_run_many), used by classify and calibrate.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

// Runs `files` through `model` in chunks of max(64, 4 batches), so that a caller can print or
// keep each chunk's results as they come while the pipeline bounds memory inside a chunk, with
// one progress bar over all files. `options.progress` is replaced by the bar. `on_chunk(names,
// items)` gets each chunk's file names and their results (or per-file status and message), in
// input order. Exceptions from run_many (bad options, MV_ERR_CANCELLED) and from `on_chunk`
// propagate.
template <class OnChunk>
void run_chunks(const medvision::Model& model, const std::vector<std::string>& files,
                medvision::PipelineOptions options, OnChunk&& on_chunk) {
  Progress progress(files.size());
  options.batch_size = std::max(1, options.batch_size);
  const size_t chunk = std::max<size_t>(64, 4 * static_cast<size_t>(options.batch_size));
  for (size_t start = 0; start < files.size(); start += chunk) {
    const size_t end = std::min(files.size(), start + chunk);
    const std::vector<std::string> names(files.begin() + static_cast<std::ptrdiff_t>(start),
                                         files.begin() + static_cast<std::ptrdiff_t>(end));
    options.progress = [&progress, start](uint64_t done, uint64_t) {
      progress.update(start + static_cast<size_t>(done));
      return true;
    };
    const std::vector<medvision::ItemResult> items = medvision::run_many(model, names, options);
    on_chunk(names, items);
    progress.update(end);
  }
}

}  // namespace mvcli
