// Writes the writer fixtures for tests/conformance/test_writers.py (nibabel / pydicom checks):
//   writers_tool nifti OUT CHANNELS u8|i16|f32   the oblique fixture volume
//   writers_tool seg SERIES_DIR OUT               a two-segment SEG of the fixture label map
//   writers_tool sc DICOM OUT                     the RGB test pattern as Secondary Capture
//   writers_tool sc-memory DICOM OUT              the same from a memory-decoded source (fails)
// Exit status: 0, or the mv_status of the failure (message on stderr).

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/error.hpp"
#include "io/io.hpp"
#include "io/writers.hpp"
#include "writer_fixtures.hpp"

namespace io = medvision::io;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: writers_tool nifti|seg|sc|sc-memory IN_OR_OUT ...\n");
    return 64;
  }
  const std::string cmd = argv[1];
  const io::DerivedInfo info{"tiny-seg", "1.2.3", "Not for diagnostic use", ""};
  try {
    if (cmd == "nifti" && argc == 5) {
      const std::string type = argv[4];
      io::write_nifti(mvtest::oblique_image(std::atoi(argv[3])), argv[2],
                      type == "u8"    ? io::NiftiType::kUint8
                      : type == "i16" ? io::NiftiType::kInt16
                                      : io::NiftiType::kFloat32);
    } else if (cmd == "seg") {
      const auto source = io::load_file(argv[2], io::LoadOptions{});
      const std::vector<io::SegmentDescription> segments = {{"Lesion", 1, {{255, 0, 0}}},
                                                            {"Organ", 2, {{0, 255, 0}}}};
      io::write_dicom_seg(mvtest::fixture_label_map(*source), *source, segments, info, argv[3]);
    } else if (cmd == "sc" || cmd == "sc-memory") {
      std::unique_ptr<medvision::Image> source;
      if (cmd == "sc") {
        source = io::load_file(argv[2], io::LoadOptions{});
      } else {
        const auto bytes = io::read_whole_file(argv[2], 1 << 30);
        source = io::load_memory(bytes.data(), bytes.size(), io::LoadOptions{}, "<memory>");
      }
      const auto rgb = mvtest::fixture_rgb(source->height(), source->width());
      io::write_dicom_secondary_capture(rgb.data(), source->height(), source->width(), *source,
                                        info, argv[3]);
    } else {
      std::fprintf(stderr, "writers_tool: unknown command %s\n", cmd.c_str());
      return 64;
    }
  } catch (const medvision::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return static_cast<int>(e.status());
  }
  return 0;
}
