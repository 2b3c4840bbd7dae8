#pragma once
// Codec plumbing for DICOM: one-time DCMTK set-up (silent logging, codec registration) and
// JPEG 2000 / HTJ2K decoding of encapsulated frames through OpenJPEG.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

class DcmDataset;
class DcmPixelSequence;

namespace medvision::io::dicom {

// Silences DCMTK's oflog and registers the JPEG, JPEG-LS and RLE decoders. Thread-safe; cheap
// after the first call. DCMTK's codec registry is process-global, hence std::call_once.
void ensure_dcmtk_ready();

// One frame's compressed bytes: a view of a single fragment, or `joined` when it spans several.
struct FrameBytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::vector<uint8_t> joined;
};

// Splits encapsulated pixel data into frames (PS3.5 A.4): the Extended Offset Table, else the
// Basic Offset Table, else one fragment per frame, else JPEG 2000 start-of-codestream markers.
class FrameIndex {
 public:
  FrameIndex(DcmDataset& dataset, DcmPixelSequence& sequence, int64_t frames,
             const std::string& name);
  FrameBytes frame(int64_t index) const;

 private:
  struct Fragment {
    const uint8_t* data;
    size_t size;
    uint64_t offset;  // from the first fragment's item tag, as offset tables count
  };
  bool index_from_offsets(const std::vector<uint64_t>& offsets);
  void index_by_markers();

  std::vector<Fragment> fragments_;
  std::vector<size_t> first_;  // first fragment of each frame, plus fragments_.size()
  std::string name_;
};

// A decoded JPEG 2000 frame: `samples` planes of int32 values, rows * cols each.
struct J2kFrame {
  std::vector<int32_t> planes;
  int64_t samples = 0;
};

// Decodes a J2K codestream or JP2 file with OpenJPEG and checks it against the header.
J2kFrame decode_j2k(const uint8_t* data, size_t size, int64_t rows, int64_t cols, int64_t samples,
                    const std::string& name);

}  // namespace medvision::io::dicom
