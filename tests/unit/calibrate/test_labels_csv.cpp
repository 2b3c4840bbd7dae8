// The labels CSV reader (calibrate/labels_csv.hpp): both layouts, sigmoid and softmax, and every
// refusal naming the file, the line and the problem.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "calibrate/labels_csv.hpp"
#include "common/error.hpp"

namespace fs = std::filesystem;
using medvision::calibrate::LabelledSet;
using medvision::calibrate::read_labels_csv;

namespace {

const std::vector<std::string> kLabels = {"Pneumonia", "Effusion", "normal"};

fs::path scratch() {
  static const fs::path dir =
      fs::temp_directory_path() / ("mv-labels-csv-" + std::to_string(static_cast<long>(getpid())));
  fs::create_directories(dir);
  return dir;
}

std::string write_csv(const std::string& name, const std::string& text) {
  const fs::path p = scratch() / name;
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

// The message of the medvision::Error that reading `text` as `name` throws, with its status.
std::string refusal(const std::string& name, const std::string& text, bool softmax = false,
                    mv_status expected = MV_ERR_INVALID_ARGUMENT) {
  const std::string path = write_csv(name, text);
  try {
    (void)read_labels_csv(path, kLabels, softmax);
  } catch (const medvision::Error& e) {
    CHECK(e.status() == expected);
    return e.what();
  }
  FAIL("no refusal for " << name);
  return "";
}

}  // namespace

TEST_CASE("labels csv: label names, sigmoid", "[calibrate][labels_csv]") {
  const std::string csv = write_csv("names.csv",
                                    "\xEF\xBB\xBFpath,label\r\n"
                                    "a.png,pneumonia\r\n"
                                    "\r\n"
                                    "sub/b.dcm,Effusion|PNEUMONIA\r\n"
                                    "/abs/c.png,none\r\n"
                                    "d.png,No Finding\r\n"
                                    "e.png,\r\n"
                                    "f.png,normal\r\n");
  const LabelledSet set = read_labels_csv(csv, kLabels, false);
  REQUIRE(set.paths.size() == 6);
  CHECK(set.paths[0] == (scratch() / "a.png").string());
  CHECK(set.paths[1] == (scratch() / "sub/b.dcm").string());
  CHECK(set.paths[2] == "/abs/c.png");
  // "normal" is one of this model's labels, so it is a positive label, not "no finding".
  const std::vector<int32_t> expected = {1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  CHECK(set.labels == expected);
}

TEST_CASE("labels csv: 0/1 columns in any order", "[calibrate][labels_csv]") {
  const std::string csv = write_csv("columns.csv",
                                    "path,effusion,Pneumonia\n"
                                    "a.png,1,0\n"
                                    "b.png,0,1\n"
                                    "c.png,1,1\n");
  const LabelledSet set = read_labels_csv(csv, kLabels, false);
  REQUIRE(set.paths.size() == 3);
  const std::vector<int32_t> expected = {0, 1, 0, 1, 0, 0, 1, 1, 0};
  CHECK(set.labels == expected);
  // Two columns only: a label name as the second header cell means the column layout.
  const LabelledSet one =
      read_labels_csv(write_csv("one.csv", "path,effusion\na.png,1\n"), kLabels, false);
  CHECK(one.labels == std::vector<int32_t>{0, 1, 0});
}

TEST_CASE("labels csv: softmax class indices", "[calibrate][labels_csv]") {
  const std::string csv =
      write_csv("softmax.csv", "path,label\na.png,effusion\nb.png,Normal\nc.png,pneumonia\n");
  const LabelledSet set = read_labels_csv(csv, kLabels, true);
  CHECK(set.labels == std::vector<int32_t>{1, 2, 0});
}

TEST_CASE("labels csv: refusals name the file, the line and the problem",
          "[calibrate][labels_csv]") {
  using Catch::Matchers::Contains;
  const std::string dir = scratch().string();
  CHECK_THAT(refusal("rows.csv", "path,label\na.png,pneumonia\nb.png,pneumonia,x\n"),
             Contains(dir + "/rows.csv:3: expected 2 columns as in the header, found 3"));
  CHECK_THAT(refusal("value.csv", "path,Pneumonia,Effusion\na.png,1,yes\n"),
             Contains("value.csv:2: column 3 ('Effusion'): expected 0 or 1, found 'yes'"));
  CHECK_THAT(refusal("unknown.csv", "path,label\na.png,pneumonia|nodule\n"),
             Contains("unknown.csv:2: 'nodule' is not a label of the model (labels: Pneumonia, "
                      "Effusion, normal)"));
  CHECK_THAT(refusal("column.csv", "path,Pneumonia,nodule\na.png,1,0\n"),
             Contains("column.csv:1: column 3 'nodule' is not a label of the model"));
  CHECK_THAT(refusal("twice.csv", "path,Pneumonia,pneumonia\na.png,1,0\n"),
             Contains("twice.csv:1: columns 2 and 3 are both label 'Pneumonia'"));
  CHECK_THAT(refusal("header.csv", "path\na.png\n"),
             Contains("header.csv:1: expected a header `path,label` or `path,<label>,...`"));
  CHECK_THAT(refusal("soft-columns.csv", "path,Pneumonia,Effusion\na.png,1,0\n", true),
             Contains("soft-columns.csv:1: a softmax model needs `path,label`"));
  CHECK_THAT(
      refusal("soft-two.csv", "path,label\na.png,pneumonia|effusion\n", true),
      Contains("soft-two.csv:2: a softmax model needs exactly one class per image, found 2"));
  CHECK_THAT(
      refusal("soft-none.csv", "path,label\na.png,none\n", true),
      Contains("soft-none.csv:2: a softmax model needs exactly one class per image, found 0"));
  CHECK_THAT(refusal("path.csv", "path,label\n,pneumonia\n"),
             Contains("path.csv:2: empty image path"));
  CHECK_THAT(refusal("empty.csv", ""), Contains("empty.csv: empty file"));
  CHECK_THAT(refusal("norows.csv", "path,label\n\n\n"),
             Contains("norows.csv: no rows after the header"));
  // Long or invalid cells are shortened and made valid UTF-8 in the message.
  const std::string long_name = std::string(100, 'x') + "\xff";
  const std::string msg = refusal("long.csv", "path,label\na.png," + long_name + "\n");
  CHECK_THAT(msg, Contains("'" + std::string(40, 'x') + "...'"));
  CHECK(msg.find('\xff') == std::string::npos);

  try {
    (void)read_labels_csv(dir + "/missing.csv", kLabels, false);
    FAIL("no refusal");
  } catch (const medvision::Error& e) {
    CHECK(e.status() == MV_ERR_IO);
    CHECK_THAT(std::string(e.what()), Contains("missing.csv: cannot open"));
  }
  try {
    (void)read_labels_csv(dir, kLabels, false);
    FAIL("no refusal");
  } catch (const medvision::Error& e) {
    CHECK_THAT(std::string(e.what()), Contains("is a folder, not a labels CSV"));
  }
  try {
    (void)read_labels_csv(write_csv("ok.csv", "path,label\na.png,none\n"), {}, false);
    FAIL("no refusal");
  } catch (const medvision::Error& e) {
    CHECK_THAT(std::string(e.what()), Contains("the model has no labels"));
  }
}
