// C API of the streaming pipeline (mv_model_run_many) and its result list.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capi/capi_guard.hpp"
#include "capi/handles.hpp"
#include "capi/load_options.hpp"
#include "capi/segment_result.hpp"
#include "model/pipeline.hpp"

namespace {

constexpr size_t kPipelineOptionsV1 = offsetof(mv_pipeline_options, progress_user) + sizeof(void*);

mv_pipeline_options default_pipeline_options() {
  mv_pipeline_options o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.batch_size = 8;
  o.decode_threads = 0;
  o.queue_batches = 2;
  o.progress = nullptr;
  o.progress_user = nullptr;
  o.load = nullptr;
  return o;
}

const mv_result_list::Item* item(const mv_result_list* list, size_t i) {
  if (list == nullptr || i >= list->items.size()) return nullptr;
  return &list->items[i];
}

}  // namespace

extern "C" {

mv_status mv_pipeline_options_init(mv_pipeline_options* opts, size_t struct_size) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  return medvision::capi::init_options(opts, struct_size, kPipelineOptionsV1,
                                       default_pipeline_options(), "mv_pipeline_options_init");
  MV_CAPI_END
}

mv_status mv_model_run_many(const mv_model* model, const char* const* paths,
                            const mv_image* const* images, size_t count,
                            const mv_pipeline_options* opts, mv_result_list** out) MV_NOEXCEPT {
  MV_CAPI_BEGIN
  MV_CHECK_ARG(model != nullptr, "mv_model_run_many: model is NULL");
  MV_CHECK_ARG(out != nullptr, "mv_model_run_many: out is NULL");
  MV_CHECK_ARG(count == 0 || paths != nullptr || images != nullptr,
               "mv_model_run_many: paths and images are both NULL");
  mv_pipeline_options o = default_pipeline_options();
  if (mv_status s = medvision::capi::copy_options(
          opts, &o, kPipelineOptionsV1,
          "mv_model_run_many: mv_pipeline_options.struct_size is smaller than any known version");
      s != MV_OK)
    return s;
  MV_CHECK_ARG(o.batch_size >= 0, "mv_model_run_many: batch_size must be >= 0");
  MV_CHECK_ARG(o.decode_threads >= 0, "mv_model_run_many: decode_threads must be >= 0");
  MV_CHECK_ARG(o.queue_batches >= 0, "mv_model_run_many: queue_batches must be >= 0");
  std::vector<medvision::model::PipelineInput> inputs(count);
  for (size_t i = 0; i < count; ++i) {
    if (paths != nullptr && paths[i] != nullptr) {
      inputs[i].path = paths[i];
    } else if (images != nullptr && images[i] != nullptr) {
      inputs[i].image = images[i]->image.get();
    } else {
      return medvision::capi::fail(
          MV_ERR_INVALID_ARGUMENT,
          ("mv_model_run_many: input " + std::to_string(i) + " has neither a path nor an image")
              .c_str());
    }
  }
  medvision::model::PipelineOptions po;
  // A caller built before `load` existed copies fewer bytes: it stays NULL (copy_options).
  if (o.load != nullptr) {
    medvision::capi::SpacingOverride spacing;
    if (mv_status s = medvision::capi::resolve_options(o.load, &po.load, &spacing); s != MV_OK) {
      return s;
    }
    po.after_load = [spacing](medvision::Image& image) { spacing.apply(image); };
  }
  po.batch_size = o.batch_size > 0 ? o.batch_size : 8;
  po.decode_threads = o.decode_threads;
  po.queue_batches = o.queue_batches > 0 ? o.queue_batches : 2;
  if (o.progress != nullptr) {
    po.progress = [fn = o.progress, user = o.progress_user](uint64_t done, uint64_t total) {
      return fn(done, total, user) != 0;
    };
  }
  auto items = medvision::model::run_many(*model->model, inputs, po);
  auto list = std::make_unique<mv_result_list>();
  list->items.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto& dst = list->items[i];
    dst.status = items[i].status;
    dst.message = std::move(items[i].message);
    if (items[i].result) {
      dst.result.reset(medvision::capi::wrap_result(std::move(*items[i].result)));
    }
  }
  *out = list.release();
  return MV_OK;
  MV_CAPI_END
}

size_t mv_result_list_count(const mv_result_list* list) MV_NOEXCEPT {
  return list ? list->items.size() : 0;
}

mv_status mv_result_list_status(const mv_result_list* list, size_t i) MV_NOEXCEPT {
  const auto* it = item(list, i);
  return it ? it->status : MV_ERR_INVALID_ARGUMENT;
}

const char* mv_result_list_message(const mv_result_list* list, size_t i) MV_NOEXCEPT {
  const auto* it = item(list, i);
  return it ? it->message.c_str() : nullptr;
}

const mv_result* mv_result_list_get(const mv_result_list* list, size_t i) MV_NOEXCEPT {
  const auto* it = item(list, i);
  return it ? it->result.get() : nullptr;
}

mv_result* mv_result_list_take(mv_result_list* list, size_t i) MV_NOEXCEPT {
  if (list == nullptr || i >= list->items.size()) return nullptr;
  return list->items[i].result.release();
}

void mv_result_list_free(mv_result_list* list) MV_NOEXCEPT { delete list; }

}  // extern "C"
