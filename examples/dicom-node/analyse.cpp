// Model runs and result files (see analyse.hpp).

#include "analyse.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "dicom_header.hpp"

namespace mvnode {

namespace fs = std::filesystem;

namespace {

// The model's input: one image, a series volume, or named series stacked as channels. `parts`
// keeps each channel's image: a stacked image has no DICOM source of its own, so the derived
// objects reference the first channel (e.g. the FLAIR series), which is on the same grid.
medvision::Image load_input(const Job& job, std::vector<medvision::Image>& parts) {
  for (const auto& channel : job.channels) {
    if (channel.size() == 1) {
      parts.push_back(medvision::Image::load(channel.front().file.string()));
    } else {
      std::vector<std::string> paths;
      for (const auto& i : channel) paths.push_back(i.file.string());
      parts.push_back(medvision::Image::load_series(paths));
    }
  }
  if (parts.size() == 1) return medvision::Image::borrow(parts.front().get());
  std::vector<const medvision::Image*> ptrs;
  for (const auto& p : parts) ptrs.push_back(&p);
  return medvision::Image::stack(ptrs);
}

bool positive(const medvision::LabelScore& s) {
  return s.decision == 1 || (s.decision < 0 && s.probability >= 0.5f);
}

}  // namespace

Analyser::Analyser(const Config& config, StudyQueue& queue, Log& log)
    : config_(config), queue_(queue), log_(log) {
  for (int i = 0; i < config.workers; ++i) threads_.emplace_back([this] { run(); });
}

Analyser::~Analyser() {
  stop_ = true;
  queue_.wake_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Analyser::run() {
  while (!stop_) {
    auto work = queue_.claim_analysis(config_.idle_seconds);
    if (!work) {
      queue_.wait(0.5);
      continue;
    }
    analyse(*work);
  }
}

const medvision::Model& Analyser::model(const std::string& name) {
  const std::lock_guard<std::mutex> lock(models_mutex_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    medvision::ModelOptions o;
    o.set_device(config_.device).set_num_threads(config_.threads);
    auto m = medvision::Model::load(name, o);
    log_.info("model " + m.name() + " " + m.version() + " loaded (" + m.device() + ")");
    it = models_.emplace(name, std::move(m)).first;
  }
  return it->second;
}

std::string Analyser::next_name(const std::string& model, const std::string& kind) {
  // Unique in out/ across analyses and restarts: a time stamp and a counter.
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::string safe = model;
  for (char& c : safe) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  return safe + "-" + std::to_string(ms) + "-" + std::to_string(counter_.fetch_add(1)) + "." +
         kind + ".dcm";
}

void Analyser::analyse(const AnalysisWork& work) {
  log_.info("study " + work.study_uid + ": analysing " + std::to_string(work.instances.size()) +
            " instance(s)");
  std::vector<Job> jobs;
  std::vector<JobRecord> records;
  try {
    jobs = route(config_.rules, work.instances, [this](const std::string& name) {
      const auto manifest = nlohmann::json::parse(model(name).manifest_json());
      return manifest.at("input").value("ndim", 2);
    });
  } catch (const std::exception& e) {
    log_.error("study " + work.study_uid + ": routing failed: " + e.what());
    records.push_back({work.study_uid, "(router)", "", false, 0, 0, e.what()});
  }
  std::vector<bool> pending(jobs.size(), false);
  for (size_t k = 0; k < jobs.size(); ++k) {
    const auto uids = jobs[k].sop_uids();
    pending[k] = std::any_of(uids.begin(), uids.end(),
                             [&](const std::string& u) { return work.analysed.count(u) == 0; });
  }
  std::vector<Output> outputs;
  // Runs job k through `fn` (which returns its result files) and records the outcome.
  auto finish = [&](size_t k, double extra_seconds,
                    const std::function<std::vector<Output>()>& fn) {
    const Job& job = jobs[k];
    const auto t0 = std::chrono::steady_clock::now();
    JobRecord r{work.study_uid, job.model, job.input, false, 0, 0, ""};
    try {
      auto out = fn();
      r.ok = true;
      r.outputs = out.size();
      outputs.insert(outputs.end(), out.begin(), out.end());
    } catch (const medvision::Exception& e) {
      r.error = std::string(e.status_name()) + ": " + e.what();
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() +
                extra_seconds;
    if (r.ok) {
      log_.info("study " + work.study_uid + ": " + job.model + " on " + job.input + ": " +
                std::to_string(r.outputs) + " result(s) in " +
                std::to_string(static_cast<int>(r.seconds * 10) / 10.0).substr(0, 5) + " s");
    } else {
      log_.error("study " + work.study_uid + ": " + job.model + " on " + job.input +
                 " failed: " + r.error);
    }
    records.push_back(std::move(r));
    pending[k] = false;
  };
  classify_batched(jobs, work, pending, finish);
  for (size_t k = 0; k < jobs.size(); ++k) {
    if (!pending[k]) continue;
    finish(k, 0.0, [&] {
      std::vector<medvision::Image> parts;
      const medvision::Image image = load_input(jobs[k], parts);
      return run_job(jobs[k], work, parts.front(), image, nullptr);
    });
  }
  if (jobs.empty() && records.empty()) {
    log_.info("study " + work.study_uid + ": no rule matches its instances; nothing to do");
  }
  // Every instance of this pass counts as analysed, whether a job used it, failed on it or
  // no rule matched it: it is not analysed again unless it is sent anew.
  std::vector<std::string> analysed;
  for (const auto& i : work.instances) analysed.push_back(i.sop_uid);
  queue_.finish_analysis(work.key, analysed, outputs, records);
}

void Analyser::classify_batched(const std::vector<Job>& jobs, const AnalysisWork& work,
                                const std::vector<bool>& pending, const FinishJob& finish) {
  // Per model, in the router's order: the pending jobs whose input is one instance.
  std::vector<std::string> order;
  std::map<std::string, std::vector<size_t>> by_model;
  for (size_t k = 0; k < jobs.size(); ++k) {
    const Job& j = jobs[k];
    if (!pending[k] || j.channels.size() != 1 || j.channels.front().size() != 1) continue;
    if (by_model.find(j.model) == by_model.end()) order.push_back(j.model);
    by_model[j.model].push_back(k);
  }
  const size_t batch = static_cast<size_t>(std::max(1, config_.batch_size));
  for (const std::string& name : order) {
    const medvision::Model* m = nullptr;
    try {
      m = &model(name);
    } catch (const std::exception&) {
      continue;  // each job reports the load failure itself (the one-by-one path)
    }
    if (m->task() != MV_TASK_CLASSIFICATION) continue;
    const std::vector<size_t>& idx = by_model[name];
    log_.info("study " + work.study_uid + ": " + name + " on " + std::to_string(idx.size()) +
              " instance(s) through the pipeline (batches of " + std::to_string(batch) + ")");
    // Chunks of two batches: each instance is decoded once, here (its image is the SR's source
    // and the heat maps' input), and at most a chunk of decoded images is held at a time; the
    // pipeline preprocesses them on its workers and runs them in batches.
    for (size_t c0 = 0; c0 < idx.size(); c0 += 2 * batch) {
      const size_t c1 = std::min(idx.size(), c0 + 2 * batch);
      std::vector<size_t> ready;
      std::vector<medvision::Image> images;
      for (size_t i = c0; i < c1; ++i) {
        const size_t k = idx[i];
        try {
          images.push_back(medvision::Image::load(jobs[k].channels.front().front().file.string()));
          ready.push_back(k);
        } catch (const std::exception& e) {
          const std::string what = e.what();
          const auto* mv = dynamic_cast<const medvision::Exception*>(&e);
          finish(k, 0.0, [&]() -> std::vector<Output> {
            if (mv != nullptr) throw medvision::Exception(mv->status(), what);
            throw std::runtime_error(what);
          });
        }
      }
      if (ready.empty()) continue;
      std::vector<const medvision::Image*> ptrs;
      for (const auto& im : images) ptrs.push_back(&im);
      medvision::PipelineOptions po;
      po.batch_size = static_cast<int32_t>(batch);
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<medvision::ItemResult> items;
      try {
        items = medvision::run_many(*m, ptrs, po);
      } catch (const medvision::Exception& e) {
        // The run itself failed (bad options, out of memory): every job of it reports that.
        for (size_t k : ready) {
          finish(k, 0.0, [&]() -> std::vector<Output> {
            throw medvision::Exception(e.status(), e.what());
          });
        }
        continue;
      }
      const double each =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
          static_cast<double>(ready.size());
      for (size_t i = 0; i < ready.size() && i < items.size(); ++i) {
        finish(ready[i], each, [&] {
          // The pipeline's own failure of this instance names the file and the problem.
          if (!items[i].ok()) throw medvision::Exception(items[i].status, items[i].message);
          return run_job(jobs[ready[i]], work, images[i], images[i], &items[i].result);
        });
      }
    }
  }
}

std::vector<Output> Analyser::run_job(const Job& job, const AnalysisWork& work,
                                      const medvision::Image& source, const medvision::Image& image,
                                      const medvision::Result* classified) {
  const medvision::Model& m = model(job.model);
  std::vector<Output> out;
  auto record = [&](const std::string& name) {
    const fs::path p = work.out_dir / name;
    out.push_back({name, read_header(p).sop_uid, false});
  };
  if (m.task() == MV_TASK_SEGMENTATION) {
    const auto result = m.segment(image);
    const std::string seg = next_name(m.name(), "seg");
    result.write_dicom_seg(source, (work.out_dir / seg).string());
    record(seg);
    // The SR's region groups (volumes or areas) reference the SEG's segments.
    const std::string sr = next_name(m.name(), "sr");
    result.write_dicom_sr(source, (work.out_dir / sr).string(), (work.out_dir / seg).string());
    record(sr);
    return out;
  }
  medvision::Result computed;
  if (classified == nullptr) computed = m.run(image);
  const medvision::Result& result = classified != nullptr ? *classified : computed;
  const std::string sr = next_name(m.name(), "sr");
  result.write_dicom_sr(source, (work.out_dir / sr).string());
  record(sr);
  if (config_.heatmaps != HeatmapPolicy::kNone) {
    for (size_t i = 0; i < result.label_count(); ++i) {
      const auto s = result.score(i);
      if (config_.heatmaps == HeatmapPolicy::kPositive && !positive(s)) continue;
      const auto heatmap = medvision::explain(m, image, MV_CAM_GRADCAM, static_cast<int32_t>(i));
      const std::string sc = next_name(m.name(), "sc");
      heatmap.write_dicom_sc((work.out_dir / sc).string(), source);
      record(sc);
    }
  }
  return out;
}

}  // namespace mvnode
