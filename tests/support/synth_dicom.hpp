#pragma once
// Small synthetic DICOM files built with DCMTK, a self-removing temporary folder, and the status
// of a call that throws medvision::Error: shared by the io unit tests.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/io.hpp"

namespace mvtest {

namespace fs = std::filesystem;

// A minimal single-frame MONOCHROME2 image; tests adjust it before saving.
struct Synth {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();

  Synth(uint16_t rows, uint16_t cols, int bits_stored, bool is_signed) {
    ds.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4.5.1");
    ds.putAndInsertString(DCM_SeriesInstanceUID, "1.2.3.4.5");
    ds.putAndInsertString(DCM_StudyInstanceUID, "1.2.3.4");
    ds.putAndInsertString(DCM_PatientName, "Secret^Patient");
    ds.putAndInsertString(DCM_Modality, "CT");
    ds.putAndInsertUint16(DCM_Rows, rows);
    ds.putAndInsertUint16(DCM_Columns, cols);
    ds.putAndInsertUint16(DCM_SamplesPerPixel, 1);
    ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
    ds.putAndInsertUint16(DCM_BitsAllocated, 16);
    ds.putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(bits_stored));
    ds.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(bits_stored - 1));
    ds.putAndInsertUint16(DCM_PixelRepresentation, is_signed ? 1 : 0);
  }
  void pixels(const std::vector<uint16_t>& v) {
    ds.putAndInsertUint16Array(DCM_PixelData, v.data(), static_cast<unsigned long>(v.size()));
  }
  void position(double z) {
    ds.putAndInsertString(DCM_ImagePositionPatient, ("0\\0\\" + std::to_string(z)).c_str());
    ds.putAndInsertString(DCM_ImageOrientationPatient, "1\\0\\0\\0\\1\\0");
    ds.putAndInsertString(DCM_PixelSpacing, "0.5\\0.25");
  }
  std::string save(const fs::path& path) {
    REQUIRE(file.saveFile(path.string().c_str(), EXS_LittleEndianExplicit).good());
    return path.string();
  }
  std::vector<uint8_t> bytes() {
    const std::string p = (fs::temp_directory_path() / "mv_dicom_bytes.dcm").string();
    save(p);
    std::vector<uint8_t> b = medvision::io::read_whole_file(p, 1 << 30);
    fs::remove(p);
    return b;
  }
};

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(fs::temp_directory_path() / name) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

inline mv_status status_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const medvision::Error& e) {
    if (message) *message = e.what();
    return e.status();
  }
  return MV_OK;
}

}  // namespace mvtest
