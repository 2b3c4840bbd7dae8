#pragma once
// Codec plumbing for DICOM: one-time DCMTK set-up (silent logging, codec registration),
// JPEG 2000 / HTJ2K decoding of encapsulated frames through OpenJPEG and JPEG-LS decoding
// through CharLS 2.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

class DcmDataset;
class DcmPixelSequence;

namespace medvision::io::dicom {

// Silences DCMTK's oflog and registers the JPEG and RLE decoders. Thread-safe; cheap
// after the first call. DCMTK's codec registry is process-global, hence std::call_once.
void ensure_dcmtk_ready();

// One frame's compressed bytes: a view of a single fragment, or `joined` when it spans several.
struct FrameBytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  std::vector<uint8_t> joined;
};

// The codestream an encapsulated transfer syntax promises, for finding frame boundaries and for
// checking that a frame holds what the transfer syntax says.
enum class CodecFamily { kJpeg, kJpegLs, kRle, kJ2k };

// The family of an encapsulated transfer syntax medvision decodes; false for any other UID.
bool codec_family(const std::string& transfer_syntax, CodecFamily& out);

// "JPEG Baseline (1.2.840.10008.1.2.4.50)": the UID with DCMTK's name for it, for messages.
std::string transfer_syntax_label(const std::string& uid);

// Splits encapsulated pixel data into frames (PS3.5 A.4): a single frame is every fragment;
// otherwise the Extended Offset Table, else the Basic Offset Table, else one fragment per frame,
// else the codestream's start markers (JPEG / JPEG-LS SOI, JPEG 2000 SOC or JP2 signature). RLE
// has no start marker: a multi-frame RLE value with more fragments than frames and no usable
// offset table is refused (MV_ERR_CORRUPT_DATA) rather than guessed.
// frame() checks that the frame starts like the family's codestream (an SOI marker, a JPEG 2000
// SOC marker or JP2 signature, a consistent RLE header) and refuses it otherwise, naming the file,
// the transfer syntax and the frame: a JPEG file whose fragment holds raw pixels is corrupt, not
// something to guess at.
class FrameIndex {
 public:
  FrameIndex(DcmDataset& dataset, DcmPixelSequence& sequence, int64_t frames, CodecFamily family,
             const std::string& transfer_syntax, const std::string& name);
  FrameBytes frame(int64_t index) const;

 private:
  struct Fragment {
    const uint8_t* data;
    size_t size;
    uint64_t offset;  // from the first fragment's item tag, as offset tables count
  };
  bool index_from_offsets(const std::vector<uint64_t>& offsets);
  void index_by_markers();
  void check_start(const FrameBytes& bytes, int64_t index) const;

  std::vector<Fragment> fragments_;
  std::vector<size_t> first_;  // first fragment of each frame, plus fragments_.size()
  CodecFamily family_;
  std::string transfer_syntax_;
  std::string name_;
};

// Refuses a JPEG or JPEG-LS frame whose frame header (SOFn / SOF55) disagrees with the DICOM
// header's Rows, Columns and SamplesPerPixel, before DCMTK's decoder sizes its buffers from it.
void check_codestream_size(const FrameBytes& bytes, CodecFamily family, int64_t rows, int64_t cols,
                           int64_t samples, int64_t index, const std::string& transfer_syntax,
                           const std::string& name);

// While alive, the JPEG decoders' warnings about damaged data on this thread are written to
// *problem (the first one). Nests.
class JpegProblemScope {
 public:
  explicit JpegProblemScope(std::string* problem);
  ~JpegProblemScope();
  JpegProblemScope(const JpegProblemScope&) = delete;
  JpegProblemScope& operator=(const JpegProblemScope&) = delete;

 private:
  std::string* previous_;
};

// A decoded JPEG 2000 frame: `samples` planes of int32 values, rows * cols each.
struct J2kFrame {
  std::vector<int32_t> planes;
  int64_t samples = 0;
};

// Decodes a J2K codestream or JP2 file with OpenJPEG and checks it against the header.
J2kFrame decode_j2k(const uint8_t* data, size_t size, int64_t rows, int64_t cols, int64_t samples,
                    const std::string& name);

// A decoded JPEG-LS frame: rows * cols * samples values of bytes_per_sample bytes each (1 for
// a codestream of at most 8 bits per sample, else 2, host order), planes one after the other when
// the codestream's interleave mode is "none" (planar), else pixel by pixel (CharLS writes line-
// and sample-interleaved scans pixel by pixel).
struct JlsFrame {
  int bytes_per_sample = 0;
  bool planar = false;
  size_t size = 0;
};

// Decodes frame `index` (a JPEG-LS codestream) with CharLS into `buffer` (grown when needed, so
// a caller can reuse it for every frame). The frame header is checked against Rows, Columns,
// SamplesPerPixel and BitsAllocated before anything is allocated; a mismatch or damaged data
// (CharLS's jpegls_error) is MV_ERR_CORRUPT_DATA naming the file, the pixel tag, the frame and
// the problem.
JlsFrame decode_jpegls(const uint8_t* data, size_t size, int64_t rows, int64_t cols,
                       int64_t samples, int bits_allocated, int64_t index,
                       const std::string& transfer_syntax, const std::string& name,
                       std::vector<uint8_t>& buffer);

}  // namespace medvision::io::dicom
