// DICOM reader unit tests on small synthetic files that the tests build with DCMTK.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/io.hpp"
#include "synth_dicom.hpp"

namespace fs = std::filesystem;
using medvision::Error;
using medvision::Image;
using mvtest::status_of;
using mvtest::Synth;
using mvtest::TempDir;
namespace io = medvision::io;

TEST_CASE("dicom: signed 12-bit with high bits set is masked and sign extended", "[io][dicom]") {
  TempDir dir("mv_dicom_signed");
  Synth s(1, 4, 12, true);
  // 0xF800 has garbage above bit 11 (0x8000 | 0x7800); its 12-bit value is 0x800 = -2048.
  s.pixels({0xF800, 0x07FF, 0xFFFF, 0x1001});
  s.ds.putAndInsertString(DCM_RescaleSlope, "2");
  s.ds.putAndInsertString(DCM_RescaleIntercept, "-1024");
  const auto image = io::load_file(s.save(dir.path / "a.dcm"), {});
  const float* p = image->data();
  CHECK(p[0] == -2048 * 2 - 1024);
  CHECK(p[1] == 2047 * 2 - 1024);
  CHECK(p[2] == -1 * 2 - 1024);
  CHECK(p[3] == 1 * 2 - 1024);
  CHECK(image->stored_dtype == MV_DTYPE_INT16);
  CHECK(image->bits_stored == 12);
  CHECK(image->find_meta("PatientName") == nullptr);
  REQUIRE(image->find_meta("Modality") != nullptr);
  CHECK(*image->find_meta("Modality") == "CT");
}

TEST_CASE("dicom: MONOCHROME1 is reported, not inverted; windows are recorded", "[io][dicom]") {
  TempDir dir("mv_dicom_mono1");
  Synth s(1, 2, 16, false);
  s.ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME1");
  s.ds.putAndInsertString(DCM_WindowCenter, "100\\300");
  s.ds.putAndInsertString(DCM_WindowWidth, "50\\600");
  s.ds.putAndInsertString(DCM_VOILUTFunction, "SIGMOID");
  s.pixels({10, 60000});
  const auto image = io::load_file(s.save(dir.path / "m1.dcm"), {});
  CHECK(image->photometric == MV_PHOTOMETRIC_MONOCHROME1);
  CHECK(image->data()[0] == 10.0f);
  CHECK(image->data()[1] == 60000.0f);
  REQUIRE(image->windows.size() == 2);
  CHECK(image->windows[1].center == 300.0);
  CHECK(image->windows[1].width == 600.0);
  CHECK(image->windows[0].function == MV_VOI_SIGMOID);
}

TEST_CASE("dicom: Modality LUT Sequence and VOI LUT Sequence", "[io][dicom]") {
  TempDir dir("mv_dicom_luts");
  Synth s(1, 3, 8, false);
  DcmItem* mlut = nullptr;
  REQUIRE(s.ds.findOrCreateSequenceItem(DCM_ModalityLUTSequence, mlut, -2).good());
  const Uint16 mdesc[3] = {4, 1, 16};
  mlut->putAndInsertUint16Array(DCM_LUTDescriptor, mdesc, 3);
  const Uint16 mdata[4] = {100, 200, 300, 400};
  mlut->putAndInsertUint16Array(DCM_LUTData, mdata, 4);
  DcmItem* vlut = nullptr;
  REQUIRE(s.ds.findOrCreateSequenceItem(DCM_VOILUTSequence, vlut, -2).good());
  const Uint16 vdesc[3] = {3, 100, 8};
  vlut->putAndInsertUint16Array(DCM_LUTDescriptor, vdesc, 3);
  const Uint16 vdata[3] = {0, 128, 255};
  vlut->putAndInsertUint16Array(DCM_LUTData, vdata, 3);
  s.pixels({0, 2, 9});  // below first_mapped -> entry 0; 2 -> entry 1; past the end -> last
  const auto image = io::load_file(s.save(dir.path / "lut.dcm"), {});
  CHECK(image->data()[0] == 100.0f);
  CHECK(image->data()[1] == 200.0f);
  CHECK(image->data()[2] == 400.0f);
  REQUIRE(image->windows.size() == 1);
  CHECK(image->windows[0].function == MV_VOI_TABLE);
  CHECK(image->windows[0].first_mapped == 100.0);
  CHECK(image->windows[0].table_bits == 8);
  CHECK(image->windows[0].table == std::vector<float>{0, 128, 255});
}

TEST_CASE("dicom: multi-frame goes to depth and options.frame picks one", "[io][dicom]") {
  TempDir dir("mv_dicom_frames");
  Synth s(2, 2, 16, false);
  s.ds.putAndInsertString(DCM_NumberOfFrames, "3");
  s.pixels({0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  const std::string path = s.save(dir.path / "mf.dcm");
  const auto all = io::load_file(path, {});
  CHECK(all->depth() == 3);
  CHECK(all->data()[4 * 2 + 3] == 23.0f);
  io::LoadOptions one;
  one.frame = 1;
  const auto f1 = io::load_file(path, one);
  CHECK(f1->depth() == 1);
  CHECK(f1->data()[0] == 10.0f);
  one.frame = 3;
  CHECK(status_of([&] { io::load_file(path, one); }) == MV_ERR_INVALID_ARGUMENT);
}

TEST_CASE("dicom: a 60000^3 header is refused before allocation", "[io][dicom]") {
  TempDir dir("mv_dicom_lie");
  Synth s(60000, 60000, 16, false);
  s.ds.putAndInsertString(DCM_NumberOfFrames, "60000");
  s.pixels({1, 2, 3, 4});
  std::string message;
  const mv_status st =
      status_of([&] { io::load_file(s.save(dir.path / "lie.dcm"), {}); }, &message);
  CHECK((st == MV_ERR_OUT_OF_MEMORY || st == MV_ERR_CORRUPT_DATA));
  CHECK(message.find("lie.dcm") != std::string::npos);
}

TEST_CASE("dicom: truncated pixel data names the file and the tag", "[io][dicom]") {
  TempDir dir("mv_dicom_trunc");
  Synth s(512, 512, 16, false);
  s.pixels(std::vector<uint16_t>(500, 7));
  std::string message;
  const std::string path = s.save(dir.path / "short.dcm");
  CHECK(status_of([&] { io::load_file(path, {}); }, &message) == MV_ERR_CORRUPT_DATA);
  CHECK(message == path + ": (7FE0,0010) PixelData has 1000 bytes, 524288 expected");
}

TEST_CASE("dicom: no pixel data and unsupported transfer syntax", "[io][dicom]") {
  TempDir dir("mv_dicom_nopix");
  Synth s(2, 2, 16, false);
  std::string message;
  const std::string path = s.save(dir.path / "nopix.dcm");
  CHECK(status_of([&] { io::load_file(path, {}); }, &message) == MV_ERR_UNSUPPORTED_FORMAT);
  CHECK(message == path + ": has no PixelData");
}

TEST_CASE("dicom: from memory, and from memory without meta header", "[io][dicom]") {
  Synth s(2, 2, 16, false);
  s.pixels({5, 6, 7, 8});
  const auto bytes = s.bytes();
  const auto image = io::load_memory(bytes.data(), bytes.size(), {}, "<memory>");
  CHECK(image->data()[3] == 8.0f);
  CHECK(image->format == MV_FORMAT_DICOM);
  std::string message;
  CHECK(status_of([&] { io::load_memory(bytes.data(), bytes.size() - 4, {}, "<cut>"); },
                  &message) == MV_ERR_CORRUPT_DATA);
  CHECK(message.rfind("<cut>", 0) == 0);
}

TEST_CASE("dicom: a shuffled series with a gap is sorted, spaced and warned about", "[io][dicom]") {
  TempDir dir("mv_dicom_series");
  const double zs[] = {4.0, 0.0, 2.0, 10.0};  // 6 -> 10 is a gap; 6 and 8 are missing
  int i = 0;
  for (double z : zs) {
    Synth s(2, 2, 16, false);
    s.position(z);
    s.pixels({static_cast<uint16_t>(z), 0, 0, 0});
    s.save(dir.path / ("s" + std::to_string(i++) + ".dcm"));
  }
  {
    std::FILE* f = std::fopen((dir.path / "notes.txt").string().c_str(), "w");
    std::fputs("x", f);
    std::fclose(f);
  }
  const auto image = io::load_file(dir.path.string(), {});
  REQUIRE(image->depth() == 4);
  for (int k = 0; k < 4; ++k) {
    CHECK(image->data()[k * image->plane_size()] == std::vector<float>{0, 2, 4, 10}[k]);
  }
  CHECK(image->geometry.spacing[0] == 0.25);  // column spacing is PixelSpacing[1]
  CHECK(image->geometry.spacing[1] == 0.5);
  CHECK(image->geometry.spacing[2] == 2.0);
  CHECK(image->geometry.origin[2] == 0.0);
  const auto has = [&](const char* text) {
    return std::any_of(image->warnings.begin(), image->warnings.end(),
                       [&](const std::string& w) { return w.find(text) != std::string::npos; });
  };
  CHECK(has("gap"));
  CHECK(has("notes.txt: skipped"));
}

TEST_CASE("dicom: two series in a folder need series_uid", "[io][dicom]") {
  TempDir dir("mv_dicom_two");
  for (int i = 0; i < 4; ++i) {
    Synth s(2, 2, 16, false);
    s.position(i);
    s.ds.putAndInsertString(DCM_SeriesInstanceUID, i % 2 ? "1.2.3.9" : "1.2.3.8");
    s.pixels({1, 2, 3, 4});
    s.save(dir.path / ("s" + std::to_string(i) + ".dcm"));
  }
  std::string message;
  CHECK(status_of([&] { io::load_file(dir.path.string(), {}); }, &message) ==
        MV_ERR_INVALID_ARGUMENT);
  CHECK(message.find("2 series") != std::string::npos);
  CHECK(message.find("1.2.3.9") != std::string::npos);
  io::LoadOptions pick;
  pick.series_uid = "1.2.3.9";
  CHECK(io::load_file(dir.path.string(), pick)->depth() == 2);
}

TEST_CASE("dicom: mismatched slice sizes are an error", "[io][dicom]") {
  TempDir dir("mv_dicom_mismatch");
  Synth a(2, 2, 16, false);
  a.position(0);
  a.pixels({1, 2, 3, 4});
  a.save(dir.path / "a.dcm");
  Synth b(2, 3, 16, false);
  b.position(1);
  b.pixels({1, 2, 3, 4, 5, 6});
  b.save(dir.path / "b.dcm");
  CHECK(status_of([&] { io::load_file(dir.path.string(), {}); }) == MV_ERR_SHAPE_MISMATCH);
}
