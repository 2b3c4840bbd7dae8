// mv_result_write_dicom_sr and mv_dicom_sr_options through the C ABI: every status path. The
// content of the report is checked against independent readers (pydicom, DCMTK's dsrdump and
// DSRDocument, dciodvfy) in bindings/python/tests/test_dicom_sr.py.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcobject.h>

#include <thread>

#include "model_fixture.hpp"
#include "test_data.hpp"

namespace {

using mvtest::TempDir;

// The real chest X-ray (DX, NIH ChestX-ray14 in Google's DICOM form; PROVENANCE.txt).
constexpr const char* kCxr =
    "cxr-dicom/nccid-nhsx/warehouse-loader/tests/test_data/"
    "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm";

struct Fixture {
  TempDir dir;
  mv_model* model = nullptr;
  mv_result* result = nullptr;
  mv_image* pixels = nullptr;  // not from DICOM
  Fixture() {
    auto module = mvtest::make_linear_module(1, 1);
    auto manifest = mvtest::base_manifest(1, 1);
    manifest["codes"] = {
        {"L0", {{"value", "233604007"}, {"scheme", "SCT"}, {"meaning", "Pneumonia"}}}};
    model = mvtest::load_ok(mvtest::write_package(dir.path() / "pkg", module, manifest));
    pixels = mvtest::image_from_floats(16, 16, std::vector<float>(256, 100.0f));
    REQUIRE(pixels != nullptr);
    REQUIRE(mv_model_run(model, pixels, &result) == MV_OK);
  }
  ~Fixture() {
    mv_result_free(result);
    mv_image_free(pixels);
    mv_model_free(model);
  }
};

}  // namespace

TEST_CASE("dicom sr: options init refuses NULL and old sizes, accepts larger ones", "[sr]") {
  mv_dicom_sr_options o;
  REQUIRE(mv_dicom_sr_options_init(nullptr, sizeof o) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("mv_dicom_sr_options_init") != std::string::npos);
  REQUIRE(mv_dicom_sr_options_init(&o, 4) == MV_ERR_ABI_MISMATCH);
  REQUIRE(mv_dicom_sr_options_default(&o) == MV_OK);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.seg_path == nullptr);
  CHECK(std::string(mv_last_error()).empty());
  // A newer caller's larger struct: what this library knows is defaulted, the rest zeroed.
  struct Bigger {
    mv_dicom_sr_options o;
    uint64_t later[4];
  } big;
  std::memset(&big, 0xAB, sizeof big);
  REQUIRE(mv_dicom_sr_options_init(&big.o, sizeof big) == MV_OK);
  CHECK(big.o.struct_size == sizeof big);
  CHECK(big.o.seg_path == nullptr);
  for (uint64_t v : big.later) CHECK(v == 0);
}

TEST_CASE("dicom sr: bad arguments get a status and a message naming the problem", "[sr]") {
  Fixture f;
  const std::string out = (f.dir.path() / "sr.dcm").string();
  REQUIRE(mv_result_write_dicom_sr(nullptr, f.pixels, nullptr, out.c_str()) ==
          MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("result is NULL") != std::string::npos);
  REQUIRE(mv_result_write_dicom_sr(f.result, nullptr, nullptr, out.c_str()) ==
          MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("source is NULL") != std::string::npos);
  REQUIRE(mv_result_write_dicom_sr(f.result, f.pixels, nullptr, nullptr) ==
          MV_ERR_INVALID_ARGUMENT);
  REQUIRE(mv_result_write_dicom_sr(f.result, f.pixels, nullptr, "") == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("path") != std::string::npos);

  // A source that was not read from DICOM has no study to put the report in.
  REQUIRE(mv_result_write_dicom_sr(f.result, f.pixels, nullptr, out.c_str()) ==
          MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("not read from DICOM") != std::string::npos);
  CHECK_FALSE(mvtest::fs::exists(out));

  mv_dicom_sr_options o;
  REQUIRE(mv_dicom_sr_options_default(&o) == MV_OK);
  o.struct_size = 4;
  REQUIRE(mv_result_write_dicom_sr(f.result, f.pixels, &o, out.c_str()) == MV_ERR_ABI_MISMATCH);
  CHECK(std::string(mv_last_error()).find("struct_size") != std::string::npos);
}

TEST_CASE("dicom sr: a DICOM source gives a report; SEG and output problems are named",
          "[sr][data]") {
  const std::string cxr = mvtest::data_path(kCxr);
  if (cxr.empty()) return;
  Fixture f;
  mv_image* source = nullptr;
  REQUIRE(mv_image_load(cxr.c_str(), nullptr, &source) == MV_OK);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(f.model, source, &r) == MV_OK);
  const std::string out = (f.dir.path() / "sr.dcm").string();

  const mv_status st = mv_result_write_dicom_sr(r, source, nullptr, out.c_str());
  INFO(mv_last_error());
  REQUIRE(st == MV_OK);
  CHECK(std::string(mv_last_error()).empty());
  CHECK(mvtest::fs::file_size(out) > 1000);

  // A newer caller's larger options struct is accepted.
  struct Bigger {
    mv_dicom_sr_options o;
    uint64_t later[2];
  } big;
  REQUIRE(mv_dicom_sr_options_init(&big.o, sizeof big) == MV_OK);
  const std::string out2 = (f.dir.path() / "sr2.dcm").string();
  REQUIRE(mv_result_write_dicom_sr(r, source, &big.o, out2.c_str()) == MV_OK);
  CHECK(mvtest::fs::exists(out2));

  mv_dicom_sr_options o;
  REQUIRE(mv_dicom_sr_options_default(&o) == MV_OK);
  const std::string missing = (f.dir.path() / "missing.seg.dcm").string();
  o.seg_path = missing.c_str();
  REQUIRE(mv_result_write_dicom_sr(r, source, &o, out.c_str()) == MV_ERR_IO);
  CHECK(std::string(mv_last_error()).find(missing) != std::string::npos);
  // The source itself is DICOM but not a Segmentation.
  o.seg_path = cxr.c_str();
  REQUIRE(mv_result_write_dicom_sr(r, source, &o, out.c_str()) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()).find("not a DICOM Segmentation") != std::string::npos);

  const std::string unwritable = (f.dir.path() / "no-such-dir" / "sr.dcm").string();
  REQUIRE(mv_result_write_dicom_sr(r, source, nullptr, unwritable.c_str()) == MV_ERR_IO);
  CHECK(std::string(mv_last_error()).find(unwritable) != std::string::npos);
  // No patient value ever reaches a message.
  CHECK(std::string(mv_last_error()).find("Covid0000") == std::string::npos);

  // Many threads writing reports at once (a DICOM node's workers) all succeed.
  std::vector<std::thread> threads;
  std::vector<mv_status> status(4, MV_ERR_UNKNOWN);
  for (size_t t = 0; t < status.size(); ++t) {
    threads.emplace_back([&, t] {
      const std::string p = (f.dir.path() / ("t" + std::to_string(t) + ".dcm")).string();
      for (int k = 0; k < 3; ++k)
        status[t] = mv_result_write_dicom_sr(r, source, nullptr, p.c_str());
    });
  }
  for (auto& th : threads) th.join();
  for (mv_status st2 : status) CHECK(st2 == MV_OK);

  mv_result_free(r);
  mv_image_free(source);
}

TEST_CASE("dicom sr: the manifest's codes are validated at load", "[sr][manifest]") {
  TempDir dir;
  auto module = mvtest::make_linear_module(1, 1);
  const auto load = [&](const nlohmann::json& codes, const std::string& name) {
    auto manifest = mvtest::base_manifest(1, 1);
    manifest["codes"] = codes;
    const std::string pkg = mvtest::write_package(dir.path() / name, module, manifest);
    mv_model* m = nullptr;
    const mv_status st = mv_model_load(pkg.c_str(), nullptr, &m);
    mv_model_free(m);
    return std::make_pair(st, std::string(mv_last_error()));
  };
  const nlohmann::json good = {{"value", "233604007"}, {"scheme", "SCT"}, {"meaning", "Pneumonia"}};
  CHECK(load({{"L0", good}}, "ok").first == MV_OK);
  CHECK(load(nullptr, "null").first == MV_OK);

  auto [st, msg] = load({{"Nope", good}}, "unknown-label");
  CHECK(st == MV_ERR_MODEL);
  CHECK(msg.find("codes.Nope") != std::string::npos);
  CHECK(msg.find("manifest.json") != std::string::npos);

  std::tie(st, msg) = load({{"L0", {{"value", "1"}, {"scheme", "SCT"}}}}, "no-meaning");
  CHECK(st == MV_ERR_MODEL);
  CHECK(msg.find("codes.L0.meaning") != std::string::npos);

  std::tie(st, msg) = load(
      {{"L0", {{"value", "1"}, {"scheme", "SCT"}, {"meaning", "x"}, {"extra", "y"}}}}, "extra-key");
  CHECK(st == MV_ERR_MODEL);
  CHECK(msg.find("codes.L0.extra") != std::string::npos);

  std::tie(st, msg) = load(
      {{"L0", {{"value", std::string(65, '9')}, {"scheme", "SCT"}, {"meaning", "x"}}}}, "too-long");
  CHECK(st == MV_ERR_MODEL);
  CHECK(msg.find("at most 64") != std::string::npos);

  std::tie(st, msg) = load(nlohmann::json::array(), "not-object");
  CHECK(st == MV_ERR_MODEL);
  CHECK(msg.find("codes") != std::string::npos);
}

// DCMTK's automatic input data correction is a process-wide flag that strips the padding of UI
// values as files are read. A host program may turn it off: DcmSCP::openListenPort() does
// (DCMTK 3.6.7), which is what a DICOM node embedding medvision runs. The writers must not
// depend on it (found by examples/dicom-node, 2026-12).
TEST_CASE("dicom sr: the report is written when the host turned DCMTK's input correction off",
          "[sr][data]") {
  const std::string cxr = mvtest::data_path(kCxr);
  if (cxr.empty()) return;
  Fixture f;
  mv_image* source = nullptr;
  REQUIRE(mv_image_load(cxr.c_str(), nullptr, &source) == MV_OK);
  mv_result* r = nullptr;
  REQUIRE(mv_model_run(f.model, source, &r) == MV_OK);
  struct Restore {
    ~Restore() { dcmEnableAutomaticInputDataCorrection.set(OFTrue); }
  } restore;
  dcmEnableAutomaticInputDataCorrection.set(OFFalse);
  const std::string out = (f.dir.path() / "sr-nocorrection.dcm").string();
  const mv_status st = mv_result_write_dicom_sr(r, source, nullptr, out.c_str());
  INFO(mv_last_error());
  CHECK(st == MV_OK);
  mv_result_free(r);
  mv_image_free(source);
}
