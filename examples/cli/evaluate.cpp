// medvision evaluate: one or more classification models on a labelled test set (--labels), or
// segmentation models against reference label maps (--masks); writes evaluation.json and a
// self-contained report.html (inline SVG, no scripts, no external links).

#include "evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "labels_csv.hpp"
#include "medvision/medvision.hpp"

namespace mvcli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

std::string colour(size_t i) { return kColours[i % (sizeof kColours / sizeof kColours[0])]; }

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(const json& v, int digits = 3) {
  if (!v.is_number()) return "&ndash;";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v.get<double>());
  return buf;
}

// num() for the terminal.
std::string plain(const json& v, int digits = 3) {
  return v.is_number() ? num(v, digits) : std::string("n/a");
}

std::string fmt(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

struct Series {
  std::string name;
  std::vector<double> x, y;
  std::string colour;
  bool points = false;  // markers instead of a line
};

// A square [0, 1] x [0, 1] chart with axes, grid, an optional diagonal and a legend.
std::string chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                  const std::vector<Series>& series, bool diagonal) {
  constexpr double kSize = 260, kLeft = 48, kTop = 28;
  auto px = [&](double x) { return kLeft + x * kSize; };
  auto py = [&](double y) { return kTop + (1 - y) * kSize; };
  std::ostringstream s;
  s << "<svg width=\"330\" height=\""
    << fmt(kTop + kSize + 50 + 16 * static_cast<double>(series.size()), 0)
    << "\" role=\"img\" aria-label=\"" << escape(title) << "\">";
  s << "<text x=\"" << fmt(kLeft) << "\" y=\"16\" font-size=\"13\" font-weight=\"bold\">"
    << escape(title) << "</text>";
  for (int i = 0; i <= 4; ++i) {
    const double t = i / 4.0;
    s << "<line x1=\"" << fmt(px(t)) << "\" y1=\"" << fmt(py(0)) << "\" x2=\"" << fmt(px(t))
      << "\" y2=\"" << fmt(py(1)) << "\" stroke=\"#eee\"/>";
    s << "<line x1=\"" << fmt(px(0)) << "\" y1=\"" << fmt(py(t)) << "\" x2=\"" << fmt(px(1))
      << "\" y2=\"" << fmt(py(t)) << "\" stroke=\"#eee\"/>";
    s << "<text x=\"" << fmt(px(t)) << "\" y=\"" << fmt(py(0) + 14)
      << "\" font-size=\"10\" text-anchor=\"middle\">" << fmt(t, 2) << "</text>";
    s << "<text x=\"" << fmt(px(0) - 4) << "\" y=\"" << fmt(py(t) + 3)
      << "\" font-size=\"10\" text-anchor=\"end\">" << fmt(t, 2) << "</text>";
  }
  s << "<rect x=\"" << fmt(px(0)) << "\" y=\"" << fmt(py(1)) << "\" width=\"" << fmt(kSize)
    << "\" height=\"" << fmt(kSize) << "\" fill=\"none\" stroke=\"#333\"/>";
  if (diagonal) {
    s << "<line x1=\"" << fmt(px(0)) << "\" y1=\"" << fmt(py(0)) << "\" x2=\"" << fmt(px(1))
      << "\" y2=\"" << fmt(py(1)) << "\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>";
  }
  s << "<text x=\"" << fmt(px(0.5)) << "\" y=\"" << fmt(py(0) + 30)
    << "\" font-size=\"11\" text-anchor=\"middle\">" << escape(xlabel) << "</text>";
  s << "<text transform=\"translate(12," << fmt(py(0.5)) << ") rotate(-90)\" font-size=\"11\" "
    << "text-anchor=\"middle\">" << escape(ylabel) << "</text>";
  double legend_y = py(0) + 48;
  for (const auto& se : series) {
    if (se.points) {
      for (size_t i = 0; i < se.x.size(); ++i) {
        if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
        s << "<circle cx=\"" << fmt(px(se.x[i]), 2) << "\" cy=\"" << fmt(py(se.y[i]), 2)
          << "\" r=\"3\" fill=\"" << se.colour << "\"/>";
      }
      std::string path;
      for (size_t i = 0; i < se.x.size(); ++i) {
        if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
        path += (path.empty() ? "M" : " L") + fmt(px(se.x[i]), 2) + " " + fmt(py(se.y[i]), 2);
      }
      if (!path.empty())
        s << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << se.colour
          << "\" stroke-width=\"1\" stroke-opacity=\"0.6\"/>";
    } else {
      std::string path;
      for (size_t i = 0; i < se.x.size(); ++i) {
        if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
        path += (path.empty() ? "M" : " L") + fmt(px(se.x[i]), 2) + " " + fmt(py(se.y[i]), 2);
      }
      if (!path.empty())
        s << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << se.colour
          << "\" stroke-width=\"2\"/>";
    }
    s << "<rect x=\"" << fmt(kLeft) << "\" y=\"" << fmt(legend_y - 9) << "\" width=\"10\" "
      << "height=\"10\" fill=\"" << se.colour << "\"/><text x=\"" << fmt(kLeft + 14) << "\" y=\""
      << fmt(legend_y) << "\" font-size=\"11\">" << escape(se.name) << "</text>";
    legend_y += 16;
  }
  s << "</svg>";
  return s.str();
}

std::vector<double> doubles(const json& a) {
  std::vector<double> v;
  if (!a.is_array()) return v;
  for (const auto& x : a) v.push_back(x.is_number() ? x.get<double>() : NAN);
  return v;
}

std::string model_title(const json& m) {
  return m["name"].get<std::string>() + " " + m["version"].get<std::string>();
}

std::string confusion_table(const json& c, const std::string& caption) {
  if (!c.is_object()) return "";
  std::ostringstream s;
  s << "<table class=\"cm\"><caption>" << escape(caption) << " (threshold "
    << num(c["threshold"], 4) << ")</caption><tr><th></th><th>predicted positive</th>"
    << "<th>predicted negative</th></tr><tr><th>positive</th><td>" << c["tp"] << "</td><td>"
    << c["fn"] << "</td></tr><tr><th>negative</th><td>" << c["fp"] << "</td><td>" << c["tn"]
    << "</td></tr></table>";
  return s.str();
}

std::string rates_row(const std::string& what, const json& c) {
  if (!c.is_object()) return "";
  return "<tr><td>" + escape(what) + "</td><td>" + num(c["threshold"], 4) + "</td><td>" +
         num(c["sensitivity"]) + "</td><td>" + num(c["specificity"]) + "</td><td>" + num(c["ppv"]) +
         "</td><td>" + num(c["npv"]) + "</td><td>" + num(c["accuracy"]) + "</td></tr>";
}

// report_html's parts: per label, the tables, then the confusion matrices and the curves; then
// the paired comparisons.

void html_label_tables(std::ostringstream& h, const json& models, const std::string& label) {
  h << "<h2>" << escape(label) << "</h2>";
  // Per-label table, one row per model.
  h << "<table><tr><th>model</th><th>positives</th><th>negatives</th><th>AUROC</th>"
       "<th>CI</th><th>AP</th><th>ECE raw</th><th>ECE cal.</th><th>adaptive ECE raw</th>"
       "<th>adaptive ECE cal.</th><th>Brier raw</th><th>Brier cal.</th><th>NLL raw</th>"
       "<th>NLL cal.</th></tr>";
  for (const auto& m : models) {
    const auto& l = m["labels"][label];
    const json cal = l["calibrated"].is_object() ? l["calibrated"] : json::object();
    h << "<tr><td>" << escape(model_title(m)) << "</td><td>" << l["positives"] << "</td><td>"
      << l["negatives"] << "</td><td>"
      << (l["auroc"].is_object() ? num(l["auroc"]["estimate"]) : "&ndash;") << "</td><td>"
      << (l["auroc"].is_object() ? num(l["auroc"]["lo"]) + "&ndash;" + num(l["auroc"]["hi"])
                                 : std::string("&ndash;"))
      << "</td><td>" << num(l["average_precision"]) << "</td><td>" << num(l["raw"]["ece"])
      << "</td><td>" << num(cal.value("ece", json())) << "</td><td>"
      << num(l["raw"]["adaptive_ece"]) << "</td><td>" << num(cal.value("adaptive_ece", json()))
      << "</td><td>" << num(l["raw"]["brier"]) << "</td><td>" << num(cal.value("brier", json()))
      << "</td><td>" << num(l["raw"]["log_loss"]) << "</td><td>"
      << num(cal.value("log_loss", json())) << "</td></tr>";
  }
  h << "</table>";
  // Decisions.
  h << "<table><caption>Decisions (positive when p &ge; threshold)</caption><tr><th>model</th>"
       "<th>at</th><th>threshold</th><th>sensitivity</th><th>specificity</th><th>PPV</th>"
       "<th>NPV</th><th>accuracy</th></tr>";
  for (const auto& m : models) {
    const auto& l = m["labels"][label];
    const std::string t = escape(model_title(m));
    std::string rows = rates_row("operating point", l["operating_point"]) +
                       rates_row("--threshold", l["at_threshold"]) +
                       rates_row("--sensitivity", l["at_sensitivity"]);
    size_t pos = 0;
    while ((pos = rows.find("<tr><td>", pos)) != std::string::npos) {
      rows.insert(pos + 4, "<td>" + t + "</td>");
      pos += 8;
    }
    h << rows;
  }
  h << "</table>";
  // Refer band and conformal sets.
  h << "<table><caption>Refer band and conformal sets</caption><tr><th>model</th>"
       "<th>band</th><th>referred</th><th>errors at the operating point</th>"
       "<th>errors inside the band</th><th>accuracy outside</th><th>conformal coverage</th>"
       "</tr>";
  for (const auto& m : models) {
    const auto& r = m["labels"][label]["refer"];
    std::string cov = "&ndash;";
    if (m["conformal"].is_object()) {
      const auto& c = m["conformal"];
      if (c.contains("labels"))
        cov = num(c["labels"][label]["coverage"]) +
              " (1 - &alpha; = " + num(json(1 - c["alpha"].get<double>()), 2) + ")";
      else
        cov = num(c["coverage"]) + " (all classes)";
    }
    h << "<tr><td>" << escape(model_title(m)) << "</td>";
    if (r.is_object()) {
      h << "<td>" << num(r["band"][0], 4) << "&ndash;" << num(r["band"][1], 4) << "</td><td>"
        << r["referred"] << " (" << num(json(100 * r["referred_fraction"].get<double>()), 1)
        << "%)</td><td>" << r["errors"] << "</td><td>" << r["errors_referred"] << "</td><td>"
        << num(r["accuracy_not_referred"]) << "</td>";
    } else {
      h << "<td colspan=\"5\">no refer band</td>";
    }
    h << "<td>" << cov << "</td></tr>";
  }
  h << "</table>";
}

void html_label_charts(std::ostringstream& h, const json& models, const std::string& label) {
  // Confusion matrices.
  h << "<div class=\"charts\">";
  for (const auto& m : models) {
    h << confusion_table(m["labels"][label]["operating_point"],
                         model_title(m) + ": operating point");
    h << confusion_table(m["labels"][label]["at_threshold"], model_title(m) + ": --threshold");
    h << confusion_table(m["labels"][label]["at_sensitivity"], model_title(m) + ": --sensitivity");
  }
  h << "</div>";
  // Curves.
  std::vector<Series> roc, pr;
  for (size_t i = 0; i < models.size(); ++i) {
    const auto& l = models[i]["labels"][label];
    if (!l["roc_curve"].is_object()) continue;
    roc.push_back({model_title(models[i]) + " (AUROC " + num(l["auroc"]["estimate"]) + ")",
                   doubles(l["roc_curve"]["fpr"]), doubles(l["roc_curve"]["tpr"]), colour(i)});
    pr.push_back({model_title(models[i]) + " (AP " + num(l["average_precision"]) + ")",
                  doubles(l["pr_curve"]["recall"]), doubles(l["pr_curve"]["precision"]),
                  colour(i)});
  }
  h << "<div class=\"charts\">";
  if (!roc.empty()) {
    h << chart("ROC: " + label, "1 - specificity", "sensitivity", roc, true);
    h << chart("Precision-recall: " + label, "recall", "precision", pr, false);
  }
  for (size_t i = 0; i < models.size(); ++i) {
    const auto& l = models[i]["labels"][label];
    std::vector<Series> rel;
    auto add = [&](const json& metrics, const std::string& name, const std::string& c) {
      if (!metrics.is_object()) return;
      Series s{name + " (ECE " + num(metrics["ece"]) + ")", {}, {}, c, true};
      for (const auto& b : metrics["reliability"]) {
        if (b["count"].get<size_t>() == 0) continue;
        s.x.push_back(b["confidence"].get<double>());
        s.y.push_back(b["accuracy"].get<double>());
      }
      rel.push_back(s);
    };
    add(l["raw"], "raw", "#999999");
    add(l["calibrated"], "calibrated", colour(i));
    h << chart("Reliability: " + model_title(models[i]), "mean predicted probability",
               "observed frequency", rel, true);
  }
  h << "</div>";
}

void html_comparisons(std::ostringstream& h, const json& ev) {
  if (!ev["comparisons"].empty()) {
    h << "<h2>Paired comparison</h2><p>Same images for every model. AUROC: DeLong's test for "
         "correlated ROC curves; the rest: paired bootstrap (differences a &minus; b, percentile "
         "CI).</p><table><tr><th>a</th><th>b</th><th>label</th><th>statistic</th><th>a</th>"
         "<th>b</th><th>a &minus; b</th><th>CI</th><th>p</th></tr>";
    for (const auto& c : ev["comparisons"]) {
      for (const auto& [label, v] : c["labels"].items()) {
        const std::string head = "<tr><td>" + escape(c["a"].get<std::string>()) + "</td><td>" +
                                 escape(c["b"].get<std::string>()) + "</td><td>" + escape(label) +
                                 "</td>";
        if (v["delong"].is_object()) {
          const auto& d = v["delong"];
          h << head << "<td>AUROC (DeLong)</td><td>" << num(d["auc_a"]) << "</td><td>"
            << num(d["auc_b"]) << "</td><td>" << num(d["difference"], 4) << "</td><td>se "
            << num(d["se"], 4) << ", z " << num(d["z"], 2) << "</td><td>" << num(d["p_value"], 4)
            << "</td></tr>";
        }
        for (const auto& [stat, b] : v["bootstrap"].items()) {
          if (!b.is_object()) continue;
          h << head << "<td>" << escape(stat) << " (bootstrap)</td><td>" << num(b["a"])
            << "</td><td>" << num(b["b"]) << "</td><td>" << num(b["difference"], 4) << "</td><td>"
            << num(b["lo"], 4) << "&ndash;" << num(b["hi"], 4) << "</td><td>"
            << num(b["p_value"], 4) << "</td></tr>";
        }
      }
    }
    h << "</table>";
  }
}

std::string report_html(const json& ev, const std::string& labels_csv) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>medvision "
       "evaluation</title><style>body{font-family:sans-serif;margin:24px;max-width:1200px}"
       "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;"
       "text-align:right}th{background:#f4f4f4}caption{text-align:left;font-weight:bold}"
       ".charts{display:flex;flex-wrap:wrap;gap:8px}.notice{background:#fff3cd;padding:8px;"
       "border:1px solid #e0c060}</style></head><body>";
  h << "<h1>medvision evaluation</h1><p class=\"notice\"><b>Not for diagnostic use.</b> "
       "Research use only; results must be reviewed by a qualified clinician.</p>";
  h << "<p>Labels: " << escape(labels_csv) << " &middot; " << ev["images"] << " images &middot; "
    << "activation " << escape(ev["activation"].get<std::string>()) << " &middot; bootstrap "
    << ev["options"]["bootstrap"] << " resamples, seed " << ev["options"]["seed"] << ", "
    << num(json(100 * ev["options"]["level"].get<double>()), 0) << "% CIs</p>";
  h << "<h2>Models</h2><ul>";
  for (const auto& m : ev["models"]) {
    h << "<li>" << escape(model_title(m))
      << (m["calibrated"].get<bool>() ? " (calibrated: " +
                                            escape(m["calibration_method"].is_string()
                                                       ? m["calibration_method"].get<std::string>()
                                                       : m["calibration_method"].dump()) +
                                            ")"
                                      : " (no calibration)")
      << "</li>";
  }
  h << "</ul>";
  const auto& models = ev["models"];
  for (const auto& label_json : ev["labels"]) {
    const std::string label = label_json.get<std::string>();
    html_label_tables(h, models, label);
    html_label_charts(h, models, label);
  }
  html_comparisons(h, ev);
  h << "<p>Definitions: docs/evaluate.md in the medvision sources. Generated by medvision "
    << escape(mv_version_string()) << ". Not for diagnostic use.</p></body></html>\n";
  return h.str();
}

// ---- Segmentation (--masks) ------------------------------------------------------------------

struct MaskSet {
  std::vector<std::vector<std::string>> images;  // per case, the files stacked as channels
  std::vector<std::string> masks;
};

// Splits one line of the masks CSV (no quoted commas: paths never hold commas here); trailing
// spaces and a CR are dropped.
std::vector<std::string> split_csv(const std::string& line) {
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

// A header row, then per case the image's files (one column per channel, in the model's order,
// stacked as `medvision segment --stack` does) and the mask last: `image,mask` or e.g.
// `flair,t1,mask`. Relative paths are relative to the CSV's folder.
MaskSet read_masks_csv(const std::string& csv) {
  std::ifstream f(csv);
  if (!f) throw medvision::Exception(MV_ERR_IO, csv + ": cannot open");
  std::string line;
  if (!std::getline(f, line)) throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, csv + ": empty");
  const size_t columns = split_csv(line).size();
  if (columns < 2) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               csv +
                                   ": expected a header `image,mask` (or one image column per "
                                   "channel, then the mask: `flair,t1,mask`)");
  }
  const auto base = fs::path(csv).parent_path();
  const auto resolve = [&](const std::string& cell) {
    const fs::path p(cell);
    return (p.is_absolute() ? p : base / p).string();
  };
  MaskSet set;
  size_t line_no = 1;
  while (std::getline(f, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const auto cells = split_csv(line);
    const bool blank =
        std::any_of(cells.begin(), cells.end(), [](const std::string& c) { return c.empty(); });
    if (cells.size() != columns || blank) {
      throw medvision::Exception(
          MV_ERR_INVALID_ARGUMENT,
          csv + ":" + std::to_string(line_no) + ": expected " + std::to_string(columns) +
              " paths as in the header (" +
              (columns == 2 ? std::string("image and mask")
                            : std::to_string(columns - 1) + " image channels, then the mask") +
              "), found " + std::to_string(cells.size()));
    }
    std::vector<std::string> channels;
    for (size_t c = 0; c + 1 < columns; ++c) channels.push_back(resolve(cells[c]));
    set.images.push_back(std::move(channels));
    set.masks.push_back(resolve(cells.back()));
  }
  if (set.images.empty()) throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, csv + ": no rows");
  return set;
}

// The label-map value of each label as mv_result_mask() gives them: softmax packages label v is
// value v (0 background), sigmoid packages label v is value v + 1. DICOM SEG references are
// mapped by SegmentLabel onto these.
medvision::LabelMapOptions label_map_options(const medvision::Model& model,
                                             mv_label_overlap overlap) {
  medvision::LabelMapOptions o;
  o.overlap = overlap;
  const auto labels = model.labels();
  const bool softmax = model.activation() == MV_ACTIVATION_SOFTMAX;
  for (size_t i = softmax ? 1 : 0; i < labels.size(); ++i) {
    o.labels.push_back(labels[i]);
    o.values.push_back(static_cast<int32_t>(softmax ? i : i + 1));
  }
  return o;
}

// One case's image: a file, or several stacked as channels (`medvision segment --stack`).
medvision::Image load_case_image(const std::vector<std::string>& files,
                                 const medvision::LoadOptions& lo) {
  if (files.size() == 1) return medvision::Image::load(files.front(), lo);
  std::vector<medvision::Image> parts;
  for (const auto& f : files) parts.push_back(medvision::Image::load(f, lo));
  std::vector<const medvision::Image*> ptrs;
  for (const auto& p : parts) ptrs.push_back(&p);
  return medvision::Image::stack(ptrs);
}

// "a.nii.gz" or "a.nii.gz+b.nii.gz": the case's name in the JSON and messages.
std::string case_name(const std::vector<std::string>& files) {
  std::string out;
  for (const auto& f : files) out += (out.empty() ? "" : "+") + f;
  return out;
}

std::string ci_cell(const json& m, int digits = 3) {
  if (!m.is_object() || !m["mean"].is_number()) return "&ndash;";
  return num(m["mean"], digits) + " [" + num(m["lo"], digits) + ", " + num(m["hi"], digits) + "]";
}

std::string ci_plain(const json& m, int digits = 3) {
  if (!m.is_object() || !m["mean"].is_number()) return "n/a";
  return plain(m["mean"], digits) + " [" + plain(m["lo"], digits) + ", " + plain(m["hi"], digits) +
         "]";
}

std::string segmentation_html(const json& ev, const std::string& masks_csv) {
  const auto& u = ev["units"];
  const std::string dist = u["distance"].get<std::string>(), vol = u["volume"].get<std::string>();
  std::ostringstream h;
  h << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>medvision "
       "segmentation evaluation</title><style>body{font-family:sans-serif;margin:24px;"
       "max-width:1200px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;"
       "padding:3px 8px;text-align:right}th{background:#f4f4f4}caption{text-align:left;"
       "font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:8px}.notice{background:#fff3cd;"
       "padding:8px;border:1px solid #e0c060}</style></head><body>";
  h << "<h1>medvision segmentation evaluation</h1><p class=\"notice\"><b>Not for diagnostic "
       "use.</b> Research use only; results must be reviewed by a qualified clinician.</p>";
  h << "<p>Masks: " << escape(masks_csv) << " &middot; " << ev["images"] << " cases &middot; "
    << "bootstrap " << ev["options"]["bootstrap"] << " resamples over cases, seed "
    << ev["options"]["seed"] << ", " << num(json(100 * ev["options"]["level"].get<double>()), 0)
    << "% CIs &middot; distances in " << escape(dist) << ", sizes in " << escape(vol)
    << (u["spacing_known"].get<bool>() ? "" : " (pixel spacing unknown: not mm)") << "</p>";
  h << "<h2>Models</h2><ul>";
  for (const auto& m : ev["models"]) {
    h << "<li>" << escape(model_title(m)) << ": mean Dice over regions " << num(m["mean_dice"])
      << "</li>";
  }
  h << "</ul>";
  const auto& models = ev["models"];
  for (const auto& rj : ev["regions"]) {
    const std::string region = rj.get<std::string>();
    h << "<h2>" << escape(region) << "</h2><table><tr><th>model</th><th>Dice mean [CI]</th>"
      << "<th>Dice median</th><th>HD95 (" << escape(dist) << ") mean [CI]</th>"
      << "<th>HD95 undefined</th><th>volume error (" << escape(vol) << ") mean [CI]</th>"
      << "<th>|volume error| mean [CI]</th><th>relative volume error mean [CI]</th>"
      << "<th>empty reference / prediction</th></tr>";
    for (const auto& m : models) {
      const auto& r = m["regions"][region];
      h << "<tr><td>" << escape(model_title(m)) << "</td><td>" << ci_cell(r["dice"]) << "</td><td>"
        << num(r["dice"]["median"]) << "</td><td>" << ci_cell(r["hd95"], 2) << "</td><td>"
        << r["hd95"]["undefined"] << "</td><td>" << ci_cell(r["volume_error"], 2) << "</td><td>"
        << ci_cell(r["absolute_volume_error"], 2) << "</td><td>"
        << ci_cell(r["relative_volume_error"]) << "</td><td>" << r["reference_empty"] << " / "
        << r["prediction_empty"] << "</td></tr>";
    }
    h << "</table>";
    // Per-case Dice, sorted, one series per model: where the low tail lies.
    std::vector<Series> dice;
    for (size_t k = 0; k < models.size(); ++k) {
      std::vector<double> d;
      for (const auto& c : ev["cases"]) d.push_back(c["models"][k][region]["dice"].get<double>());
      std::sort(d.begin(), d.end());
      Series s{model_title(models[k]), {}, d, colour(k), true};
      for (size_t i = 0; i < d.size(); ++i)
        s.x.push_back((static_cast<double>(i) + 0.5) / static_cast<double>(d.size()));
      dice.push_back(s);
    }
    h << "<div class=\"charts\">"
      << chart("Dice per case: " + region, "cases (sorted, fraction)", "Dice", dice, false)
      << "</div>";
  }
  if (!ev["comparisons"].empty()) {
    h << "<h2>Paired comparison</h2><p>Same cases for every model: paired bootstrap over cases "
         "of the mean difference a &minus; b (percentile CI; two-sided bootstrap p-value). HD95 "
         "over the cases where both are defined.</p><table><tr><th>a</th><th>b</th>"
         "<th>region</th><th>statistic</th><th>a</th><th>b</th><th>a &minus; b</th><th>CI</th>"
         "<th>p</th><th>cases</th></tr>";
    for (const auto& c : ev["comparisons"]) {
      for (const auto& [region, v] : c["regions"].items()) {
        for (const auto& [stat, b] : v.items()) {
          if (!b.is_object()) continue;
          h << "<tr><td>" << escape(c["a"].get<std::string>()) << "</td><td>"
            << escape(c["b"].get<std::string>()) << "</td><td>" << escape(region) << "</td><td>"
            << escape(stat) << "</td><td>" << num(b["a"]) << "</td><td>" << num(b["b"])
            << "</td><td>" << num(b["difference"], 4) << "</td><td>" << num(b["lo"], 4) << "&ndash;"
            << num(b["hi"], 4) << "</td><td>" << num(b["p_value"], 4) << "</td><td>" << b["cases"]
            << "</td></tr>";
        }
      }
    }
    h << "</table>";
  }
  h << "<p>Definitions: docs/evaluate.md (Segmentation) in the medvision sources. Generated by "
       "medvision "
    << escape(mv_version_string()) << ". Not for diagnostic use.</p></body></html>\n";
  return h.str();
}

void write_outputs(const json& ev, const std::string& out, const std::string& html) {
  std::error_code ec;
  fs::create_directories(out, ec);
  const fs::path json_path = fs::path(out) / "evaluation.json";
  const fs::path html_path = fs::path(out) / "report.html";
  {
    std::ofstream f(json_path);
    f << ev.dump(2) << "\n";
    if (!f) throw medvision::Exception(MV_ERR_IO, json_path.string() + ": cannot write");
  }
  {
    std::ofstream f(html_path);
    f << html;
    if (!f) throw medvision::Exception(MV_ERR_IO, html_path.string() + ": cannot write");
  }
}

int run_evaluate_segmentation(const EvaluateArgs& a) {
  // Checked before any model or image is read; the names are the library's (mv_<enum>_parse).
  const auto overlap = parse_option("--seg-overlap", a.seg_overlap, mv_label_overlap_name);
  medvision::ModelOptions mo;
  mo.set_device(a.device);
  std::vector<medvision::Model> models;
  std::vector<const medvision::Model*> mp;
  for (const auto& name : a.models) {
    models.push_back(medvision::Model::load(name, mo));
    if (models.back().task() != MV_TASK_SEGMENTATION) {
      throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                 name +
                                     ": --masks takes segmentation models (--labels for "
                                     "classification)");
    }
  }
  for (const auto& m : models) mp.push_back(&m);
  medvision::EvaluateOptions eo;
  eo.set_bootstrap(a.bootstrap).set_seed(a.seed);
  // Checks that the models agree before any image is read.
  medvision::SegmentationEvaluator evaluator(mp, eo);
  const MaskSet set = read_masks_csv(a.masks);
  medvision::LoadOptions lo;
  if (!a.spacing.empty()) {
    lo.set_pixel_spacing(a.spacing[0], a.spacing.size() > 1 ? a.spacing[1] : a.spacing[0]);
  }
  const size_t n = set.images.size();
  Progress progress(n * models.size());
  const medvision::LabelMapOptions map_options = label_map_options(models.front(), overlap);
  for (size_t i = 0; i < n; ++i) {
    const std::string name = case_name(set.images[i]);
    const auto image = load_case_image(set.images[i], lo);
    const auto reference = medvision::load_label_map(set.masks[i], image, map_options);
    std::vector<medvision::Result> results;
    std::vector<medvision::Image> masks;
    std::vector<const medvision::Image*> mptr;
    for (size_t k = 0; k < models.size(); ++k) {
      results.push_back(models[k].segment(image));
      masks.push_back(results.back().mask());
      progress.update(i * models.size() + k + 1);
    }
    for (const auto& m : masks) mptr.push_back(&m);
    try {
      evaluator.add(name, reference, mptr);
    } catch (const medvision::Exception& e) {
      throw medvision::Exception(e.status(), set.masks[i] + ": " + e.what());
    }
  }
  json ev = json::parse(evaluator.finish());
  ev["masks_csv"] = a.masks;
  write_outputs(ev, a.out, segmentation_html(ev, a.masks));
  if (a.json) {
    std::printf("%s\n", ev.dump().c_str());
    return 0;
  }
  const auto& u = ev["units"];
  std::printf("evaluated %zu segmentation model(s) on %zu cases (%s)\n", models.size(), n,
              a.masks.c_str());
  if (!u["spacing_known"].get<bool>()) {
    std::printf("pixel spacing unknown: HD95 in %s, sizes in %s (give --spacing COL,ROW mm)\n",
                u["distance"].get<std::string>().c_str(), u["volume"].get<std::string>().c_str());
  }
  for (const auto& m : ev["models"]) {
    std::printf("%s  mean Dice %s\n", model_title(m).c_str(), plain(m["mean_dice"]).c_str());
    std::printf("  %-14s %-24s %-26s %s\n", "region", "Dice [95% CI]",
                ("HD95 " + u["distance"].get<std::string>()).c_str(),
                ("volume error " + u["volume"].get<std::string>()).c_str());
    for (const auto& name : ev["regions"]) {  // the package's order, not alphabetical
      const std::string region = name.get<std::string>();
      const auto& r = m["regions"][region];
      std::printf("  %-14s %-24s %-26s %s\n", region.c_str(), ci_plain(r["dice"]).c_str(),
                  ci_plain(r["hd95"], 2).c_str(), ci_plain(r["volume_error"], 1).c_str());
    }
  }
  for (const auto& c : ev["comparisons"]) {
    for (const auto& name : ev["regions"]) {
      const std::string region = name.get<std::string>();
      const auto& v = c["regions"][region];
      if (!v["dice"].is_object()) continue;
      std::printf("%s vs %s, %s: Dice difference %s [%s, %s] (paired bootstrap p %s)\n",
                  c["a"].get<std::string>().c_str(), c["b"].get<std::string>().c_str(),
                  region.c_str(), plain(v["dice"]["difference"], 4).c_str(),
                  plain(v["dice"]["lo"], 4).c_str(), plain(v["dice"]["hi"], 4).c_str(),
                  plain(v["dice"]["p_value"], 4).c_str());
    }
  }
  std::printf("wrote %s and %s\nNot for diagnostic use.\n",
              (fs::path(a.out) / "evaluation.json").string().c_str(),
              (fs::path(a.out) / "report.html").string().c_str());
  return 0;
}

}  // namespace

void add_evaluate_command(CLI::App& app, EvaluateArgs& a) {
  auto* c = app.add_subcommand("evaluate",
                               "Evaluate one or more classification models on a labelled test set");
  c->add_option("-m,--model", a.models, "Model package name or folder (repeat to compare)")
      ->required();
  auto* labels = c->add_option(
      "--labels", a.labels,
      "CSV as for calibrate: path,label (names, '|'-separated) or path,<label>,... (0/1)");
  auto* masks =
      c->add_option("--masks", a.masks,
                    "Segmentation: CSV image,mask (or image channels,...,mask); masks are "
                    "label maps of the package's label indices or DICOM SEGs; Dice, "
                    "HD95, volume error");
  labels->excludes(masks);
  c->add_option("--spacing", a.spacing,
                "With --masks: pixel spacing in mm, COL[,ROW], for images that give none")
      ->delimiter(',')
      ->expected(1, 2)
      ->check(CLI::PositiveNumber);
  c->add_option("--seg-overlap", a.seg_overlap,
                "With --masks: where segments of a DICOM SEG reference overlap: error (refuse "
                "the SEG), lowest (the lowest label-map value wins) or highest (the highest "
                "wins)")
      ->needs(masks)
      ->default_val(medvision::to_string(medvision::LabelMapOptions().overlap));
  c->add_option("-o,--out", a.out, "Folder for evaluation.json and report.html")
      ->default_val("evaluation");
  auto* sens = c->add_option("--sensitivity", a.sensitivity,
                             "Also decide at the highest threshold reaching this sensitivity");
  auto* thr = c->add_option("--threshold", a.threshold, "Also decide at this threshold");
  sens->excludes(thr);
  const medvision::EvaluateOptions d;  // the library's defaults (mv_evaluate_options_init())
  c->add_option("--bootstrap", a.bootstrap, "Bootstrap resamples")->default_val(d.bootstrap());
  c->add_option("--seed", a.seed, "Bootstrap seed")->default_val(d.seed());
  c->add_option("--device", a.device, kDeviceHelp);
  c->add_option("--batch", a.batch, "Images per forward pass")->default_val(16);
  c->add_flag("--json", a.json, "Print evaluation.json to stdout instead of a summary");
  a.command = c;
}

// The terminal summary of a classification evaluation (the full story is in the two files).
void print_summary(const json& ev, size_t n_models, size_t n, const std::string& labels_csv) {
  std::printf("evaluated %zu model(s) on %zu images (%s)\n", n_models, n, labels_csv.c_str());
  for (const auto& m : ev["models"]) {
    std::printf("%s%s\n", model_title(m).c_str(),
                m["calibrated"].get<bool>() ? "" : " (no calibration)");
    for (const auto& [label, l] : m["labels"].items()) {
      std::printf("  %-20s AUROC %s [%s, %s]  ECE raw %s cal %s  Brier %s\n", label.c_str(),
                  l["auroc"].is_object() ? plain(l["auroc"]["estimate"]).c_str() : "n/a",
                  l["auroc"].is_object() ? plain(l["auroc"]["lo"]).c_str() : "-",
                  l["auroc"].is_object() ? plain(l["auroc"]["hi"]).c_str() : "-",
                  plain(l["raw"]["ece"]).c_str(),
                  l["calibrated"].is_object() ? plain(l["calibrated"]["ece"]).c_str() : "-",
                  plain(l["raw"]["brier"]).c_str());
      const auto& op = l["operating_point"];
      if (op.is_object()) {
        std::printf("  %-20s at %s: sensitivity %s specificity %s PPV %s NPV %s accuracy %s\n", "",
                    plain(op["threshold"], 4).c_str(), plain(op["sensitivity"]).c_str(),
                    plain(op["specificity"]).c_str(), plain(op["ppv"]).c_str(),
                    plain(op["npv"]).c_str(), plain(op["accuracy"]).c_str());
      }
      const auto& r = l["refer"];
      if (r.is_object()) {
        std::printf("  %-20s referred %s, %s of the %s errors inside the band\n", "",
                    r["referred"].dump().c_str(), r["errors_referred"].dump().c_str(),
                    r["errors"].dump().c_str());
      }
    }
  }
  for (const auto& c : ev["comparisons"]) {
    for (const auto& [label, v] : c["labels"].items()) {
      if (!v["delong"].is_object()) continue;
      std::printf("%s vs %s, %s: AUROC difference %s (DeLong z %s, p %s)\n",
                  c["a"].get<std::string>().c_str(), c["b"].get<std::string>().c_str(),
                  label.c_str(), plain(v["delong"]["difference"], 4).c_str(),
                  plain(v["delong"]["z"], 2).c_str(), plain(v["delong"]["p_value"], 4).c_str());
    }
  }
}

int run_evaluate(const EvaluateArgs& a) {
  if (!a.masks.empty()) return run_evaluate_segmentation(a);
  if (a.labels.empty()) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                               "evaluate: --labels (classification) or --masks (segmentation) is "
                               "needed");
  }
  // Checked before any image is read: a bad option should not cost a pass over the data.
  const bool threshold = a.command->count("--threshold") > 0;
  const bool sensitivity = a.command->count("--sensitivity") > 0;
  if (threshold && !(a.threshold >= 0.0 && a.threshold <= 1.0)) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, "--threshold: a probability in [0, 1]");
  }
  if (sensitivity && !(a.sensitivity > 0.0 && a.sensitivity <= 1.0)) {
    throw medvision::Exception(MV_ERR_INVALID_ARGUMENT, "--sensitivity: a rate in (0, 1]");
  }
  medvision::ModelOptions mo;
  mo.set_device(a.device);
  std::vector<medvision::Model> models;
  for (const auto& name : a.models) {
    models.push_back(medvision::Model::load(name, mo));
    // Checked before any image is read: a wrong model should not cost a pass over the data.
    if (json::parse(models.back().manifest_json()).value("task", "") != "classification") {
      throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                 name +
                                     ": --labels takes classification models (--masks for "
                                     "segmentation)");
    }
    if (models.back().labels() != models.front().labels()) {
      throw medvision::Exception(MV_ERR_INVALID_ARGUMENT,
                                 name + " and " + a.models.front() + " differ in their labels");
    }
  }
  const json manifest = json::parse(models.front().manifest_json());
  const bool softmax = manifest["output"].value("activation", "sigmoid") == "softmax";
  const LabelledSet set = read_labels_csv(a.labels, models.front().labels(), softmax);

  // Raw outputs of every model, one progress bar over all of them.
  const size_t n = set.paths.size();
  Progress progress(n * models.size());
  std::vector<std::vector<float>> logits(models.size());
  const size_t batch = static_cast<size_t>(std::max(1, a.batch));
  for (size_t k = 0; k < models.size(); ++k) {
    const size_t labels = models[k].labels().size();
    for (size_t start = 0; start < n; start += batch) {
      const size_t end = std::min(n, start + batch);
      std::vector<medvision::Image> images;
      for (size_t i = start; i < end; ++i) images.push_back(medvision::Image::load(set.paths[i]));
      std::vector<const medvision::Image*> ptrs;
      for (const auto& im : images) ptrs.push_back(&im);
      for (const auto& r : models[k].run_batch(ptrs)) {
        for (size_t j = 0; j < labels; ++j) logits[k].push_back(mv_result_logit(r.get(), j));
      }
      progress.update(k * n + end);
    }
  }
  std::vector<const medvision::Model*> mp;
  std::vector<const float*> lp;
  for (size_t k = 0; k < models.size(); ++k) {
    mp.push_back(&models[k]);
    lp.push_back(logits[k].data());
  }
  medvision::EvaluateOptions eo;
  eo.set_bootstrap(a.bootstrap).set_seed(a.seed);
  if (threshold) eo.set_threshold(a.threshold);
  if (sensitivity) eo.set_sensitivity(a.sensitivity);
  json ev = json::parse(medvision::evaluate(mp, lp, set.labels.data(), n, eo));
  ev["labels_csv"] = a.labels;

  std::error_code ec;
  fs::create_directories(a.out, ec);
  const fs::path json_path = fs::path(a.out) / "evaluation.json";
  const fs::path html_path = fs::path(a.out) / "report.html";
  {
    std::ofstream f(json_path);
    f << ev.dump(2) << "\n";
    if (!f) throw medvision::Exception(MV_ERR_IO, json_path.string() + ": cannot write");
  }
  {
    std::ofstream f(html_path);
    f << report_html(ev, a.labels);
    if (!f) throw medvision::Exception(MV_ERR_IO, html_path.string() + ": cannot write");
  }
  if (a.json) {
    std::printf("%s\n", ev.dump().c_str());
    return 0;
  }
  print_summary(ev, models.size(), n, a.labels);
  std::printf("wrote %s and %s\nNot for diagnostic use.\n", json_path.string().c_str(),
              html_path.string().c_str());
  return 0;
}

}  // namespace mvcli
