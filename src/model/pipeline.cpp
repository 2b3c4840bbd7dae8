#include "model/pipeline.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "common/error.hpp"
#include "common/log.hpp"
#include "common/parallel.hpp"
#include "common/utf8.hpp"
#include "infer/runtime.hpp"
#include "io/io.hpp"

namespace medvision::model {

namespace {

// What a decode worker hands to the inference thread for one input.
struct Slot {
  mv_status status = MV_OK;
  std::string message;
  preprocess::Prepared prepared;  // classification
  std::unique_ptr<Image> owned;   // segmentation: the decoded image (paths)
  const Image* image = nullptr;   // segmentation: owned.get() or the caller's image
};

std::string input_name(const PipelineInput& in, size_t i) {
  return in.image != nullptr ? "images[" + std::to_string(i) + "]" : in.path;
}

// "<name>: <problem>", unless the message already starts with the name (io errors do).
std::string named(const std::string& name, const std::string& message) {
  std::string m = to_valid_utf8(message);
  if (m.compare(0, name.size(), name) == 0) return m;
  return to_valid_utf8(name) + ": " + m;
}

// Runs `fn`, turning any exception into a status and a message naming the input, by the same
// mapping as the C boundary (common/error.hpp).
template <typename Fn>
void guarded(const std::string& name, mv_status* status, std::string* message, Fn&& fn) {
  try {
    fn();
  } catch (...) {
    ErrorInfo info = error_info(std::current_exception());
    *status = info.status;
    *message = named(name, info.message);
  }
}

class Runner {
 public:
  Runner(const Model& model, const std::vector<PipelineInput>& inputs,
         const PipelineOptions& options)
      : model_(model),
        inputs_(inputs),
        options_(options),
        segmentation_(model.manifest().task == Task::kSegmentation),
        slots_(inputs.size()),
        ready_(inputs.size(), 0),
        items_(inputs.size()) {
    // Classification: `queue_batches` batches of model-sized tensors may wait for inference.
    // Segmentation: whole images wait (one per run), so the window is `queue_batches` images.
    const auto batches = static_cast<size_t>(options.queue_batches);
    window_ = segmentation_ ? batches : batches * static_cast<size_t>(options.batch_size);
  }

  ~Runner() { stop(); }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  std::vector<PipelineItem> run() {
    const int n_workers = std::min<int>(pipeline_decode_threads(options_.decode_threads),
                                        static_cast<int>(std::max<size_t>(1, inputs_.size())));
    workers_.reserve(static_cast<size_t>(n_workers));
    // The CPUs are shared out among the workers: each may use its share inside one decode (one
    // input alone gets them all; two workers on two CPUs decode with one thread each).
    const int inner = std::max(1, usable_cpus() / n_workers);
    for (int w = 0; w < n_workers; ++w) workers_.emplace_back([this, inner] { work(inner); });
    consume();
    stop();
    return std::move(items_);
  }

 private:
  // Stops and joins the workers (idempotent): on return no thread touches this object.
  void stop() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    space_.notify_all();
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    workers_.clear();
  }

  void work(int inner_threads) noexcept {
    const ParallelismScope share(inner_threads);
    for (;;) {
      size_t i = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        space_.wait(lock, [&] {
          return stopping_ || next_ >= inputs_.size() || next_ < consumed_ + window_;
        });
        if (stopping_ || next_ >= inputs_.size()) return;
        i = next_++;
      }
      Slot slot;
      prepare(i, &slot);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slots_[i] = std::move(slot);
        ready_[i] = 1;
      }
      ready_cv_.notify_all();
    }
  }

  // Decodes (paths) and preprocesses (classification) one input; the full-size image is freed
  // here, on the worker, before the next input is started.
  void prepare(size_t i, Slot* slot) const noexcept {
    const PipelineInput& in = inputs_[i];
    const std::string name = input_name(in, i);
    guarded(name, &slot->status, &slot->message, [&] {
      std::unique_ptr<Image> decoded;
      const Image* image = in.image;
      if (image == nullptr) {
        decoded = io::load_file(in.path, options_.load);
        if (options_.after_load) options_.after_load(*decoded);
        for (auto& w : decoded->warnings) w = to_valid_utf8(w);
        log_warnings(in.path, decoded->warnings);
        image = decoded.get();
      }
      if (segmentation_) {
        slot->owned = std::move(decoded);
        slot->image = image;
      } else {
        auto prepared = model_.prepare({image});
        slot->prepared = std::move(prepared.front());
      }
    });
  }

  Slot take(size_t i) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_cv_.wait(lock, [&] { return ready_[i] != 0; });
    Slot s = std::move(slots_[i]);
    consumed_ = i + 1;
    lock.unlock();
    space_.notify_all();
    return s;
  }

  void report() {
    if (!options_.progress) return;
    if (!options_.progress(done_, inputs_.size())) {
      throw Error(MV_ERR_CANCELLED, "cancelled by the progress callback after " +
                                        std::to_string(done_) + " of " +
                                        std::to_string(inputs_.size()) + " inputs");
    }
  }

  void fail(size_t i, mv_status status, std::string message) {
    items_[i].status = status;
    items_[i].message = std::move(message);
  }

  void consume() {
    std::vector<size_t> batch;
    std::vector<preprocess::Prepared> prepared;
    const auto size = static_cast<size_t>(options_.batch_size);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      Slot s = take(i);
      if (s.status != MV_OK) {
        fail(i, s.status, std::move(s.message));
        ++done_;
        report();
      } else if (segmentation_) {
        segment(i, *s.image);
        s.owned.reset();
        ++done_;
        report();
      } else {
        batch.push_back(i);
        prepared.push_back(std::move(s.prepared));
      }
      if (!batch.empty() && (batch.size() == size || i + 1 == inputs_.size())) {
        infer(batch, std::move(prepared));
        done_ += batch.size();
        batch.clear();
        prepared.clear();
        report();
      }
    }
  }

  void segment(size_t i, const Image& image) {
    guarded(input_name(inputs_[i], i), &items_[i].status, &items_[i].message,
            [&] { items_[i].result.emplace(model_.run(image)); });
  }

  // The batch as Model::classify runs it (stack, run, interpret), so that results equal
  // mv_model_run_batch's on the same images. A batch that fails is retried one input at a time,
  // so that the input at fault gets the error and the others their results.
  void infer(const std::vector<size_t>& batch, std::vector<preprocess::Prepared>&& prepared) {
    if (batch.size() == 1) {
      const size_t i = batch[0];
      guarded(input_name(inputs_[i], i), &items_[i].status, &items_[i].message,
              [&] { classify(batch, std::move(prepared)); });
      return;
    }
    // Kept for the retry (interpret() moves parts of its inputs); model-sized, not full-size.
    std::vector<preprocess::Prepared> kept = prepared;
    mv_status status = MV_OK;
    std::string message;
    guarded("batch", &status, &message, [&] { classify(batch, std::move(prepared)); });
    if (status == MV_OK) return;
    for (size_t k = 0; k < batch.size(); ++k) {
      const size_t i = batch[k];
      items_[i].result.reset();
      std::vector<preprocess::Prepared> one;
      one.push_back(std::move(kept[k]));
      guarded(input_name(inputs_[i], i), &items_[i].status, &items_[i].message,
              [&] { classify({i}, std::move(one)); });
    }
  }

  void classify(const std::vector<size_t>& batch, std::vector<preprocess::Prepared>&& prepared) {
    std::vector<int64_t> shape;
    const std::vector<float> stacked = Model::stack(prepared, &shape);
    const infer::Tensor logits = model_.runtime().run(stacked.data(), shape);
    auto results = model_.interpret(logits, std::move(prepared));
    for (size_t k = 0; k < batch.size(); ++k) {
      items_[batch[k]].result.emplace(make_result(model_.manifest(), std::move(results[k])));
    }
  }

  const Model& model_;
  const std::vector<PipelineInput>& inputs_;
  const PipelineOptions& options_;
  const bool segmentation_;
  size_t window_ = 1;

  std::mutex mutex_;
  std::condition_variable space_;     // workers wait for room in the window
  std::condition_variable ready_cv_;  // the inference thread waits for input i
  size_t next_ = 0;                   // next input a worker takes
  size_t consumed_ = 0;               // inputs the inference thread has taken
  bool stopping_ = false;
  std::vector<Slot> slots_;
  std::vector<char> ready_;
  std::vector<std::thread> workers_;

  std::vector<PipelineItem> items_;  // touched by the calling thread only
  uint64_t done_ = 0;
};

}  // namespace

int pipeline_decode_threads(int requested) {
  if (requested > 0) return requested;
  return std::min(2, usable_cpus());
}

std::vector<PipelineItem> run_many(const Model& model, const std::vector<PipelineInput>& inputs,
                                   const PipelineOptions& options) {
  if (options.batch_size < 1) throw Error(MV_ERR_INVALID_ARGUMENT, "batch_size must be >= 1");
  if (options.decode_threads < 0) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "decode_threads must be >= 0");
  }
  if (options.queue_batches < 1) {
    throw Error(MV_ERR_INVALID_ARGUMENT, "queue_batches must be >= 1");
  }
  if (inputs.empty()) return {};
  Runner runner(model, inputs, options);
  return runner.run();
}

}  // namespace medvision::model
