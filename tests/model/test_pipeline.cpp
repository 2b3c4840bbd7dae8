// The streaming pipeline (mv_model_run_many) through the C ABI and the C++ wrapper: results equal
// the one-by-one and batch paths exactly and in input order, each bad input gets its own status
// and a message naming it, a failing batch is retried one input at a time, cancellation stops
// early, and every argument and options path.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "medvision/medvision.h"
#include "medvision/medvision.hpp"
#include "model_fixture.hpp"

namespace {

using mvtest::load_ok;
using mvtest::TempDir;
namespace fs = std::filesystem;

mv_image* grey(int64_t h, int64_t w, float v) {
  std::vector<float> px(static_cast<size_t>(h * w));
  for (size_t i = 0; i < px.size(); ++i) px[i] = v + static_cast<float>(i % 7);
  mv_image* img = mvtest::image_from_floats(h, w, px);
  REQUIRE(img != nullptr);
  return img;
}

// Writes `img` as NIfTI to `path`.
void save(mv_image* img, const fs::path& path) {
  INFO(mv_last_error());
  REQUIRE(mv_image_write_nifti(img, path.string().c_str()) == MV_OK);
}

// Every label's logit and probability of `a` equal `b`'s, bit for bit.
void require_same(const mv_result* a, const mv_result* b) {
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  REQUIRE(mv_result_label_count(a) == mv_result_label_count(b));
  for (size_t k = 0; k < mv_result_label_count(a); ++k) {
    CHECK(mv_result_logit(a, k) == mv_result_logit(b, k));
    CHECK(mv_result_probability(a, k) == mv_result_probability(b, k));
  }
  CHECK(std::string(mv_result_json(a)) == std::string(mv_result_json(b)));
}

mv_pipeline_options options(int32_t batch, int32_t threads, int32_t queue = 0) {
  mv_pipeline_options o;
  REQUIRE(mv_pipeline_options_default(&o) == MV_OK);
  o.batch_size = batch;
  o.decode_threads = threads;
  o.queue_batches = queue;
  return o;
}

// A folder of inputs: NIfTI images of different content, the repository's example DICOM, and bad
// files (missing, truncated DICOM, not an image).
struct Inputs {
  TempDir tmp;
  std::vector<std::string> paths;
  std::vector<bool> good;

  Inputs() {
    const char* source = std::getenv("MV_SOURCE_DIR");  // set by CTest
    REQUIRE(source != nullptr);
    const fs::path dicom = fs::path(source) / "examples" / "data" / "cxr-example.dcm";
    REQUIRE(fs::exists(dicom));
    std::ifstream in(dicom, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const fs::path truncated = tmp.path() / "truncated.dcm";
    std::ofstream(truncated, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    const fs::path text = tmp.path() / "notes.txt";
    std::ofstream(text) << "this is not an image\n";
    for (int i = 0; i < 9; ++i) {
      mv_image* img = grey(20 + i, 24 + 2 * i, 20.0f * static_cast<float>(i));
      const fs::path p = tmp.path() / ("img" + std::to_string(i) + ".nii");
      save(img, p);
      mv_image_free(img);
      add(p.string(), true);
      if (i == 1) add((tmp.path() / "missing.nii").string(), false);
      if (i == 3) add(truncated.string(), false);
      if (i == 4) add(dicom.string(), true);
      if (i == 6) add(text.string(), false);
    }
  }
  void add(const std::string& p, bool ok) {
    paths.push_back(p);
    good.push_back(ok);
  }
  std::vector<const char*> c_paths() const {
    std::vector<const char*> v;
    for (const auto& p : paths) v.push_back(p.c_str());
    return v;
  }
};

}  // namespace

TEST_CASE("pipeline: results equal the one-by-one path, in order; bad files get their own errors",
          "[model][pipeline]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 3);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(1, 3));
  mv_model* model = load_ok(pkg);
  Inputs in;
  const auto paths = in.c_paths();

  // The existing path: each file loaded with mv_image_load and run alone.
  std::vector<mv_result*> single(paths.size(), nullptr);
  std::vector<mv_image*> loaded(paths.size(), nullptr);
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!in.good[i]) {
      REQUIRE(mv_image_load(paths[i], nullptr, &loaded[i]) != MV_OK);
      continue;
    }
    REQUIRE(mv_image_load(paths[i], nullptr, &loaded[i]) == MV_OK);
    REQUIRE(mv_model_run(model, loaded[i], &single[i]) == MV_OK);
  }

  for (int32_t batch : {1, 3, 16}) {
    for (int32_t threads : {1, 3}) {
      DYNAMIC_SECTION("batch " << batch << ", " << threads << " decode threads") {
        const auto o = options(batch, threads, 1);
        mv_result_list* list = nullptr;
        INFO(mv_last_error());
        REQUIRE(mv_model_run_many(model, paths.data(), nullptr, paths.size(), &o, &list) == MV_OK);
        REQUIRE(std::string(mv_last_error()).empty());
        REQUIRE(mv_result_list_count(list) == paths.size());
        for (size_t i = 0; i < paths.size(); ++i) {
          INFO(paths[i]);
          if (in.good[i]) {
            REQUIRE(mv_result_list_status(list, i) == MV_OK);
            REQUIRE(std::string(mv_result_list_message(list, i)).empty());
            require_same(mv_result_list_get(list, i), single[i]);
          } else {
            CHECK(mv_result_list_status(list, i) != MV_OK);
            CHECK(mv_result_list_get(list, i) == nullptr);
            const std::string msg = mv_result_list_message(list, i);
            CHECK(msg.find(paths[i]) != std::string::npos);
          }
        }
        // The statuses name the problem.
        CHECK(mv_result_list_status(list, 2) == MV_ERR_IO);                   // missing
        CHECK(mv_result_list_status(list, 5) == MV_ERR_CORRUPT_DATA);         // truncated
        CHECK(mv_result_list_status(list, 10) == MV_ERR_UNSUPPORTED_FORMAT);  // text
        mv_result_list_free(list);
      }
    }
  }

  SECTION("in-memory images, and paths and images mixed, equal mv_model_run_batch's batches") {
    std::vector<const mv_image*> images;
    std::vector<const char*> mixed;
    for (size_t i = 0; i < paths.size(); ++i) {
      if (!in.good[i]) continue;
      images.push_back(loaded[i]);
      mixed.push_back(images.size() % 2 == 0 ? paths[i] : nullptr);
    }
    const auto o = options(4, 2);
    mv_result_list* a = nullptr;
    mv_result_list* b = nullptr;
    REQUIRE(mv_model_run_many(model, nullptr, images.data(), images.size(), &o, &a) == MV_OK);
    REQUIRE(mv_model_run_many(model, mixed.data(), images.data(), images.size(), &o, &b) == MV_OK);
    for (size_t start = 0; start < images.size(); start += 4) {
      const size_t n = std::min<size_t>(4, images.size() - start);
      std::vector<mv_result*> ref(n, nullptr);
      REQUIRE(mv_model_run_batch(model, images.data() + start, n, ref.data()) == MV_OK);
      for (size_t k = 0; k < n; ++k) {
        require_same(mv_result_list_get(a, start + k), ref[k]);
        require_same(mv_result_list_get(b, start + k), ref[k]);
        mv_result_free(ref[k]);
      }
    }
    // take() hands the result over; the list then holds none for that input.
    mv_result* taken = mv_result_list_take(a, 0);
    REQUIRE(taken != nullptr);
    CHECK(mv_result_list_get(a, 0) == nullptr);
    CHECK(mv_result_list_take(a, 0) == nullptr);
    CHECK(mv_result_list_status(a, 0) == MV_OK);
    mv_result_free(taken);
    mv_result_list_free(a);
    mv_result_list_free(b);
  }

  for (auto* r : single) mv_result_free(r);
  for (auto* im : loaded) mv_image_free(im);
  mv_model_free(model);
}

TEST_CASE("pipeline: a batch that fails is retried one input at a time", "[model][pipeline]") {
  TempDir tmp;
  // Raises for any batch holding a bright image (max > 0.99 after scaling to [0, 1]).
  torch::jit::Module m("Picky");
  torch::manual_seed(3);
  m.register_parameter("w", torch::randn({2, 1}), false);
  m.define(R"(
    def forward(self, x):
        assert bool(x.amax() <= 0.99), "too bright"
        return x.mean(dim=[2, 3]).matmul(self.w.t())
  )");
  auto manifest = mvtest::base_manifest(1, 2);
  manifest.erase("explain");  // no features/head methods
  const std::string pkg = mvtest::write_package(tmp.path() / "pkg", m, manifest);
  mv_model* model = load_ok(pkg);
  std::vector<mv_image*> owned;
  std::vector<const mv_image*> images;
  for (int i = 0; i < 7; ++i) {
    owned.push_back(grey(16, 16, i == 4 ? 250.0f : 30.0f * static_cast<float>(i)));
    images.push_back(owned.back());
  }
  const auto o = options(3, 2);
  mv_result_list* list = nullptr;
  REQUIRE(mv_model_run_many(model, nullptr, images.data(), images.size(), &o, &list) == MV_OK);
  for (size_t i = 0; i < images.size(); ++i) {
    INFO(i);
    if (i == 4) {
      // The status mv_model_run gives the image alone.
      mv_result* alone = nullptr;
      const mv_status want = mv_model_run(model, images[i], &alone);
      CHECK(alone == nullptr);
      CHECK(want != MV_OK);
      CHECK(mv_result_list_status(list, i) == want);
      const std::string msg = mv_result_list_message(list, i);
      CHECK(msg.rfind("images[4]: ", 0) == 0);
      CHECK(msg.find("too bright") != std::string::npos);
      continue;
    }
    REQUIRE(mv_result_list_status(list, i) == MV_OK);
    mv_result* ref = nullptr;
    REQUIRE(mv_model_run(model, images[i], &ref) == MV_OK);
    require_same(mv_result_list_get(list, i), ref);
    mv_result_free(ref);
  }
  mv_result_list_free(list);
  for (auto* im : owned) mv_image_free(im);
  mv_model_free(model);
}

namespace {
struct CancelState {
  uint64_t calls = 0;
  uint64_t last_done = 0;
  uint64_t total = 0;
  uint64_t cancel_after = 1;
};
int32_t cancel_progress(uint64_t done, uint64_t total, void* user) {
  auto* s = static_cast<CancelState*>(user);
  ++s->calls;
  s->last_done = done;
  s->total = total;
  return s->calls >= s->cancel_after ? 0 : 1;
}
}  // namespace

TEST_CASE("pipeline: progress reports every input, and returning 0 cancels", "[model][pipeline]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 2);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(1, 2));
  mv_model* model = load_ok(pkg);
  Inputs in;
  std::vector<const char*> paths;
  for (int rep = 0; rep < 4; ++rep) {
    for (const auto& p : in.paths) paths.push_back(p.c_str());
  }

  SECTION("to the end") {
    CancelState s;
    s.cancel_after = UINT64_MAX;
    auto o = options(4, 2);
    o.progress = &cancel_progress;
    o.progress_user = &s;
    mv_result_list* list = nullptr;
    REQUIRE(mv_model_run_many(model, paths.data(), nullptr, paths.size(), &o, &list) == MV_OK);
    CHECK(s.last_done == paths.size());
    CHECK(s.total == paths.size());
    CHECK(s.calls >= paths.size() / 4);
    mv_result_list_free(list);
  }
  SECTION("cancelled at the first call: MV_ERR_CANCELLED, nothing returned") {
    CancelState s;
    auto o = options(2, 2, 1);
    o.progress = &cancel_progress;
    o.progress_user = &s;
    mv_result_list* list = nullptr;
    REQUIRE(mv_model_run_many(model, paths.data(), nullptr, paths.size(), &o, &list) ==
            MV_ERR_CANCELLED);
    CHECK(list == nullptr);
    CHECK(s.calls == 1);
    CHECK(s.last_done < paths.size());
    CHECK(std::string(mv_last_error()).find("cancelled") != std::string::npos);
  }
  SECTION("C++: an exception in the progress function cancels and is rethrown") {
    medvision::Model cpp(model);
    model = nullptr;
    std::vector<std::string> names(paths.begin(), paths.end());
    medvision::PipelineOptions o;
    o.batch_size = 4;
    uint64_t calls = 0;
    o.progress = [&](uint64_t, uint64_t) -> bool {
      if (++calls == 2) throw std::runtime_error("stop here");
      return true;
    };
    CHECK_THROWS_WITH(medvision::run_many(cpp, names, o), "stop here");
    CHECK(calls == 2);
    o.progress = [](uint64_t, uint64_t) { return false; };
    try {
      (void)medvision::run_many(cpp, names, o);
      FAIL("no exception");
    } catch (const medvision::Exception& e) {
      CHECK(e.status() == MV_ERR_CANCELLED);
    }
    o.progress = nullptr;
    const auto items = medvision::run_many(cpp, names, o);
    REQUIRE(items.size() == names.size());
    for (size_t i = 0; i < items.size(); ++i) {
      CHECK(items[i].ok() == in.good[i % in.good.size()]);
      CHECK(static_cast<bool>(items[i].result) == items[i].ok());
      CHECK(items[i].message.empty() == items[i].ok());
    }
  }
  mv_model_free(model);
}

TEST_CASE("pipeline: arguments, options and the result list's accessors", "[model][pipeline]") {
  TempDir tmp;
  auto module = mvtest::make_linear_module(1, 2);
  const std::string pkg =
      mvtest::write_package(tmp.path() / "pkg", module, mvtest::base_manifest(1, 2));
  mv_model* model = load_ok(pkg);
  mv_image* img = grey(16, 16, 10.0f);
  const mv_image* images[] = {img, nullptr};
  mv_result_list* const sentinel = reinterpret_cast<mv_result_list*>(0x1);
  mv_result_list* out = sentinel;

  const auto fails = [&](mv_status want, const mv_image* const* ims, size_t n,
                         const mv_pipeline_options* o, const char* text) {
    out = sentinel;
    const mv_status s = mv_model_run_many(model, nullptr, ims, n, o, &out);
    CHECK(s == want);
    CHECK(out == sentinel);  // untouched on error
    CHECK(std::string(mv_last_error()).find(text) != std::string::npos);
  };
  fails(MV_ERR_INVALID_ARGUMENT, images, 2, nullptr, "input 1 has neither a path nor an image");
  fails(MV_ERR_INVALID_ARGUMENT, nullptr, 1, nullptr, "paths and images are both NULL");
  auto o = options(-1, 0);
  fails(MV_ERR_INVALID_ARGUMENT, images, 1, &o, "batch_size");
  o = options(1, -2);
  fails(MV_ERR_INVALID_ARGUMENT, images, 1, &o, "decode_threads");
  o = options(1, 1, -1);
  fails(MV_ERR_INVALID_ARGUMENT, images, 1, &o, "queue_batches");
  o = options(1, 1);
  o.struct_size = 4;
  fails(MV_ERR_ABI_MISMATCH, images, 1, &o, "struct_size");
  CHECK(mv_model_run_many(nullptr, nullptr, images, 1, nullptr, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_model_run_many(model, nullptr, images, 1, nullptr, nullptr) == MV_ERR_INVALID_ARGUMENT);

  // Defaults, and a newer caller's larger struct.
  mv_pipeline_options d;
  REQUIRE(mv_pipeline_options_default(&d) == MV_OK);
  CHECK(d.struct_size == sizeof d);
  CHECK(d.batch_size == 8);
  CHECK(d.decode_threads == 0);
  CHECK(d.queue_batches == 2);
  CHECK(d.progress == nullptr);
  CHECK(mv_pipeline_options_init(&d, 4) == MV_ERR_ABI_MISMATCH);
  CHECK(mv_pipeline_options_init(nullptr, sizeof d) == MV_ERR_INVALID_ARGUMENT);
  struct Bigger {
    mv_pipeline_options o;
    char extra[32];
  } big;
  std::memset(&big, 0x7f, sizeof big);
  REQUIRE(mv_pipeline_options_init(&big.o, sizeof big) == MV_OK);
  CHECK(big.extra[0] == 0);
  mv_result_list* list = nullptr;
  REQUIRE(mv_model_run_many(model, nullptr, images, 1, &big.o, &list) == MV_OK);
  CHECK(mv_result_list_count(list) == 1);
  CHECK(mv_result_list_status(list, 0) == MV_OK);
  CHECK(mv_result_list_status(list, 1) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_result_list_message(list, 1) == nullptr);
  CHECK(mv_result_list_get(list, 1) == nullptr);
  CHECK(mv_result_list_take(list, 1) == nullptr);
  mv_result_list_free(list);

  // No inputs: an empty list.
  list = nullptr;
  REQUIRE(mv_model_run_many(model, nullptr, nullptr, 0, nullptr, &list) == MV_OK);
  CHECK(mv_result_list_count(list) == 0);
  mv_result_list_free(list);

  // NULL-safe accessors.
  CHECK(mv_result_list_count(nullptr) == 0);
  CHECK(mv_result_list_status(nullptr, 0) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_result_list_message(nullptr, 0) == nullptr);
  CHECK(mv_result_list_get(nullptr, 0) == nullptr);
  CHECK(mv_result_list_take(nullptr, 0) == nullptr);
  mv_result_list_free(nullptr);

  mv_image_free(img);
  mv_model_free(model);
}

TEST_CASE("pipeline: load options decode paths as mv_image_load does; segmentation runs through it",
          "[model][pipeline]") {
  TempDir tmp;
  // Segmentation: foreground where the pixel is above 15 (two classes, softmax).
  torch::jit::Module seg("seg");
  seg.define(R"(
def forward(self, x):
    return torch.cat([15.0 - x, x - 15.0], 1)
)");
  auto manifest = mvtest::base_manifest(1, 2);
  manifest["task"] = "segmentation";
  manifest["labels"] = {"background", "bright"};
  manifest["input"] = {{"channels", 1}, {"size", {16, 16}}, {"ndim", 2}};
  manifest["preprocess"] = nlohmann::json::array();
  manifest["output"] = {{"activation", "softmax"}};
  manifest.erase("explain");
  manifest["segmentation"] = {{"overlap", 0.5}, {"blend", "gaussian"}};
  const std::string pkg = mvtest::write_package(tmp.path() / "seg", seg, manifest);
  mv_model* model = load_ok(pkg);

  std::vector<std::string> paths;
  for (int i = 0; i < 3; ++i) {
    mv_image* img = grey(20 + 4 * i, 18 + 2 * i, 5.0f * static_cast<float>(i));
    paths.push_back((tmp.path() / ("seg" + std::to_string(i) + ".nii")).string());
    save(img, paths.back());
    mv_image_free(img);
  }
  std::vector<const char*> c_paths;
  for (const auto& p : paths) c_paths.push_back(p.c_str());

  mv_image_load_options load;
  REQUIRE(mv_image_load_options_default(&load) == MV_OK);
  load.pixel_spacing[0] = 0.5;
  load.pixel_spacing[1] = 0.25;
  for (const mv_image_load_options* lo : {static_cast<const mv_image_load_options*>(nullptr),
                                          static_cast<const mv_image_load_options*>(&load)}) {
    auto o = options(4, 2);
    o.load = lo;
    mv_result_list* list = nullptr;
    INFO(mv_last_error());
    REQUIRE(mv_model_run_many(model, c_paths.data(), nullptr, c_paths.size(), &o, &list) == MV_OK);
    REQUIRE(mv_result_list_count(list) == paths.size());
    for (size_t i = 0; i < paths.size(); ++i) {
      INFO(paths[i]);
      REQUIRE(mv_result_list_status(list, i) == MV_OK);
      mv_image* img = nullptr;
      REQUIRE(mv_image_load(paths[i].c_str(), lo, &img) == MV_OK);
      mv_result* one = nullptr;
      REQUIRE(mv_model_run(model, img, &one) == MV_OK);
      const mv_result* many = mv_result_list_get(list, i);
      REQUIRE(many != nullptr);
      const std::string json = mv_result_json(one);
      CHECK(std::string(mv_result_json(many)) == json);
      const mv_image* ma = mv_result_mask(many);
      const mv_image* mb = mv_result_mask(one);
      REQUIRE(ma != nullptr);
      REQUIRE(mb != nullptr);
      int64_t sa[4] = {0, 0, 0, 0}, sb[4] = {0, 0, 0, 0};
      mv_image_shape(ma, sa);
      mv_image_shape(mb, sb);
      REQUIRE(std::equal(sa, sa + 4, sb));
      const auto n = static_cast<size_t>(sa[0] * sa[1] * sa[2] * sa[3]);
      CHECK(n > 0);
      CHECK(std::memcmp(mv_image_data(ma), mv_image_data(mb), n * sizeof(float)) == 0);
      // The user's spacing reached the decoded image: areas in mm2, the spacing's source named.
      CHECK((json.find("\"user\"") != std::string::npos) == (lo != nullptr));
      mv_result_free(one);
      mv_image_free(img);
    }
    mv_result_list_free(list);
  }

  // Bad load options fail the call before any input is read.
  load.frame = -5;
  auto o = options(1, 1);
  o.load = &load;
  mv_result_list* out = nullptr;
  CHECK(mv_model_run_many(model, c_paths.data(), nullptr, c_paths.size(), &o, &out) ==
        MV_ERR_INVALID_ARGUMENT);
  CHECK(out == nullptr);
  CHECK(std::string(mv_last_error()).find("frame") != std::string::npos);

  // The C++ wrapper passes its LoadOptions.
  const medvision::Model wrapped = medvision::Model::load(pkg);
  medvision::PipelineOptions po;
  po.load.set_pixel_spacing(0.5, 0.25);
  const auto items = medvision::run_many(wrapped, paths, po);
  REQUIRE(items.size() == paths.size());
  for (const auto& it : items) {
    REQUIRE(it.ok());
    CHECK(it.result.json().find("\"user\"") != std::string::npos);
  }
  mv_model_free(model);
}
