// mv_labels_csv_read() through the C ABI: argument checks, outputs untouched on error, the
// message of a refusal, and a set read back through the getters.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "medvision/medvision.h"

namespace {

std::string write_csv(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("mv-capi-labels-" + std::to_string(static_cast<long>(getpid())));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << text;
  return (dir / name).string();
}

const char* const kLabels[] = {"Pneumonia", "Effusion"};

}  // namespace

TEST_CASE("mv_labels_csv_read: arguments and refusals", "[capi][labels_csv]") {
  mv_labels_csv* untouched = reinterpret_cast<mv_labels_csv*>(&untouched);
  mv_labels_csv* out = untouched;
  const std::string ok = write_csv("ok.csv", "path,label\na.png,pneumonia\n");
  CHECK(mv_labels_csv_read(nullptr, kLabels, 2, 0, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(mv_last_error()) > 0);
  CHECK(mv_labels_csv_read(ok.c_str(), kLabels, 2, 0, nullptr) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_labels_csv_read(ok.c_str(), nullptr, 2, 0, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(mv_labels_csv_read(ok.c_str(), kLabels, 0, 0, &out) == MV_ERR_INVALID_ARGUMENT);
  const char* const with_null[] = {"Pneumonia", nullptr};
  CHECK(mv_labels_csv_read(ok.c_str(), with_null, 2, 0, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(out == untouched);

  const std::string bad = write_csv("bad.csv", "path,label\na.png,pneumonia\nb.png,nodule\n");
  CHECK(mv_labels_csv_read(bad.c_str(), kLabels, 2, 0, &out) == MV_ERR_INVALID_ARGUMENT);
  CHECK(std::string(mv_last_error()) ==
        bad + ":3: 'nodule' is not a label of the model (labels: Pneumonia, Effusion)");
  CHECK(out == untouched);
  const std::string missing = bad + ".missing";
  CHECK(mv_labels_csv_read(missing.c_str(), kLabels, 2, 0, &out) == MV_ERR_IO);
  CHECK(std::string(mv_last_error()) == missing + ": cannot open");
  CHECK(out == untouched);

  CHECK(mv_labels_csv_count(nullptr) == 0);
  CHECK(std::string(mv_labels_csv_path(nullptr, 0)).empty());
  size_t n = 7;
  CHECK(mv_labels_csv_labels(nullptr, &n) == nullptr);
  CHECK(n == 0);
  mv_labels_csv_free(nullptr);
}

TEST_CASE("mv_labels_csv_read: a set for mv_model_calibrate()", "[capi][labels_csv]") {
  const std::string csv =
      write_csv("set.csv", "path,label\nx/a.png,effusion\n/b.png,Pneumonia|Effusion\n");
  mv_labels_csv* set = nullptr;
  REQUIRE(mv_labels_csv_read(csv.c_str(), kLabels, 2, 0, &set) == MV_OK);
  CHECK(std::string(mv_last_error()).empty());
  REQUIRE(mv_labels_csv_count(set) == 2);
  CHECK(std::string(mv_labels_csv_path(set, 0)) ==
        (std::filesystem::path(csv).parent_path() / "x/a.png").string());
  CHECK(std::string(mv_labels_csv_path(set, 1)) == "/b.png");
  CHECK(std::string(mv_labels_csv_path(set, 2)).empty());
  size_t n = 0;
  const int32_t* y = mv_labels_csv_labels(set, &n);
  REQUIRE(n == 4);
  CHECK((y[0] == 0 && y[1] == 1 && y[2] == 1 && y[3] == 1));
  CHECK(mv_labels_csv_labels(set, nullptr) == y);
  mv_labels_csv_free(set);

  REQUIRE(mv_labels_csv_read(csv.c_str(), kLabels, 2, 1, &set) == MV_ERR_INVALID_ARGUMENT);
  CHECK_THAT(std::string(mv_last_error()),
             Catch::Matchers::Contains(":3: a softmax model needs exactly one class per image"));
}
