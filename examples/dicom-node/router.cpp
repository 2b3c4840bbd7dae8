// Rules -> jobs (see router.hpp).

#include "router.hpp"

#include <algorithm>
#include <map>
#include <regex>
#include <set>

namespace mvnode {

namespace {

bool in_list(const std::vector<std::string>& list, const std::string& value) {
  if (list.empty()) return true;
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
  return std::any_of(list.begin(), list.end(), [&](std::string x) {
    std::transform(x.begin(), x.end(), x.begin(), [](unsigned char c) { return std::toupper(c); });
    return x == v;
  });
}

// "(?i)" at the start makes the pattern case-insensitive (ECMAScript has no inline flags).
std::regex make_regex(const std::string& pattern) {
  if (pattern.rfind("(?i)", 0) == 0) {
    return std::regex(pattern.substr(4), std::regex::ECMAScript | std::regex::icase);
  }
  return std::regex(pattern, std::regex::ECMAScript);
}

// Images only: the node's own kind of output (SEG, SR, ...) is never a model input.
bool is_image(const Instance& i) {
  static const char* const kNotImages[] = {
      "1.2.840.10008.5.1.4.1.1.66.",   // segmentation, registration, ...
      "1.2.840.10008.5.1.4.1.1.88.",   // structured reports
      "1.2.840.10008.5.1.4.1.1.104.",  // encapsulated documents
      "1.2.840.10008.5.1.4.1.1.11.",   // presentation states
      "1.2.840.10008.5.1.4.1.1.481.",  // RT objects
  };
  return std::none_of(std::begin(kNotImages), std::end(kNotImages),
                      [&](const char* p) { return i.sop_class.rfind(p, 0) == 0; });
}

std::vector<Instance> sorted(std::vector<Instance> v) {
  std::sort(v.begin(), v.end(), [](const Instance& a, const Instance& b) {
    return a.instance_number != b.instance_number ? a.instance_number < b.instance_number
                                                  : a.sop_uid < b.sop_uid;
  });
  return v;
}

}  // namespace

std::vector<std::string> Job::sop_uids() const {
  std::vector<std::string> out;
  for (const auto& c : channels) {
    for (const auto& i : c) out.push_back(i.sop_uid);
  }
  return out;
}

std::vector<Job> route(const std::vector<Rule>& rules, const std::vector<Instance>& instances,
                       const ModelNdim& model_ndim) {
  std::vector<Job> jobs;
  std::set<std::string> seen;  // model + input, so that two rules do not run the same job twice
  auto push = [&](Job j) {
    if (seen.insert(j.model + "|" + j.input).second) jobs.push_back(std::move(j));
  };
  for (const Rule& rule : rules) {
    // The matching instances, by series (std::map: a stable order).
    std::map<std::string, std::vector<Instance>> series;
    for (const auto& i : instances) {
      if (is_image(i) && in_list(rule.modality, i.modality) &&
          in_list(rule.body_part, i.body_part)) {
        series[i.series_uid].push_back(i);
      }
    }
    if (series.empty()) continue;
    if (!rule.series.empty()) {
      Job job;
      std::set<std::string> used;
      for (const auto& [name, pattern] : rule.series) {
        const std::regex re = make_regex(pattern);
        for (const auto& [uid, members] : series) {
          if (used.count(uid)) continue;
          if (std::regex_search(members.front().series_description, re)) {
            used.insert(uid);
            job.channel_names.push_back(name);
            job.channels.push_back(sorted(members));
            job.input += (job.input.empty() ? "" : "+") + uid;
            break;
          }
        }
      }
      if (job.channels.size() != rule.series.size()) continue;  // a named series is missing
      for (const auto& m : rule.models) {
        Job j = job;
        j.model = m;
        push(std::move(j));
      }
      continue;
    }
    for (const auto& m : rule.models) {
      const int ndim = model_ndim(m);
      for (const auto& [uid, members] : series) {
        if (ndim == 3) {
          Job j;
          j.model = m;
          j.channel_names = {""};
          j.channels = {sorted(members)};
          j.input = uid;
          push(std::move(j));
        } else {
          for (const auto& i : members) {
            Job j;
            j.model = m;
            j.channel_names = {""};
            j.channels = {{i}};
            j.input = i.sop_uid;
            push(std::move(j));
          }
        }
      }
    }
  }
  return jobs;
}

}  // namespace mvnode
