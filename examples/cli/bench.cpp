// medvision bench: decode + run timings (docs/performance.md). Stages per file and repetition:
//   decode   Image::load (file -> float32 physical units, Modality LUT included), one image;
//   run      Model::run_batch on `batch` copies of the decoded image (preprocess + inference +
//            activation: the public API does them in one call);
//   e2e      decode x batch + run, i.e. images/s = batch / (batch * decode + run), taken from
//            the stage medians (decoding `batch` separate files costs batch decodes).
// Also `model_224`: run on a synthetic 224x224 grey image, whose preprocessing is nearly free, so
// it approximates inference alone.

#include "bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

namespace {

using nlohmann::json;

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

// Linear-interpolated percentile (numpy's default) of `v` (copied, sorted).
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double rank = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

json stage_json(const std::vector<double>& ms) {
  return json{{"p50", percentile(ms, 50)},
              {"p95", percentile(ms, 95)},
              {"min", *std::min_element(ms.begin(), ms.end())},
              {"samples", ms}};
}

template <class F>
std::vector<double> time_n(int warmup, int repeat, F&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    const double t0 = now_ms();
    fn();
    ms.push_back(now_ms() - t0);
  }
  return ms;
}

}  // namespace

void add_bench_command(CLI::App& app, BenchArgs& a) {
  auto* c = app.add_subcommand("bench", "Time decode and model runs (p50/p95 per stage)");
  c->add_option("FILE", a.inputs, "Images, or folders (searched recursively)")->required();
  c->add_option("-m,--model", a.model, "Model package name or folder")->required();
  c->add_option("--device", a.device, kDeviceHelp);
  c->add_option("--threads", a.threads, "CPU threads (0: every CPU this process may use)")
      ->default_val(medvision::ModelOptions().num_threads());
  c->add_option("--batch", a.batch, "Images per model run")->default_val(1);
  c->add_option("--repeat", a.repeat, "Timed repetitions per stage")->default_val(10);
  c->add_option("--warmup", a.warmup, "Untimed repetitions first")->default_val(1);
  c->add_flag("--json", a.json, "One JSON object with every sample");
  a.command = c;
}

int run_bench(const BenchArgs& a) {
  const double t_start = now_ms();
  medvision::ModelOptions mo;
  mo.set_device(a.device).set_num_threads(a.threads);
  medvision::Model model;
  try {
    model = medvision::Model::load(a.model, mo);
  } catch (const medvision::Exception& e) {
    std::fprintf(stderr, "medvision: %s: %s\n", e.status_name(), e.what());
    return exit_code(e.status());
  }
  const double load_ms = now_ms() - t_start;
  const auto files = expand_inputs(a.inputs);
  if (files.empty()) {
    std::fprintf(stderr, "medvision: no input files\n");
    return kUsageError;
  }
  const size_t batch = static_cast<size_t>(std::max(1, a.batch));
  const int repeat = std::max(1, a.repeat), warmup = std::max(0, a.warmup);

  json out;
  out["tool"] = "medvision";
  out["version"] = medvision::version();
  out["model"] = model.name();
  out["device"] = model.device();
  out["threads"] = a.threads;
  out["batch"] = batch;
  out["repeat"] = repeat;
  out["load_ms"] = load_ms;
  out["files"] = json::array();
  double first_result_ms = -1;
  for (const auto& f : files) {
    try {
      medvision::Image img = medvision::Image::load(f);
      if (first_result_ms < 0) {
        (void)model.run(img);
        first_result_ms = now_ms() - t_start;
      }
      const auto decode = time_n(warmup, repeat, [&] { img = medvision::Image::load(f); });
      std::vector<const medvision::Image*> ptrs(batch, &img);
      const auto run = time_n(warmup, repeat, [&] {
        if (batch == 1) {
          (void)model.run(img);
        } else {
          (void)model.run_batch(ptrs);
        }
      });
      const double e2e = static_cast<double>(batch) * percentile(decode, 50) + percentile(run, 50);
      json j{{"file", f},
             {"decode_ms", stage_json(decode)},
             {"run_ms", stage_json(run)},
             {"e2e_ms_p50", e2e},
             {"images_per_s", 1000.0 * static_cast<double>(batch) / e2e}};
      if (batch == 1) {
        // Per repetition decode + run, for a p95 of the whole path.
        std::vector<double> sum(decode.size());
        for (size_t i = 0; i < decode.size(); ++i) sum[i] = decode[i] + run[i];
        j["e2e_ms"] = stage_json(sum);
      }
      out["files"].push_back(j);
      if (!a.json) {
        std::printf("%s\n  decode          p50 %8.2f ms  p95 %8.2f ms\n", f.c_str(),
                    percentile(decode, 50), percentile(decode, 95));
        std::printf("  preprocess+infer p50 %7.2f ms  p95 %8.2f ms  (batch %zu)\n",
                    percentile(run, 50), percentile(run, 95), batch);
        std::printf("  end to end      p50 %8.2f ms  %.2f images/s\n", e2e,
                    1000.0 * static_cast<double>(batch) / e2e);
      }
    } catch (const medvision::Exception& e) {
      std::fprintf(stderr, "medvision: %s: %s: %s\n", f.c_str(), e.status_name(), e.what());
      return exit_code(e.status());
    }
  }
  // model_224: a 224x224 grey ramp; scale/resize/normalize on 50k values cost well under 1 ms.
  std::vector<float> ramp(224 * 224);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i % 997);
  mv_tensor_view v{};
  v.struct_size = sizeof v;
  v.dtype = MV_DTYPE_FLOAT32;
  v.data = ramp.data();
  v.ndim = 2;
  v.shape[0] = v.shape[1] = 224;
  v.strides[0] = 224 * sizeof(float);
  v.strides[1] = sizeof(float);
  const medvision::Image small = medvision::Image::from_pixels(v);
  std::vector<const medvision::Image*> small_ptrs(batch, &small);
  const auto m224 = time_n(warmup, repeat, [&] {
    if (batch == 1) {
      (void)model.run(small);
    } else {
      (void)model.run_batch(small_ptrs);
    }
  });
  out["model_224_ms"] = stage_json(m224);
  out["first_result_ms"] = first_result_ms;
  if (a.json) {
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::printf(
        "model load %.1f ms, first result %.1f ms after start; 224x224 input p50 %.2f ms "
        "(batch %zu, ~inference alone)\n",
        load_ms, first_result_ms, percentile(m224, 50), batch);
  }
  return 0;
}

}  // namespace mvcli
