// Thread stress of the decoders, the log callback and mv_last_error() through the C ABI (label
// threads): 8 threads decode the same files and buffers (every DICOM transfer syntax of the
// cornerstone CT set, a synthetic DICOM series with a gap, NIfTI, PNG, JPEG, TIFF, damaged
// inputs) and must get the serial results bit for bit, statuses and messages included; the log
// callback gets every warning of every thread, and only at the levels it asked for while another
// thread swaps it; each thread's mv_last_error() names its own failure.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "medvision/medvision.h"
#include "synth_dicom.hpp"
#include "test_data.hpp"
#include "threads/thread_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using mvtest::Faults;
using mvtest::kThreads;
using mvtest::on_threads;

template <typename T>
void put(std::string& s, const T& v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_str(std::string& s, const char* p) {
  s += p ? p : "(null)";
  s += '\0';
}

// Everything a decoded image exposes, as bytes.
std::string fingerprint(const mv_image* im) {
  std::string s;
  int64_t shape[4];
  mv_image_shape(im, shape);
  put(s, shape);
  s.append(reinterpret_cast<const char*>(mv_image_data(im)),
           static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]) * sizeof(float));
  double g[9];
  mv_image_spacing(im, g);
  s.append(reinterpret_cast<const char*>(g), 3 * sizeof(double));
  mv_image_origin(im, g);
  s.append(reinterpret_cast<const char*>(g), 3 * sizeof(double));
  mv_image_direction(im, g);
  s.append(reinterpret_cast<const char*>(g), 9 * sizeof(double));
  put(s, mv_image_get_format(im));
  put(s, mv_image_photometric(im));
  put(s, mv_image_stored_dtype(im));
  put(s, mv_image_bits_stored(im));
  put(s, mv_image_window_count(im));
  for (size_t i = 0; mv_image_meta_key(i) != nullptr; ++i) {
    put_str(s, mv_image_meta(im, mv_image_meta_key(i)));
  }
  for (size_t i = 0; i < mv_image_warning_count(im); ++i) put_str(s, mv_image_warning(im, i));
  return s;
}

// One input: a file or folder path, or bytes in memory.
struct Input {
  std::string name;
  std::string path;
  std::vector<uint8_t> bytes;
};

// The status, the message and (on success) the image's fingerprint.
std::string decode(const Input& in) {
  mv_image* im = nullptr;
  const mv_status s = in.path.empty()
                          ? mv_image_load_memory(in.bytes.data(), in.bytes.size(), nullptr, &im)
                          : mv_image_load(in.path.c_str(), nullptr, &im);
  std::string out = std::string(mv_status_name(s)) + ": " + mv_last_error() + "\n";
  if (s == MV_OK) {
    out += fingerprint(im);
    mv_image_free(im);
  }
  return out;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> encode(const std::string& ext, const cv::Mat& m) {
  std::vector<uint8_t> out;
  REQUIRE(cv::imencode(ext, m, out));
  return out;
}

// A shuffled 4-slice series with a gap (z = 0, 2, 4, 10) and a stray text file: loading the
// folder warns about both.
void write_gap_series(const fs::path& dir) {
  fs::create_directories(dir);
  const double zs[] = {4.0, 0.0, 2.0, 10.0};
  int i = 0;
  for (double z : zs) {
    mvtest::Synth s(6, 5, 12, false);
    s.position(z);
    std::vector<uint16_t> px(30);
    for (size_t k = 0; k < px.size(); ++k)
      px[k] = static_cast<uint16_t>(100.0 * z + static_cast<double>(k));
    s.pixels(px);
    s.save(dir / ("s" + std::to_string(i++) + ".dcm"));
  }
  std::ofstream(dir / "notes.txt") << "x";
}

// The log sink of one callback: every message it got, with its level.
struct Sink {
  std::mutex mutex;
  std::vector<std::pair<mv_log_level, std::string>> messages;
  std::atomic<int> wrong_user{0};
};

Sink* g_expected_warn_sink = nullptr;
Sink* g_expected_error_sink = nullptr;

void to_sink(mv_log_level level, const char* message, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::lock_guard<std::mutex> lock(sink->mutex);
  sink->messages.emplace_back(level, message ? message : "(null)");
}
void warn_sink(mv_log_level level, const char* message, void* user) {
  if (user != g_expected_warn_sink) static_cast<Sink*>(user)->wrong_user.fetch_add(1);
  to_sink(level, message, user);
}
void error_sink(mv_log_level level, const char* message, void* user) {
  if (user != g_expected_error_sink) static_cast<Sink*>(user)->wrong_user.fetch_add(1);
  to_sink(level, message, user);
}

}  // namespace

TEST_CASE("threads: decoders give every thread the serial pixels, statuses and messages",
          "[threads][io]") {
  mvtest::TempDir tmp("mv_threads_io");
  std::vector<Input> inputs;
  // Every transfer syntax of one CT image (and a few more files of that set) from memory, and
  // three of them from disk as well (the file path adds only the read; this bounds the run).
  const std::string set = mvtest::data_path("dicom/cornerstone-testImages/testImages");
  if (!set.empty()) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(set)) {
      if (e.is_regular_file() && e.path().extension() != ".sh") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string name = fs::path(f).filename().string();
      inputs.push_back({name + " (memory)", "", file_bytes(f)});
      if (name == "CTImage.dcm" || name.find("RLELossless") != std::string::npos ||
          name.find("JPEG2000Lossless") != std::string::npos) {
        inputs.push_back({name, f, {}});
      }
    }
  }
  // Synthetic inputs, present everywhere.
  write_gap_series(tmp.path / "series");
  inputs.push_back({"series folder with a gap", (tmp.path / "series").string(), {}});
  cv::Mat grey16(23, 17, CV_16UC1), colour(19, 29, CV_8UC3);
  cv::randu(grey16, 0, 65535);
  cv::randu(colour, 0, 255);
  inputs.push_back({"16-bit PNG", "", encode(".png", grey16)});
  inputs.push_back({"16-bit TIFF", "", encode(".tiff", grey16)});
  inputs.push_back({"colour JPEG", "", encode(".jpg", colour)});
  inputs.push_back({"colour BMP", "", encode(".bmp", colour)});
  {
    // NIfTI, written by medvision from a decoded PNG.
    mv_image* im = nullptr;
    const auto png = encode(".png", grey16);
    REQUIRE(mv_image_load_memory(png.data(), png.size(), nullptr, &im) == MV_OK);
    const std::string nii = (tmp.path / "grey.nii.gz").string();
    REQUIRE(mv_image_write_nifti(im, nii.c_str()) == MV_OK);
    mv_image_free(im);
    inputs.push_back({"NIfTI .nii.gz", nii, {}});
    inputs.push_back({"NIfTI .nii.gz (memory)", "", file_bytes(nii)});
  }
  {
    // Native pixel data over 4 MiB, read from disk: one load reads and converts it on two
    // threads of its own (read_native_in_pieces), inside each of the test's threads.
    const uint16_t side = 1536;
    mvtest::Synth s(side, side, 16, false);
    std::vector<uint16_t> px(size_t{side} * side);
    for (size_t k = 0; k < px.size(); ++k) px[k] = static_cast<uint16_t>(k * 2654435761u >> 7);
    s.pixels(px);
    inputs.push_back({"native 16-bit 1536 x 1536", s.save(tmp.path / "large.dcm"), {}});
  }
  // Damaged inputs: statuses and messages must be the serial ones too.
  {
    mvtest::Synth s(8, 8, 16, false);
    s.pixels(std::vector<uint16_t>(64, 7));
    const auto dcm = file_bytes(s.save(tmp.path / "small.dcm"));
    inputs.push_back({"truncated DICOM", "", {dcm.begin(), dcm.end() - 20}});
    auto png = encode(".png", grey16);
    png.resize(png.size() / 2);
    inputs.push_back({"truncated PNG", "", png});
    inputs.push_back({"not an image", "", {'h', 'e', 'l', 'l', 'o', 0, 1, 2, 3, 4, 5, 6}});
    inputs.push_back({"missing file", (tmp.path / "missing.dcm").string(), {}});
  }

  std::vector<std::string> serial;
  size_t decoded = 0;
  for (const auto& in : inputs) {
    serial.push_back(decode(in));
    decoded += serial.back().rfind("MV_OK", 0) == 0 ? 1 : 0;
  }
  CHECK(decoded >= 6);  // the synthetic ones at least

  // Each input is decoded by 4 of the 8 threads at once (every other input per thread, each
  // thread starting elsewhere in the list): enough overlap, and a bounded run under TSan.
  const auto faults = on_threads([&](int t, Faults& f) {
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t i = (k + static_cast<size_t>(t) * 5) % inputs.size();
      if ((i + static_cast<size_t>(t)) % 2 != 0) continue;
      if (decode(inputs[i]) != serial[i]) f.add(inputs[i].name + ": differs from serial");
    }
  });
  MV_CHECK_NO_FAULTS(faults);
}

TEST_CASE("threads: the log callback gets every warning of every thread", "[threads][log]") {
  mvtest::TempDir tmp("mv_threads_log");
  write_gap_series(tmp.path / "series");
  const std::string folder = (tmp.path / "series").string();
  Sink sink;
  g_expected_warn_sink = &sink;
  mv_set_log_callback(&warn_sink, &sink, MV_LOG_WARN);
  mv_image* im = nullptr;
  REQUIRE(mv_image_load(folder.c_str(), nullptr, &im) == MV_OK);
  const size_t per_load = mv_image_warning_count(im);
  mv_image_free(im);
  REQUIRE(per_load >= 2);  // the gap and the stray file
  std::vector<std::string> serial;
  for (const auto& m : sink.messages) serial.push_back(m.second);
  REQUIRE(serial.size() == per_load);
  sink.messages.clear();

  constexpr int kLoads = 6;
  const auto faults = on_threads([&](int, Faults& f) {
    for (int i = 0; i < kLoads; ++i) {
      mv_image* img = nullptr;
      if (mv_image_load(folder.c_str(), nullptr, &img) != MV_OK) {
        f.add(std::string("mv_image_load: ") + mv_last_error());
      }
      mv_image_free(img);
    }
  });
  mv_set_log_callback(nullptr, nullptr, MV_LOG_OFF);
  MV_CHECK_NO_FAULTS(faults);
  CHECK(sink.wrong_user.load() == 0);
  REQUIRE(sink.messages.size() == static_cast<size_t>(kThreads * kLoads) * per_load);
  for (const auto& m : sink.messages) {
    CHECK(m.first == MV_LOG_WARN);
    CHECK(std::count(serial.begin(), serial.end(), m.second) == 1);
  }
}

TEST_CASE("threads: swapping the log callback while threads log; levels are respected",
          "[threads][log]") {
  mvtest::TempDir tmp("mv_threads_swap");
  write_gap_series(tmp.path / "series");
  // 60 more stray files: 60 more warnings per load, logged back to back, so that the swaps fall
  // between a message's level check and its delivery now and then.
  for (int i = 0; i < 60; ++i) {
    std::ofstream(tmp.path / "series" / ("stray" + std::to_string(i) + ".txt")) << "x";
  }
  const std::string folder = (tmp.path / "series").string();
  Sink warns, errors;  // live until the end of the test, after the callback is removed
  g_expected_warn_sink = &warns;
  g_expected_error_sink = &errors;
  std::atomic<bool> done{false};
  std::atomic<int> finished{0};

  const auto faults = on_threads([&](int t, Faults& f) {
    if (t == 0) {
      // Swaps between a sink for warnings, a sink for errors only, and none.
      for (int i = 0; !done.load(); ++i) {
        switch (i % 3) {
          case 0:
            mv_set_log_callback(&warn_sink, &warns, MV_LOG_WARN);
            break;
          case 1:
            mv_set_log_callback(&error_sink, &errors, MV_LOG_ERROR);
            break;
          default:
            mv_set_log_callback(nullptr, nullptr, MV_LOG_OFF);
            break;
        }
        // No yield: swaps as often as possible (with a yield here the loaders outrun the swapper
        // and the old level race was never hit; without, it was hit in 3 of 10 runs).
      }
      return;
    }
    for (int i = 0; i < 6; ++i) {
      mv_image* img = nullptr;
      if (mv_image_load(folder.c_str(), nullptr, &img) != MV_OK) {
        f.add(std::string("mv_image_load: ") + mv_last_error());
      }
      mv_image_free(img);
    }
    // The last of the loaders stops the swapper.
    if (finished.fetch_add(1) + 1 == kThreads - 1) done.store(true);
  });
  mv_set_log_callback(nullptr, nullptr, MV_LOG_OFF);
  MV_CHECK_NO_FAULTS(faults);
  CHECK(warns.wrong_user.load() == 0);
  CHECK(errors.wrong_user.load() == 0);
  // A callback installed for errors only never gets a warning, even one whose level was checked
  // against the callback before it.
  for (const auto& m : errors.messages) CHECK(m.first >= MV_LOG_ERROR);
  for (const auto& m : warns.messages) CHECK(m.first >= MV_LOG_WARN);
}

TEST_CASE("threads: each thread's mv_last_error() names its own failure and is cleared",
          "[threads][errors]") {
  cv::Mat grey(9, 7, CV_8UC1, cv::Scalar(5));
  const auto png = encode(".png", grey);
  const auto faults = on_threads([&](int t, Faults& f) {
    for (int i = 0; i < 50; ++i) {
      const std::string path =
          "/nonexistent/mv-thread-" + std::to_string(t) + "-" + std::to_string(i) + ".dcm";
      mv_image* im = nullptr;
      const mv_status s = mv_image_load(path.c_str(), nullptr, &im);
      const std::string msg = mv_last_error();
      if (s != MV_ERR_IO) f.add(path + ": status " + mv_status_name(s));
      if (msg.find(path) == std::string::npos) f.add(path + ": message '" + msg + "'");
      if (std::string(mv_status_name(s)) != "MV_ERR_IO") f.add("mv_status_name");
      // A NULL argument: another message, on this thread only.
      if (mv_image_load(nullptr, nullptr, &im) != MV_ERR_INVALID_ARGUMENT ||
          std::string(mv_last_error()).find("NULL") == std::string::npos) {
        f.add(std::string("NULL path: '") + mv_last_error() + "'");
      }
      // Success clears it.
      if (mv_image_load_memory(png.data(), png.size(), nullptr, &im) != MV_OK) {
        f.add(std::string("PNG: ") + mv_last_error());
      } else if (std::strlen(mv_last_error()) != 0) {
        f.add(std::string("not cleared: '") + mv_last_error() + "'");
      }
      mv_image_free(im);
    }
  });
  MV_CHECK_NO_FAULTS(faults);
}
