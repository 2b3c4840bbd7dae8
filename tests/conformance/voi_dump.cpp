// voi_dump: the DICOM VOI transformation as both of its library call sites apply it, for the
// pydicom comparison in test_voi_pydicom.py.
//
//   voi_dump LIST OUT_DIR  ->  for line i of LIST (a DICOM path): OUT_DIR/i.load.npy (the load
//                              option apply_voi = 0) and OUT_DIR/i.window.npy (the preprocessing
//                              step {"op": "window"} in its default 'dicom' mode), both float32
//                              [C, D, H, W] in [0, 1]; OUT_DIR/i.txt holds "ok" or the error.
// Links the library's internals (io::load_file, preprocess::Pipeline). Exit code 0 when every
// output was written.

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.hpp"
#include "dump_util.hpp"
#include "io/io.hpp"
#include "preprocess/preprocess.hpp"

namespace {

using namespace medvision;

bool write(const std::string& path, const float* data, const std::vector<int64_t>& shape4) {
  const int64_t shape[4] = {shape4[0], shape4[1], shape4[2], shape4[3]};
  return mvtest::write_npy(path, data, shape);
}

bool dump_one(const std::string& input, const std::string& prefix) {
  try {
    io::LoadOptions windowed;
    windowed.apply_voi = 0;
    const auto a = io::load_file(input, windowed);
    bool ok = write(prefix + ".load.npy", a->data(),
                    {a->channels(), a->depth(), a->height(), a->width()});

    const auto raw = io::load_file(input, io::LoadOptions{});
    preprocess::InputSpec spec;
    spec.channels = raw->channels();
    spec.ndim = 2;
    const auto pipeline = preprocess::Pipeline::from_json(
        nlohmann::json::parse(R"([{"op": "window"}])"), spec, "voi_dump");
    const preprocess::Prepared p = pipeline.run(*raw);
    ok =
        write(prefix + ".window.npy", p.data.data(), {p.shape[0], 1, p.shape[1], p.shape[2]}) && ok;
    return mvtest::write_text(prefix + ".txt", "ok\n") && ok;
  } catch (const std::exception& e) {
    return mvtest::write_text(prefix + ".txt", std::string(e.what()) + "\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: voi_dump LIST OUT_DIR\n");
    return 2;
  }
  std::ifstream list(argv[1]);
  std::string line;
  bool ok = true;
  for (int i = 0; std::getline(list, line); ++i) {
    if (!line.empty()) ok = dump_one(line, std::string(argv[2]) + "/" + std::to_string(i)) && ok;
  }
  return ok ? 0 : 1;
}
