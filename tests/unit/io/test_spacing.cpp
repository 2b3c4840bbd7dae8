// Where a pixel spacing comes from (issue 16): DICOM sources in the standard's order, NIfTI,
// PNG pHYs, and none at all. A spacing without a source is a placeholder and must say so.

#include <catch2/catch.hpp>
#include <string>

#include "io/io.hpp"
#include "synth_dicom.hpp"

namespace io = medvision::io;
using mvtest::Synth;
using mvtest::TempDir;

namespace {

// Synth holds a reference into itself: built in place, never returned by value.
struct Tiny : Synth {
  Tiny() : Synth(2, 2, 16, false) { pixels({1, 2, 3, 4}); }
};

}  // namespace

TEST_CASE("spacing: DICOM sources in PS3.3 order, and none", "[io][dicom][spacing]") {
  TempDir dir("mv_dicom_spacing");
  {
    Tiny s;  // no spacing attribute at all: a placeholder 1 mm, no source
    const auto image = io::load_file(s.save(dir.path / "none.dcm"), {});
    CHECK(image->geometry.spacing_source.empty());
    CHECK(image->geometry.spacing[0] == 1.0);
  }
  {
    Tiny s;  // all three: Pixel Spacing wins
    s.ds.putAndInsertString(DCM_PixelSpacing, "0.5\\0.25");
    s.ds.putAndInsertString(DCM_ImagerPixelSpacing, "0.7\\0.7");
    s.ds.putAndInsertString(DCM_NominalScannedPixelSpacing, "0.9\\0.9");
    const auto image = io::load_file(s.save(dir.path / "all.dcm"), {});
    CHECK(image->geometry.spacing_source == "PixelSpacing");
    CHECK(image->geometry.spacing[0] == 0.25);  // column = PixelSpacing[1]
    CHECK(image->geometry.spacing[1] == 0.5);
  }
  {
    Tiny s;  // projection radiograph: at the detector
    s.ds.putAndInsertString(DCM_ImagerPixelSpacing, "0.7\\0.6");
    s.ds.putAndInsertString(DCM_NominalScannedPixelSpacing, "0.9\\0.9");
    const auto image = io::load_file(s.save(dir.path / "imager.dcm"), {});
    CHECK(image->geometry.spacing_source == "ImagerPixelSpacing");
    CHECK(image->geometry.spacing[0] == 0.6);
    CHECK(image->geometry.spacing[1] == 0.7);
  }
  {
    Tiny s;  // digitised film (Secondary Capture)
    s.ds.putAndInsertString(DCM_NominalScannedPixelSpacing, "0.9\\0.8");
    const auto image = io::load_file(s.save(dir.path / "scanned.dcm"), {});
    CHECK(image->geometry.spacing_source == "NominalScannedPixelSpacing");
    CHECK(image->geometry.spacing[0] == 0.8);
  }
  {
    Tiny s;  // a zero Pixel Spacing is no spacing: the next source is used
    s.ds.putAndInsertString(DCM_PixelSpacing, "0\\0");
    s.ds.putAndInsertString(DCM_ImagerPixelSpacing, "0.7\\0.7");
    const auto image = io::load_file(s.save(dir.path / "zero.dcm"), {});
    CHECK(image->geometry.spacing_source == "ImagerPixelSpacing");
  }
  {
    // A series keeps its first slice's source.
    mvtest::fs::create_directories(dir.path / "series");
    for (int i = 0; i < 2; ++i) {
      Tiny s;
      s.position(i * 2.0);
      s.ds.putAndInsertString(DCM_SOPInstanceUID, ("1.2.3.4.5.1." + std::to_string(i)).c_str());
      s.save(dir.path / "series" / ("s" + std::to_string(i) + ".dcm"));
    }
    const auto image = io::load_file((dir.path / "series").string(), {});
    REQUIRE(image->depth() == 2);
    CHECK(image->geometry.spacing_source == "PixelSpacing");
  }
}
