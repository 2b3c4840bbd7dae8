#pragma once
// The labels CSV that `medvision calibrate` and `medvision evaluate` read (docs/calibration.md):
// image paths and their labels. Public API only; a header of its own so that
// tests/fuzz/fuzz_labels_csv.cpp runs the same reader as the CLI.

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "medvision/medvision.hpp"

namespace mvcli {

// Splits one CSV line (no quoted commas: paths and label names here never hold commas).
inline std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) {
    while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
    out.push_back(cell);
  }
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A labelled validation set: image paths and, per image, label_count values in {0, 1}
// (sigmoid) or one class index (softmax).
struct LabelledSet {
  std::vector<std::string> paths;
  std::vector<int32_t> labels;
};

// Reads `path,label` (label names, '|'-separated for multi-label; "normal", "none", "no finding"
// or empty mean no positive label) or `path,<label>,<label>...` with 0/1 columns named as the
// model's labels. Relative paths are relative to the CSV's folder.
inline LabelledSet read_labels_csv(const std::string& csv,
                                   const std::vector<std::string>& model_labels, bool softmax) {
  std::ifstream f(csv);
  if (!f) throw medvision::Exception(MV_ERR_IO, csv + ": cannot open");
  std::string line;
  if (!std::getline(f, line)) throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, csv + ": empty");
  const auto header = split_csv(line);
  // A path column and at least one label column (a lone column made cells[1] read past the
  // row; found by fuzz_labels_csv).
  if (header.size() < 2) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               csv + ": expected a header `path,label` or `path,<label>,...`");
  }
  const auto base = std::filesystem::path(csv).parent_path();
  auto find_label = [&](const std::string& name) -> int {
    for (size_t k = 0; k < model_labels.size(); ++k)
      if (lower(model_labels[k]) == lower(name)) return static_cast<int>(k);
    return -1;
  };
  const bool columns = header.size() > 2 || (header.size() == 2 && find_label(header[1]) >= 0);
  std::vector<int> column_label;
  if (columns) {
    if (softmax) {
      throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                 csv + ": a softmax model needs `path,label` with one class name");
    }
    for (size_t c = 1; c < header.size(); ++c) {
      const int k = find_label(header[c]);
      if (k < 0) {
        throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, csv + ": column '" + header[c] +
                                                                "' is not a label of the model");
      }
      column_label.push_back(k);
    }
  }
  LabelledSet set;
  size_t line_no = 1;
  while (std::getline(f, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const auto cells = split_csv(line);
    const std::string where = csv + ":" + std::to_string(line_no);
    if (cells.size() != header.size()) {
      throw medvision::Exception(
          MV_ERR_INVALID_ARGUMENT,
          where + ": expected " + std::to_string(header.size()) + " columns");
    }
    std::filesystem::path p(cells[0]);
    set.paths.push_back((p.is_absolute() ? p : base / p).string());
    if (columns) {
      std::vector<int32_t> row(model_labels.size(), 0);
      for (size_t c = 1; c < cells.size(); ++c) {
        if (cells[c] != "0" && cells[c] != "1") {
          throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, where + ": values must be 0 or 1");
        }
        row[static_cast<size_t>(column_label[c - 1])] = cells[c] == "1";
      }
      set.labels.insert(set.labels.end(), row.begin(), row.end());
      continue;
    }
    std::vector<int32_t> row(model_labels.size(), 0);
    std::stringstream names(cells[1]);
    std::string name;
    int positives = 0, cls = -1;
    while (std::getline(names, name, '|')) {
      const std::string l = lower(name);
      if (l.empty() || l == "normal" || l == "none" || l == "no finding") continue;
      const int k = find_label(name);
      if (k < 0) {
        throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                   where + ": '" + name + "' is not a label of the model");
      }
      row[static_cast<size_t>(k)] = 1;
      cls = k;
      ++positives;
    }
    if (softmax) {
      if (positives != 1) {
        throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                   where + ": a softmax model needs exactly one class per image");
      }
      set.labels.push_back(cls);
    } else {
      set.labels.insert(set.labels.end(), row.begin(), row.end());
    }
  }
  if (set.paths.empty()) throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, csv + ": no rows");
  return set;
}

}  // namespace mvcli
