// The labels CSV reader (labels_csv.hpp). Moved here from the CLI (examples/cli/labels_csv.hpp)
// so that the CLI's calibrate and evaluate, and C API users, share one reader; fuzzed by
// tests/fuzz/fuzz_labels_csv.cpp.

#include "calibrate/labels_csv.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/utf8.hpp"

namespace medvision::calibrate {

namespace {

constexpr std::string_view kHeaderHelp = "a header `path,label` or `path,<label>,...`";

// Splits one CSV line at every comma; cells lose trailing spaces and '\r'.
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    std::string cell = line.substr(start, comma == std::string::npos ? comma : comma - start);
    while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
    out.push_back(std::move(cell));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A cell as it may appear in a message: valid UTF-8, at most 40 bytes.
std::string shown(const std::string& cell) {
  constexpr size_t kMax = 40;
  if (cell.size() <= kMax) return to_valid_utf8(cell);
  return to_valid_utf8(std::string_view(cell).substr(0, kMax)) + "...";
}

bool blank(const std::string& line) { return line.find_first_not_of(" \r") == std::string::npos; }

class Reader {
 public:
  Reader(const std::string& csv, const std::vector<std::string>& model_labels, bool softmax)
      : csv_(to_valid_utf8(csv)), model_labels_(model_labels), softmax_(softmax) {
    for (const auto& l : model_labels) lowered_.push_back(lower(l));
  }

  [[noreturn]] void fail(size_t line, const std::string& problem) const {
    throw Error(MV_ERR_INVALID_ARGUMENT, line == 0 ? fmt::format("{}: {}", csv_, problem)
                                                   : fmt::format("{}:{}: {}", csv_, line, problem));
  }

  int find_label(const std::string& name) const {
    const std::string l = lower(name);
    for (size_t k = 0; k < lowered_.size(); ++k)
      if (lowered_[k] == l) return static_cast<int>(k);
    return -1;
  }

  std::string label_list() const {
    std::string all;
    for (const auto& l : model_labels_) all += (all.empty() ? "" : ", ") + shown(l);
    return all;
  }

  // The header (line 1): in column layout, the model label of each column after the path.
  void header(const std::string& line) {
    columns_ = split_csv(line);
    // A path column and at least one label column (a lone column made cells[1] read past the
    // row; found by fuzz_labels_csv).
    if (columns_.size() < 2) fail(1, fmt::format("expected {}", kHeaderHelp));
    column_layout_ = columns_.size() > 2 || find_label(columns_[1]) >= 0;
    if (!column_layout_) return;
    if (softmax_) {
      fail(1,
           "a softmax model needs `path,label` with one class name per row, not a column per "
           "label");
    }
    std::vector<size_t> seen(model_labels_.size(), 0);
    for (size_t c = 1; c < columns_.size(); ++c) {
      const int k = find_label(columns_[c]);
      if (k < 0) {
        fail(1, fmt::format("column {} '{}' is not a label of the model (labels: {})", c + 1,
                            shown(columns_[c]), label_list()));
      }
      if (seen[static_cast<size_t>(k)] != 0) {
        fail(1, fmt::format("columns {} and {} are both label '{}'", seen[static_cast<size_t>(k)],
                            c + 1, shown(model_labels_[static_cast<size_t>(k)])));
      }
      seen[static_cast<size_t>(k)] = c + 1;
      column_label_.push_back(static_cast<size_t>(k));
    }
  }

  void row(const std::string& line, size_t line_no, const std::filesystem::path& base,
           LabelledSet& set) const {
    const auto cells = split_csv(line);
    if (cells.size() != columns_.size()) {
      fail(line_no, fmt::format("expected {} columns as in the header, found {}", columns_.size(),
                                cells.size()));
    }
    if (cells[0].empty()) fail(line_no, "empty image path");
    const std::filesystem::path p(cells[0]);
    set.paths.push_back((p.is_absolute() ? p : base / p).string());
    std::vector<int32_t> labels(model_labels_.size(), 0);
    if (column_layout_) {
      for (size_t c = 1; c < cells.size(); ++c) {
        if (cells[c] != "0" && cells[c] != "1") {
          fail(line_no, fmt::format("column {} ('{}'): expected 0 or 1, found '{}'", c + 1,
                                    shown(columns_[c]), shown(cells[c])));
        }
        labels[column_label_[c - 1]] = cells[c] == "1" ? 1 : 0;
      }
      set.labels.insert(set.labels.end(), labels.begin(), labels.end());
      return;
    }
    int positives = 0;
    int cls = -1;
    size_t start = 0;
    const std::string& names = cells[1];
    while (start <= names.size()) {
      const size_t bar = names.find('|', start);
      const std::string name =
          names.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
      start = bar == std::string::npos ? names.size() + 1 : bar + 1;
      // A model label first: a softmax class or a sigmoid label may be called "normal".
      const int k = find_label(name);
      if (k < 0) {
        const std::string l = lower(name);
        if (l.empty() || l == "normal" || l == "none" || l == "no finding") continue;
        fail(line_no, fmt::format("'{}' is not a label of the model (labels: {})", shown(name),
                                  label_list()));
      }
      labels[static_cast<size_t>(k)] = 1;
      cls = k;
      ++positives;
    }
    if (!softmax_) {
      set.labels.insert(set.labels.end(), labels.begin(), labels.end());
      return;
    }
    if (positives != 1) {
      fail(line_no,
           fmt::format("a softmax model needs exactly one class per image, found {}", positives));
    }
    set.labels.push_back(cls);
  }

 private:
  std::string csv_;
  const std::vector<std::string>& model_labels_;
  std::vector<std::string> lowered_;
  bool softmax_;
  std::vector<std::string> columns_;
  bool column_layout_ = false;
  std::vector<size_t> column_label_;  // column layout: the model label of column c + 1
};

}  // namespace

LabelledSet read_labels_csv(const std::string& csv, const std::vector<std::string>& model_labels,
                            bool softmax) {
  Reader reader(csv, model_labels, softmax);
  if (model_labels.empty()) reader.fail(0, "the model has no labels");
  std::error_code ec;
  if (std::filesystem::is_directory(csv, ec)) reader.fail(0, "is a folder, not a labels CSV");
  std::ifstream f(csv, std::ios::binary);
  if (!f) throw Error(MV_ERR_IO, fmt::format("{}: cannot open", to_valid_utf8(csv)));
  std::string line;
  if (!std::getline(f, line)) reader.fail(0, fmt::format("empty file (expected {})", kHeaderHelp));
  // A UTF-8 byte order mark, as spreadsheet programs write.
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
  reader.header(line);
  const auto base = std::filesystem::path(csv).parent_path();
  LabelledSet set;
  size_t line_no = 1;
  while (std::getline(f, line)) {
    ++line_no;
    if (blank(line)) continue;
    reader.row(line, line_no, base, set);
  }
  if (f.bad()) throw Error(MV_ERR_IO, fmt::format("{}: read error", to_valid_utf8(csv)));
  if (set.paths.empty()) reader.fail(0, "no rows after the header");
  return set;
}

}  // namespace medvision::calibrate
