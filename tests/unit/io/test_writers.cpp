// Writers: NIfTI round trips through medvision's reader, DICOM SEG read back with DCMTK's dcmseg,
// Secondary Capture, the outline overlay, and the error paths. tests/conformance/test_writers.py
// checks the same files with nibabel and pydicom.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fginterface.h>
#include <dcmtk/dcmfg/fgseg.h>
#include <dcmtk/dcmseg/segdoc.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/io.hpp"
#include "io/label_map.hpp"
#include "io/writers.hpp"
#include "synth_dicom.hpp"
#include "writer_fixtures.hpp"

namespace fs = std::filesystem;
namespace io = medvision::io;
using medvision::Image;
using mvtest::status_of;
using mvtest::Synth;
using mvtest::TempDir;

namespace {

// A 5-slice 32 x 32 CT series with patient and study attributes, files saved in reverse order of
// position so that the loader has to sort them.
std::string write_series(const fs::path& dir) {
  for (int k = 0; k < 5; ++k) {
    Synth s(32, 32, 12, true);
    s.ds.putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage);
    s.ds.putAndInsertString(DCM_SOPInstanceUID,
                            ("1.2.826.0.1.3680043.99.1." + std::to_string(k)).c_str());
    s.ds.putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.99.2");
    s.ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.99.3");
    s.ds.putAndInsertString(DCM_FrameOfReferenceUID, "1.2.826.0.1.3680043.99.4");
    s.ds.putAndInsertString(DCM_PatientID, "SECRET-ID-42");
    s.ds.putAndInsertString(DCM_PatientBirthDate, "19700101");
    s.ds.putAndInsertString(DCM_PatientSex, "O");
    s.ds.putAndInsertString(DCM_StudyDate, "20240102");
    s.ds.putAndInsertString(DCM_AccessionNumber, "ACC123");
    s.ds.putAndInsertString(DCM_StudyID, "S1");
    s.ds.putAndInsertString(DCM_WindowCenter, "40");
    s.ds.putAndInsertString(DCM_WindowWidth, "400");
    s.pixels(std::vector<uint16_t>(32 * 32, static_cast<uint16_t>(100 * k)));
    s.position(10.0 + 2.5 * k);
    s.save(dir / ("slice" + std::to_string(4 - k) + ".dcm"));
  }
  return dir.string();
}

bool same_geometry(const medvision::Geometry& a, const medvision::Geometry& b) {
  for (size_t i = 0; i < 3; ++i) {
    if (std::abs(a.spacing[i] - b.spacing[i]) > 1e-4) return false;
    if (std::abs(a.origin[i] - b.origin[i]) > 1e-3) return false;
  }
  for (size_t i = 0; i < 9; ++i) {
    if (std::abs(a.direction[i] - b.direction[i]) > 1e-5) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("nifti writer: oblique geometry and data round-trip (.nii, .nii.gz, 4-D)",
          "[io][writers][nifti]") {
  TempDir dir("mv_writers_nifti");
  for (int64_t channels : {1, 4}) {
    for (const char* name : {"a.nii", "a.nii.gz"}) {
      const Image im = mvtest::oblique_image(channels);
      const std::string path = (dir.path / name).string();
      for (auto type : {io::NiftiType::kInt16, io::NiftiType::kFloat32}) {
        io::write_nifti(im, path, type);
        const auto back = io::load_file(path, io::LoadOptions{});
        CAPTURE(channels, name);
        REQUIRE(back->channels() == channels);
        REQUIRE(back->depth() == 6);
        REQUIRE(back->height() == 7);
        REQUIRE(back->width() == 5);
        CHECK(std::equal(im.data(), im.data() + im.size(), back->data()));
        CHECK(same_geometry(im.geometry, back->geometry));
      }
    }
  }
}

TEST_CASE("nifti writer: errors", "[io][writers][nifti]") {
  TempDir dir("mv_writers_nifti_err");
  const Image im = mvtest::oblique_image(1);
  std::string msg;
  const std::string missing = (dir.path / "no" / "such" / "dir" / "x.nii.gz").string();
  CHECK(status_of([&] { io::write_nifti(im, missing, io::NiftiType::kFloat32); }, &msg) ==
        MV_ERR_IO);
  CHECK(msg.find(missing) != std::string::npos);
  CHECK(status_of([&] {
          io::write_nifti(im, (dir.path / "u8.nii").string(), io::NiftiType::kUint8);
        }) == MV_ERR_INVALID_ARGUMENT);  // values above 255 do not fit uint8
  CHECK(status_of([&] {
          io::write_nifti(im, (dir.path / "x.img").string(), io::NiftiType::kFloat32);
        }) == MV_ERR_INVALID_ARGUMENT);
  CHECK_FALSE(fs::exists(dir.path / "x.img"));
}

TEST_CASE("dicom seg: frames, references, study, frame of reference, patient (DCMTK read-back)",
          "[io][writers][seg]") {
  TempDir dir("mv_writers_seg");
  fs::create_directories(dir.path / "series");
  const auto source = io::load_file(write_series(dir.path / "series"), io::LoadOptions{});
  REQUIRE(source->dicom_sources.size() == 5);
  CHECK(source->frame_of_reference_uid == "1.2.826.0.1.3680043.99.4");
  for (size_t k = 0; k < 5; ++k) {  // sorted by position: file k holds instance k
    CHECK(source->dicom_sources[k].sop_instance_uid ==
          "1.2.826.0.1.3680043.99.1." + std::to_string(k));
  }
  const Image labels = mvtest::fixture_label_map(*source);
  const std::vector<io::SegmentDescription> segments = {{"Lesion", 1, {{255, 0, 0}}},
                                                        {"Organ", 2, {{0, 255, 0}}}};
  io::DerivedInfo info{"tiny-seg", "1.2.3", "Not for diagnostic use", ""};
  const std::string out = (dir.path / "seg.dcm").string();
  io::write_dicom_seg(labels, *source, segments, info, out);

  DcmSegmentation* raw = nullptr;
  REQUIRE(DcmSegmentation::loadFile(out.c_str(), raw).good());
  std::unique_ptr<DcmSegmentation> seg(raw);
  CHECK(seg->getNumberOfSegments() == 2);
  // Segment 1 on slices 1-2, segment 2 on slices 2-3: four frames.
  REQUIRE(seg->getNumberOfFrames() == 4);
  FGInterface& fg = seg->getFunctionalGroups();
  for (size_t f = 0; f < 4; ++f) {
    auto* s = OFstatic_cast(FGSegmentation*,
                            fg.get(static_cast<Uint32>(f), DcmFGTypes::EFG_SEGMENTATION));
    auto* d = OFstatic_cast(FGDerivationImage*,
                            fg.get(static_cast<Uint32>(f), DcmFGTypes::EFG_DERIVATIONIMAGE));
    REQUIRE(s != nullptr);
    REQUIRE(d != nullptr);
    Uint16 number = 0;
    s->getReferencedSegmentNumber(number);
    OFString uid;
    d->getDerivationImageItems()[0]
        ->getSourceImageItems()[0]
        ->getImageSOPInstanceReference()
        .getReferencedSOPInstanceUID(uid);
    const int64_t k = uid.back() - '0';
    const DcmIODTypes::Frame* frame = seg->getFrame(f);
    REQUIRE(frame != nullptr);
    // Binary frames are bit-packed, first pixel in the least significant bit.
    for (int64_t y = 0; y < 32; ++y) {
      for (int64_t x = 0; x < 32; ++x) {
        const size_t bit = static_cast<size_t>(y * 32 + x);
        const bool set = (frame->pixData[bit / 8] >> (bit % 8)) & 1;
        if (set != (mvtest::fixture_label(k, y, x) == number)) {
          FAIL("frame " << f << " (segment " << number << ", slice " << k << ") differs at " << y
                        << "," << x);
        }
      }
    }
  }
  DcmFileFormat file;
  REQUIRE(file.loadFile(out.c_str()).good());
  DcmDataset& ds = *file.getDataset();
  auto get = [&](const DcmTagKey& tag) {
    OFString v;
    ds.findAndGetOFString(tag, v);
    return std::string(v.c_str());
  };
  CHECK(get(DCM_StudyInstanceUID) == "1.2.826.0.1.3680043.99.3");
  CHECK(get(DCM_FrameOfReferenceUID) == "1.2.826.0.1.3680043.99.4");
  CHECK(get(DCM_PatientName) == "Secret^Patient");
  CHECK(get(DCM_PatientID) == "SECRET-ID-42");
  CHECK(get(DCM_AccessionNumber) == "ACC123");
  CHECK(get(DCM_SeriesInstanceUID).rfind("2.25.", 0) == 0);
  CHECK(get(DCM_SeriesDescription).find("tiny-seg") != std::string::npos);
}

TEST_CASE("dicom seg: read back onto the source's grid equals the label map written",
          "[io][writers][seg][label_map]") {
  // The SEG reader (dicom_seg_reader.cpp) on a SEG medvision writes, in a test the ASan build
  // runs (tests/segment/test_seg_reference.py covers pydicom-built SEGs through ctypes).
  TempDir dir("mv_writers_seg_read");
  fs::create_directories(dir.path / "series");
  const auto source = io::load_file(write_series(dir.path / "series"), io::LoadOptions{});
  const Image labels = mvtest::fixture_label_map(*source);
  const std::vector<io::SegmentDescription> segments = {{"Lesion", 1, {{255, 0, 0}}},
                                                        {"Organ", 2, {{0, 255, 0}}}};
  const std::string out = (dir.path / "seg.dcm").string();
  io::write_dicom_seg(labels, *source, segments, {}, out);
  CHECK(io::is_dicom_seg_file(out));

  io::LabelMapOptions o;
  o.labels = {"organ", "LESION"};  // matched ignoring case, mapped to other values
  o.values = {7, 3};
  const auto back = io::read_label_map(out, *source, o);
  REQUIRE(back->channels() == 1);
  REQUIRE(back->size() == labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const float want = labels.data()[i] == 1 ? 3.0f : labels.data()[i] == 2 ? 7.0f : 0.0f;
    if (back->data()[i] != want) FAIL("voxel " << i << ": " << back->data()[i] << " != " << want);
  }
  CHECK(same_geometry(back->geometry, source->geometry));
  // Without labels the segment numbers are the values: the label map as written.
  const auto plain = io::read_label_map(out, *source, io::LabelMapOptions{});
  for (size_t i = 0; i < labels.size(); ++i) REQUIRE(plain->data()[i] == labels.data()[i]);

  // Refusals name the file: a label the SEG does not have, another grid.
  std::string msg;
  io::LabelMapOptions only;
  only.labels = {"Lesion"};
  CHECK(status_of([&] { io::read_label_map(out, *source, only); }, &msg) ==
        MV_ERR_INVALID_ARGUMENT);
  CHECK(msg.find("seg.dcm") != std::string::npos);
  CHECK(msg.find("Organ") != std::string::npos);
  medvision::Image other(1, 5, 16, 16, 1u << 20, "other");
  CHECK(status_of([&] { io::read_label_map(out, other, io::LabelMapOptions{}); }, &msg) ==
        MV_ERR_SHAPE_MISMATCH);
  CHECK(msg.find("seg.dcm") != std::string::npos);
}

TEST_CASE("derived DICOM: a source decoded from memory or not from DICOM is refused",
          "[io][writers][seg]") {
  TempDir dir("mv_writers_mem");
  Synth s(32, 32, 12, false);
  s.pixels(std::vector<uint16_t>(32 * 32, 7));
  const auto bytes = s.bytes();
  const auto source = io::load_memory(bytes.data(), bytes.size(), io::LoadOptions{}, "<memory>");
  const Image labels = mvtest::fixture_label_map(*source);
  std::string msg;
  CHECK(status_of(
            [&] {
              io::write_dicom_seg(labels, *source, {{"A", 1, {{1, 2, 3}}}}, {},
                                  (dir.path / "x.dcm").string());
            },
            &msg) == MV_ERR_INVALID_ARGUMENT);
  CHECK(msg.find("memory") != std::string::npos);
  const auto rgb = mvtest::fixture_rgb(4, 4);
  CHECK(status_of([&] {
          io::write_dicom_secondary_capture(rgb.data(), 4, 4, mvtest::oblique_image(1), {},
                                            (dir.path / "y.dcm").string());
        }) == MV_ERR_INVALID_ARGUMENT);
}

TEST_CASE("dicom seg and sc: unwritable path is MV_ERR_IO naming the path; bad labels refused",
          "[io][writers][seg]") {
  TempDir dir("mv_writers_io");
  fs::create_directories(dir.path / "series");
  const auto source = io::load_file(write_series(dir.path / "series"), io::LoadOptions{});
  Image labels = mvtest::fixture_label_map(*source);
  const std::vector<io::SegmentDescription> one = {{"Lesion", 1, {{255, 0, 0}}}};
  const std::vector<io::SegmentDescription> two = {{"Lesion", 1, {{255, 0, 0}}},
                                                   {"Organ", 2, {{0, 255, 0}}}};
  const std::string bad = (dir.path / "missing" / "out.dcm").string();
  std::string msg;
  CHECK(status_of([&] { io::write_dicom_seg(labels, *source, two, {}, bad); }, &msg) == MV_ERR_IO);
  CHECK(msg.find(bad) != std::string::npos);
  CHECK(msg.find("Secret") == std::string::npos);
  const auto rgb = mvtest::fixture_rgb(32, 32);
  CHECK(status_of([&] { io::write_dicom_secondary_capture(rgb.data(), 32, 32, *source, {}, bad); },
                  &msg) == MV_ERR_IO);
  CHECK(msg.find(bad) != std::string::npos);
  // Value 2 has no description.
  CHECK(status_of([&] {
          io::write_dicom_seg(labels, *source, one, {}, (dir.path / "x.dcm").string());
        }) == MV_ERR_INVALID_ARGUMENT);
}

TEST_CASE("outline overlay: boundary in the segment's colour, interior tinted, background grey",
          "[io][writers][overlay]") {
  Image image(1, 1, 20, 20, medvision::kDefaultMaxValues, "img");
  for (size_t i = 0; i < image.size(); ++i) image.data()[i] = static_cast<float>(i % 50);
  Image labels(1, 1, 20, 20, medvision::kDefaultMaxValues, "labels");
  for (int64_t y = 0; y < 20; ++y)
    for (int64_t x = 0; x < 20; ++x)
      labels.data()[y * 20 + x] = (y >= 5 && y <= 14 && x >= 5 && x <= 14) ? 3.0f : 0.0f;
  const std::vector<io::SegmentDescription> segs = {{"Square", 3, {{0, 200, 255}}}};
  int64_t h = 0, w = 0;
  const auto rgb = io::render_outline_overlay(image, labels, -1, segs, &h, &w);
  REQUIRE(h == 20);
  REQUIRE(w == 20);
  const auto grey = io::grey_slice(image, 0, io::GreyWindow::kPresetOrPercent);
  auto px = [&](int64_t y, int64_t x) { return &rgb[static_cast<size_t>(3 * (y * 20 + x))]; };
  auto is_colour = [&](int64_t y, int64_t x) {
    return px(y, x)[0] == 0 && px(y, x)[1] == 200 && px(y, x)[2] == 255;
  };
  for (int64_t y = 0; y < 20; ++y) {
    for (int64_t x = 0; x < 20; ++x) {
      const bool inside = y >= 5 && y <= 14 && x >= 5 && x <= 14;
      const bool edge = inside && (y == 5 || y == 14 || x == 5 || x == 14);
      CAPTURE(y, x);
      if (edge) {
        CHECK(is_colour(y, x));
      } else if (inside) {
        CHECK_FALSE(is_colour(y, x));
        CHECK(px(y, x)[2] >= px(y, x)[0]);  // tinted towards the colour
      } else {
        const auto g =
            static_cast<uint8_t>(std::lround(255.0f * grey[static_cast<size_t>(y * 20 + x)]));
        CHECK((px(y, x)[0] == g && px(y, x)[1] == g && px(y, x)[2] == g));
      }
    }
  }
}
