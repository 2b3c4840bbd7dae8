// The durable study queue (see study_queue.hpp for the layout on disk).

#include "study_queue.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "files.hpp"

namespace mvnode {

namespace fs = std::filesystem;
using nlohmann::json;

std::string study_key(const std::string& study_uid) {
  const bool plain = !study_uid.empty() && study_uid.size() <= 64 &&
                     std::all_of(study_uid.begin(), study_uid.end(),
                                 [](char c) { return (c >= '0' && c <= '9') || c == '.'; }) &&
                     study_uid.front() != '.';
  if (plain) return study_uid;
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across runs and builds
  for (unsigned char c : study_uid) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "x%016" PRIx64, h);
  return buf;
}

namespace {

json to_json(const Instance& i) {
  return {{"sop_class", i.sop_class},
          {"series_uid", i.series_uid},
          {"modality", i.modality},
          {"body_part", i.body_part},
          {"series_description", i.series_description},
          {"instance_number", i.instance_number},
          {"file", i.file.filename().string()}};
}

const char* state_name(bool running, bool pending, bool unsent, bool gave_up) {
  if (running) return "analysing";
  if (pending) return "waiting";
  if (unsent && gave_up) return "send-failed";
  if (unsent) return "sending";
  return "done";
}

}  // namespace

StudyQueue::StudyQueue(fs::path data_dir, RetryPolicy retry, Log& log)
    : data_dir_(std::move(data_dir)), retry_(retry), log_(log) {
  fs::create_directories(data_dir_ / "studies");
  fs::create_directories(data_dir_ / "incoming");
  load();
}

fs::path StudyQueue::study_dir(const std::string& key) const { return data_dir_ / "studies" / key; }

bool StudyQueue::has_pending(const Study& s) {
  for (const auto& [uid, inst] : s.instances) {
    if (s.analysed.count(uid) == 0) return true;
  }
  return false;
}

void StudyQueue::load() {
  // Files left in incoming/ were never acknowledged to the sender: it will send them again.
  for (const auto& e : fs::directory_iterator(data_dir_ / "incoming")) fs::remove(e.path());
  size_t pending = 0, unsent = 0;
  for (const auto& e : fs::directory_iterator(data_dir_ / "studies")) {
    if (!e.is_directory()) continue;
    const fs::path state = e.path() / "state.json";
    if (!fs::exists(state)) continue;
    Study s;
    try {
      std::ifstream in(state);
      const json j = json::parse(in);
      s.key = e.path().filename().string();
      s.study_uid = j.at("study_uid").get<std::string>();
      s.last_received = j.at("last_received").get<double>();
      for (const auto& [uid, v] : j.at("instances").items()) {
        Instance i;
        i.sop_uid = uid;
        i.sop_class = v.at("sop_class").get<std::string>();
        i.series_uid = v.at("series_uid").get<std::string>();
        i.modality = v.at("modality").get<std::string>();
        i.body_part = v.at("body_part").get<std::string>();
        i.series_description = v.at("series_description").get<std::string>();
        i.instance_number = v.at("instance_number").get<int64_t>();
        i.file = e.path() / "in" / v.at("file").get<std::string>();
        s.instances.emplace(uid, std::move(i));
      }
      for (const auto& a : j.at("analysed")) s.analysed.insert(a.get<std::string>());
      std::set<std::string> kept;
      for (const auto& o : j.at("outputs")) {
        Output out{o.at("file").get<std::string>(), o.at("sop_uid").get<std::string>(),
                   o.at("sent").get<bool>()};
        kept.insert(out.file);
        own_outputs_.insert(out.sop_uid);
        s.outputs.push_back(std::move(out));
      }
      const json& snd = j.at("send");
      s.send_attempts = snd.at("attempts").get<int>();
      s.next_attempt = snd.at("next_attempt").get<double>();
      s.first_failure = snd.at("first_failure").get<double>();
      s.gave_up = snd.at("gave_up").get<bool>();
      s.send_error = snd.at("error").get<std::string>();
      s.last_error = j.at("last_error").get<std::string>();
      s.analyses = j.at("analyses").get<int>();
      // Results written by an analysis that a crash interrupted are not recorded: drop them,
      // the analysis runs again.
      const fs::path out_dir = e.path() / "out";
      if (fs::exists(out_dir)) {
        for (const auto& f : fs::directory_iterator(out_dir)) {
          if (kept.count(f.path().filename().string()) == 0) fs::remove_all(f.path());
        }
      }
    } catch (const std::exception& ex) {
      log_.error("study state " + state.string() + " unreadable (" + ex.what() +
                 "); the study is skipped");
      continue;
    }
    if (has_pending(s)) ++pending;
    if (std::any_of(s.outputs.begin(), s.outputs.end(), [](const Output& o) { return !o.sent; }) &&
        !s.gave_up) {
      ++unsent;
      s.next_attempt = 0;  // try at once after a restart
    }
    studies_.emplace(s.key, std::move(s));
  }
  log_.info("queue: " + std::to_string(studies_.size()) + " studies in " + data_dir_.string() +
            " (" + std::to_string(pending) + " to analyse, " + std::to_string(unsent) +
            " with results to send)");
}

void StudyQueue::save(const Study& s) const {
  json inst = json::object();
  for (const auto& [uid, i] : s.instances) inst[uid] = to_json(i);
  json outs = json::array();
  size_t unsent = 0;
  for (const auto& o : s.outputs) {
    outs.push_back({{"file", o.file}, {"sop_uid", o.sop_uid}, {"sent", o.sent}});
    if (!o.sent) ++unsent;
  }
  const json j = {{"study_uid", s.study_uid},
                  {"state", state_name(s.running, has_pending(s), unsent > 0, s.gave_up)},
                  {"last_received", s.last_received},
                  {"instances", inst},
                  {"analysed", s.analysed},
                  {"outputs", outs},
                  {"send",
                   {{"attempts", s.send_attempts},
                    {"next_attempt", s.next_attempt},
                    {"first_failure", s.first_failure},
                    {"gave_up", s.gave_up},
                    {"error", s.send_error}}},
                  {"last_error", s.last_error},
                  {"analyses", s.analyses}};
  // UIDs come from received files and errors may quote them: never throw on invalid UTF-8.
  write_file_atomic(study_dir(s.key) / "state.json",
                    j.dump(1, ' ', false, json::error_handler_t::replace));
}

void StudyQueue::append_job(const JobRecord& r) const {
  const json j = {{"time", now_seconds()},
                  {"study_uid", r.study_uid},
                  {"model", r.model},
                  {"input", r.input},
                  {"ok", r.ok},
                  {"outputs", r.outputs},
                  {"seconds", r.seconds},
                  {"error", r.error}};
  std::ofstream out(data_dir_ / "jobs.jsonl", std::ios::app);
  out << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
}

StudyQueue::Added StudyQueue::add(Instance info, const std::string& study_uid,
                                  const fs::path& received) {
  const std::string key = study_key(study_uid);
  const fs::path in_dir = study_dir(key) / "in";
  fs::create_directories(in_dir);
  const std::lock_guard<std::mutex> lock(mutex_);
  if (own_outputs_.count(info.sop_uid)) {
    fs::remove(received);
    return Added::kOwnOutput;
  }
  auto it = studies_.find(key);
  if (it == studies_.end()) {
    Study s;
    s.key = key;
    s.study_uid = study_uid;
    it = studies_.emplace(key, std::move(s)).first;
  }
  Study& s = it->second;
  // The file name is the SOP Instance UID when it is a plain UID; the same instance sent again
  // replaces its copy.
  const std::string name = study_key(info.sop_uid) + ".dcm";
  info.file = in_dir / name;
  fs::rename(received, info.file);
  fsync_path(in_dir);
  const bool known = s.instances.count(info.sop_uid) > 0;
  s.instances[info.sop_uid] = info;
  s.last_received = now_seconds();
  save(s);
  changed_.notify_all();
  return known ? Added::kKnown : Added::kNew;
}

bool StudyQueue::is_own_output(const std::string& sop_uid) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return own_outputs_.count(sop_uid) > 0;
}

std::optional<AnalysisWork> StudyQueue::claim_analysis(double idle_seconds) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const double now = now_seconds();
  for (auto& [key, s] : studies_) {
    if (s.running || !has_pending(s) || now - s.last_received < idle_seconds) continue;
    s.running = true;
    save(s);
    AnalysisWork w;
    w.key = key;
    w.study_uid = s.study_uid;
    w.out_dir = study_dir(key) / "out";
    fs::create_directories(w.out_dir);
    for (const auto& [uid, i] : s.instances) w.instances.push_back(i);
    w.analysed = s.analysed;
    return w;
  }
  return std::nullopt;
}

void StudyQueue::finish_analysis(const std::string& key, const std::vector<std::string>& analysed,
                                 const std::vector<Output>& outputs,
                                 const std::vector<JobRecord>& jobs) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Study& s = studies_.at(key);
  s.running = false;
  s.analysed.insert(analysed.begin(), analysed.end());
  for (const auto& o : outputs) {
    own_outputs_.insert(o.sop_uid);
    s.outputs.push_back(o);
  }
  if (!outputs.empty()) {
    s.send_attempts = 0;
    s.next_attempt = 0;
    s.first_failure = 0;
    s.gave_up = false;
    s.send_error.clear();
  }
  ++s.analyses;
  s.last_error.clear();
  for (const auto& j : jobs) {
    append_job(j);
    if (!j.ok) s.last_error = j.model + ": " + j.error;
  }
  save(s);
  changed_.notify_all();
}

std::optional<SendWork> StudyQueue::claim_send() {
  const std::lock_guard<std::mutex> lock(mutex_);
  const double now = now_seconds();
  for (auto& [key, s] : studies_) {
    if (s.gave_up || s.next_attempt > now) continue;
    SendWork w;
    for (const auto& o : s.outputs) {
      if (!o.sent) w.files.push_back(study_dir(key) / "out" / o.file);
    }
    if (w.files.empty()) continue;
    w.key = key;
    w.study_uid = s.study_uid;
    return w;
  }
  return std::nullopt;
}

void StudyQueue::send_succeeded(const std::string& key, const std::vector<fs::path>& sent) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Study& s = studies_.at(key);
  for (auto& o : s.outputs) {
    for (const auto& p : sent) {
      if (p.filename() == o.file) o.sent = true;
    }
  }
  s.send_attempts = 0;
  s.next_attempt = 0;
  s.first_failure = 0;
  s.send_error.clear();
  save(s);
}

void StudyQueue::send_failed(const std::string& key, const std::string& reason) {
  const std::lock_guard<std::mutex> lock(mutex_);
  Study& s = studies_.at(key);
  const double now = now_seconds();
  if (s.send_attempts == 0) s.first_failure = now;
  ++s.send_attempts;
  s.send_error = reason;
  if (now - s.first_failure >= retry_.give_up_seconds) {
    s.gave_up = true;
    log_.error("study " + s.study_uid + ": giving up sending results after " +
               std::to_string(s.send_attempts) + " attempts over " +
               std::to_string(static_cast<int>(now - s.first_failure)) + " s: " + reason);
  } else {
    const double delay =
        std::min(retry_.max_seconds,
                 retry_.initial_seconds * std::pow(2.0, std::min(s.send_attempts - 1, 30)));
    s.next_attempt = now + delay;
    log_.warn("study " + s.study_uid + ": sending failed (attempt " +
              std::to_string(s.send_attempts) + "): " + reason + "; retrying in " +
              std::to_string(delay).substr(0, std::to_string(delay).find('.') + 2) + " s");
  }
  save(s);
}

void StudyQueue::wait(double seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, std::chrono::duration<double>(seconds));
}

void StudyQueue::wake_all() {
  const std::lock_guard<std::mutex> lock(mutex_);
  changed_.notify_all();
}

std::string StudyQueue::status_text(const fs::path& data_dir, size_t last_jobs) {
  std::ostringstream out;
  std::vector<json> states;
  const fs::path studies = data_dir / "studies";
  std::error_code ec;
  if (fs::is_directory(studies, ec)) {
    for (const auto& e : fs::directory_iterator(studies)) {
      std::ifstream in(e.path() / "state.json");
      if (!in) continue;
      try {
        states.push_back(json::parse(in));
      } catch (const json::exception&) {
        out << "unreadable: " << (e.path() / "state.json").string() << "\n";
      }
    }
  }
  std::sort(states.begin(), states.end(), [](const json& a, const json& b) {
    return a.value("last_received", 0.0) > b.value("last_received", 0.0);
  });
  out << "queue (" << data_dir.string() << "): " << states.size() << " studies\n";
  for (const auto& s : states) {
    size_t sent = 0;
    for (const auto& o : s["outputs"]) sent += o.value("sent", false) ? 1 : 0;
    out << "  " << s.value("state", "?") << "  study " << s.value("study_uid", "?") << "  "
        << s["instances"].size() << " instances, " << s["analysed"].size() << " analysed, " << sent
        << "/" << s["outputs"].size() << " results sent";
    const auto& snd = s["send"];
    if (snd.value("attempts", 0) > 0) {
      out << ", " << snd.value("attempts", 0) << " failed send attempts (" << snd.value("error", "")
          << ")";
    }
    if (!s.value("last_error", "").empty()) out << ", last error: " << s.value("last_error", "");
    out << "\n";
  }
  std::deque<std::string> tail;
  std::ifstream jobs(data_dir / "jobs.jsonl");
  for (std::string line; std::getline(jobs, line);) {
    tail.push_back(line);
    if (tail.size() > last_jobs) tail.pop_front();
  }
  out << "last " << tail.size() << " jobs:\n";
  for (const auto& line : tail) {
    try {
      const json j = json::parse(line);
      const std::time_t t = static_cast<std::time_t>(j.value("time", 0.0));
      std::tm tm{};
      gmtime_r(&t, &tm);
      char stamp[32];
      std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
      out << "  " << stamp << "  " << (j.value("ok", false) ? "ok    " : "FAILED") << "  "
          << j.value("model", "") << "  study " << j.value("study_uid", "") << "  input "
          << j.value("input", "") << "  " << j.value("outputs", 0) << " results, "
          << static_cast<int>(j.value("seconds", 0.0) * 10) / 10.0 << " s";
      if (!j.value("ok", false)) out << "  (" << j.value("error", "") << ")";
      out << "\n";
    } catch (const json::exception&) {
      out << "  (unreadable line)\n";
    }
  }
  return out.str();
}

}  // namespace mvnode
