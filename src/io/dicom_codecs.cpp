#include "io/dicom_codecs.hpp"

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcobject.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/oflog/appender.h>
#include <dcmtk/oflog/logger.h>
#include <dcmtk/oflog/oflog.h>
#include <dcmtk/oflog/spi/logevent.h>
#include <openjpeg.h>

#include <charls/charls.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "common/error.hpp"

namespace medvision::io::dicom {
namespace {

const char kPixelTag[] = "(7FE0,0010) PixelData";

// ---- OpenJPEG memory stream -------------------------------------------------------------------

struct MemoryReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

OPJ_SIZE_T mem_read(void* buffer, OPJ_SIZE_T n, void* user) {
  auto* r = static_cast<MemoryReader*>(user);
  if (r->pos >= r->size) return static_cast<OPJ_SIZE_T>(-1);
  const size_t k = std::min<size_t>(n, r->size - r->pos);
  std::memcpy(buffer, r->data + r->pos, k);
  r->pos += k;
  return k;
}

OPJ_OFF_T mem_skip(OPJ_OFF_T n, void* user) {
  auto* r = static_cast<MemoryReader*>(user);
  if (n < 0) {
    const auto back = std::min<size_t>(static_cast<size_t>(-n), r->pos);
    r->pos -= back;
    return -static_cast<OPJ_OFF_T>(back);
  }
  const size_t k = std::min<size_t>(static_cast<size_t>(n), r->size - std::min(r->pos, r->size));
  r->pos += k;
  return static_cast<OPJ_OFF_T>(k);
}

OPJ_BOOL mem_seek(OPJ_OFF_T n, void* user) {
  auto* r = static_cast<MemoryReader*>(user);
  if (n < 0 || static_cast<uint64_t>(n) > r->size) return OPJ_FALSE;
  r->pos = static_cast<size_t>(n);
  return OPJ_TRUE;
}

// OpenJPEG reports through callbacks; keep the first error for our message, print nothing.
void on_error(const char* msg, void* user) {
  auto* first = static_cast<std::string*>(user);
  if (first->empty() && msg != nullptr) {
    *first = msg;
    while (!first->empty() && (first->back() == '\n' || first->back() == '\r')) first->pop_back();
  }
}
void on_quiet(const char*, void*) {}

struct CodecDeleter {
  void operator()(opj_codec_t* c) const { opj_destroy_codec(c); }
};
struct StreamDeleter {
  void operator()(opj_stream_t* s) const { opj_stream_destroy(s); }
};
struct ImageDeleter {
  void operator()(opj_image_t* i) const { opj_image_destroy(i); }
};

bool is_jp2(const uint8_t* d, size_t n) {
  static const uint8_t kSig[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 0x0d, 0x0a, 0x87, 0x0a};
  return n >= 12 && std::memcmp(d, kSig, 12) == 0;
}

bool starts_codestream(const uint8_t* d, size_t n) {
  return (n >= 4 && d[0] == 0xff && d[1] == 0x4f && d[2] == 0xff && d[3] == 0x51) || is_jp2(d, n);
}

// JPEG (ISO 10918) and JPEG-LS (ISO 14495) codestreams both begin with SOI, FF D8.
bool starts_jpeg(const uint8_t* d, size_t n) { return n >= 2 && d[0] == 0xff && d[1] == 0xd8; }

uint32_t le32(const uint8_t* d) {
  return static_cast<uint32_t>(d[0]) | static_cast<uint32_t>(d[1]) << 8 |
         static_cast<uint32_t>(d[2]) << 16 | static_cast<uint32_t>(d[3]) << 24;
}

// An RLE frame starts with a 64-byte header (PS3.5 G.5): the number of segments (1..15), then
// each segment's offset; the first is 64 and they increase within the frame. Empty when valid.
std::string rle_header_problem(const uint8_t* d, size_t n) {
  if (n < 64) return fmt::format("is {} bytes, shorter than the 64-byte RLE header", n);
  const uint32_t count = le32(d);
  if (count < 1 || count > 15) {
    return fmt::format("has an RLE header declaring {} segments (1 to 15 allowed)", count);
  }
  uint32_t previous = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t off = le32(d + 4 + 4 * i);
    if ((i == 0 && off != 64) || (i > 0 && off <= previous) || off >= n) {
      return fmt::format(
          "has an RLE header whose segment {} offset {} is not within the {}-byte frame", i + 1,
          off, n);
    }
    previous = off;
  }
  return {};
}

std::string first_bytes(const uint8_t* d, size_t n) {
  std::string out;
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02X", d[i]);
    out += (i ? " " : "") + std::string(buf);
  }
  return out.empty() ? "none" : out;
}

// DCMTK 3.6.7's DJCodecDecoder::scanJpegDataForBitDepth walks a JPEG frame's markers to its frame
// header and never moves past a TEM marker (FF 01): it loops for ever (found by fuzzing: a JPEG-LS
// codestream under a JPEG Baseline transfer syntax whose LSE marker had become FF FF FF FF 01,
// tests/fuzz/regressions/load_dicom/jpeg-tem-marker-loops-dcmtk.dcm). This is its walk; true when
// it would reach a TEM marker.
bool dcmtk_bit_depth_scan_stalls(const uint8_t* d, size_t n) {
  const auto u16 = [d](size_t i) { return static_cast<unsigned>(d[i] << 8 | d[i + 1]); };
  size_t off = 0;
  while (off + 4 < n) {
    const unsigned m = u16(off);
    if (m == 0xff01) return true;
    const bool sof = m >= 0xffc0 && m <= 0xffcf && m != 0xffc4 && m != 0xffc8 && m != 0xffcc;
    if (sof) return false;  // it has its bit depth
    if ((m >= 0xffd0 && m <= 0xffd9) || (m >= 0xff03 && m <= 0xffbf)) {
      off += 2;  // RSTn, SOI, EOI; reserved markers FF 03 .. FF BF
    } else if (m == 0xffc4 || m == 0xffc8 || m == 0xffcc || (m >= 0xffda && m <= 0xfffe)) {
      off += u16(off + 2) + 2;  // a segment with a length
    } else if (m == 0xffff) {
      off += 1;  // fill byte
    } else {
      return false;  // not a marker: it stops
    }
  }
  return false;
}

void check_components(const opj_image_t& img, int64_t rows, int64_t cols, int64_t samples,
                      const std::string& name) {
  const auto w = static_cast<int64_t>(img.x1 - img.x0), h = static_cast<int64_t>(img.y1 - img.y0);
  // OpenJPEG allocates every component: more than the header's samples plus an alpha channel
  // is refused before decoding (a header may declare up to 16384 components).
  if (w != cols || h != rows || static_cast<int64_t>(img.numcomps) < samples ||
      static_cast<int64_t>(img.numcomps) > samples + 1) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: {} JPEG 2000 codestream is {}x{} with {} components, the header "
                            "says {}x{} with {}",
                            name, kPixelTag, w, h, img.numcomps, cols, rows, samples));
  }
}

// ---- damaged JPEG data ------------------------------------------------------------------------

// DCMTK's IJG decoders report damaged entropy-coded data ("Corrupt JPEG data: premature end of
// data segment", "... bad Huffman code", "Premature end of JPEG file") as log warnings and return
// success with partly invented pixels. This appender, on the dcmtk.dcmjpeg logger only, records
// the first such warning for the decode running on the same thread (logging is synchronous), so
// that decode_with_dcmtk can refuse the frame. Found by tests/fuzz/dicom_differential.py.
thread_local std::string* tls_jpeg_problem = nullptr;

class CorruptJpegAppender : public dcmtk::log4cplus::Appender {
 public:
  ~CorruptJpegAppender() override { destructorImpl(); }
  void close() override {}

 protected:
  void append(const dcmtk::log4cplus::spi::InternalLoggingEvent& event) override {
    std::string* problem = tls_jpeg_problem;
    if (problem == nullptr || !problem->empty()) return;
    const std::string msg(event.getMessage().c_str());
    if (msg.rfind("Corrupt JPEG data", 0) == 0 || msg.rfind("Premature end of JPEG", 0) == 0) {
      *problem = msg;
    }
  }
};

}  // namespace

JpegProblemScope::JpegProblemScope(std::string* problem) : previous_(tls_jpeg_problem) {
  tls_jpeg_problem = problem;
}

JpegProblemScope::~JpegProblemScope() { tls_jpeg_problem = previous_; }

void ensure_dcmtk_ready() {
  static std::once_flag once;
  std::call_once(once, [] {
    // A library never prints (STYLE.md B1.10): DCMTK logs warnings to stderr unless told not to.
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    // A wrong (0002,0000) File Meta Information Group Length (too long or too short, seen on a
    // JPEG-LS ultrasound file, issue 19) made DCMTK lose its place ("Invalid tag"). Read the meta
    // group element by element while the group is 0002, as pydicom does. Process-wide DCMTK
    // setting; it only makes reading more lenient.
    dcmIgnoreFileMetaInformationGroupLength.set(OFTrue);
    // Warnings of the JPEG decoders go to CorruptJpegAppender only (not to the console).
    dcmtk::log4cplus::Logger jpeg = dcmtk::log4cplus::Logger::getInstance("dcmtk.dcmjpeg");
    jpeg.setLogLevel(dcmtk::log4cplus::WARN_LOG_LEVEL);
    jpeg.setAdditivity(false);
    jpeg.addAppender(dcmtk::log4cplus::SharedAppenderPtr(new CorruptJpegAppender));
    DJDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

bool codec_family(const std::string& uid, CodecFamily& out) {
  static const std::pair<const char*, CodecFamily> kFamilies[] = {
      {"1.2.840.10008.1.2.4.50", CodecFamily::kJpeg},    // baseline
      {"1.2.840.10008.1.2.4.51", CodecFamily::kJpeg},    // extended
      {"1.2.840.10008.1.2.4.53", CodecFamily::kJpeg},    // spectral selection
      {"1.2.840.10008.1.2.4.55", CodecFamily::kJpeg},    // progressive
      {"1.2.840.10008.1.2.4.57", CodecFamily::kJpeg},    // lossless
      {"1.2.840.10008.1.2.4.70", CodecFamily::kJpeg},    // lossless SV1
      {"1.2.840.10008.1.2.4.80", CodecFamily::kJpegLs},  // JPEG-LS lossless
      {"1.2.840.10008.1.2.4.81", CodecFamily::kJpegLs},  // JPEG-LS near-lossless
      {"1.2.840.10008.1.2.5", CodecFamily::kRle},
      {"1.2.840.10008.1.2.4.90", CodecFamily::kJ2k},   // JPEG 2000 lossless
      {"1.2.840.10008.1.2.4.91", CodecFamily::kJ2k},   // JPEG 2000
      {"1.2.840.10008.1.2.4.201", CodecFamily::kJ2k},  // HTJ2K lossless
      {"1.2.840.10008.1.2.4.202", CodecFamily::kJ2k},  // HTJ2K lossless RPCL
      {"1.2.840.10008.1.2.4.203", CodecFamily::kJ2k},  // HTJ2K
  };
  for (const auto& [u, family] : kFamilies) {
    if (uid == u) {
      out = family;
      return true;
    }
  }
  return false;
}

std::string transfer_syntax_label(const std::string& uid) {
  const DcmXfer xfer(uid.c_str());
  if (xfer.getXfer() == EXS_Unknown) return uid;
  return std::string(xfer.getXferName()) + " (" + uid + ")";
}

// ---- FrameIndex -------------------------------------------------------------------------------

FrameIndex::FrameIndex(DcmDataset& dataset, DcmPixelSequence& sequence, int64_t frames,
                       CodecFamily family, const std::string& transfer_syntax,
                       const std::string& name)
    : family_(family), transfer_syntax_(transfer_syntax), name_(name) {
  std::vector<uint64_t> offsets;
  const unsigned long items = sequence.card();
  uint64_t offset = 0;
  for (unsigned long i = 0; i < items; ++i) {
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    if (sequence.getItem(item, i).bad() || item == nullptr) break;
    const Uint32 len = item->getLength();
    if (len > 0 && (item->getUint8Array(bytes).bad() || bytes == nullptr)) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{}: {} fragment {} is unreadable", name, kPixelTag, i));
    }
    if (i == 0) {  // the Basic Offset Table, possibly empty
      for (Uint32 k = 0; k + 4 <= len; k += 4) {
        uint32_t v;
        std::memcpy(&v, bytes + k, 4);
        offsets.push_back(v);
      }
      continue;
    }
    fragments_.push_back({bytes, len, offset});
    offset += uint64_t{8} + len;
  }
  if (fragments_.empty()) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": " + kPixelTag + " has no fragments");
  }
  DcmElement* eot = nullptr;
  Uint64* eot_values = nullptr;
  if (dataset.findAndGetElement(DCM_ExtendedOffsetTable, eot).good() && eot != nullptr &&
      eot->getUint64Array(eot_values).good() && eot_values != nullptr) {
    offsets.assign(eot_values, eot_values + eot->getLength() / 8);
  }
  const auto n = static_cast<size_t>(frames);
  if (n == 1) {
    first_ = {0, fragments_.size()};
  } else if (offsets.size() == n && index_from_offsets(offsets)) {
  } else if (fragments_.size() == n) {
    for (size_t i = 0; i <= n; ++i) first_.push_back(i);
  } else if (fragments_.size() < n) {
    throw Error(MV_ERR_CORRUPT_DATA, fmt::format("{}: {} has {} fragments for {} frames", name,
                                                 kPixelTag, fragments_.size(), frames));
  } else if (family_ == CodecFamily::kRle) {
    // RLE frames carry no start marker; any guess could decode wrong pixels silently.
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: {} ({}) has {} fragments for {} frames and no usable Basic or "
                            "Extended Offset Table, so the frame boundaries cannot be known",
                            name, kPixelTag, transfer_syntax_label(transfer_syntax),
                            fragments_.size(), frames));
  } else {
    index_by_markers();
    if (first_.size() != n + 1) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{}: {} ({}) has {} fragments for {} frames, no usable Basic or "
                              "Extended Offset Table, and {} fragments that start a codestream",
                              name, kPixelTag, transfer_syntax_label(transfer_syntax),
                              fragments_.size(), frames, first_.size() - 1));
    }
  }
}

bool FrameIndex::index_from_offsets(const std::vector<uint64_t>& offsets) {
  first_.clear();
  size_t f = 0;
  for (uint64_t off : offsets) {
    while (f < fragments_.size() && fragments_[f].offset < off) ++f;
    if (f == fragments_.size() || fragments_[f].offset != off) return false;
    if (!first_.empty() && f <= first_.back()) return false;
    first_.push_back(f);
  }
  if (first_.empty() || first_.front() != 0) return false;
  first_.push_back(fragments_.size());
  return true;
}

void FrameIndex::index_by_markers() {
  first_.clear();
  for (size_t f = 0; f < fragments_.size(); ++f) {
    const uint8_t* d = fragments_[f].data;
    const size_t n = fragments_[f].size;
    // A fragment may hold as little as the 2-byte SOC marker of a split J2K codestream.
    const bool soc_only = n == 2 && d[0] == 0xff && d[1] == 0x4f;
    if (family_ == CodecFamily::kJ2k ? starts_codestream(d, n) || soc_only : starts_jpeg(d, n)) {
      first_.push_back(f);
    }
  }
  if (first_.empty() || first_.front() != 0) first_.insert(first_.begin(), 0);
  first_.push_back(fragments_.size());
}

FrameBytes FrameIndex::frame(int64_t index) const {
  const auto i = static_cast<size_t>(index);
  const size_t begin = first_[i], end = first_[i + 1];
  FrameBytes out;
  if (end - begin == 1) {
    out.data = fragments_[begin].data;
    out.size = fragments_[begin].size;
    check_start(out, index);
    return out;
  }
  size_t total = 0;
  for (size_t f = begin; f < end; ++f) total += fragments_[f].size;
  out.joined.reserve(total);
  for (size_t f = begin; f < end; ++f) {
    out.joined.insert(out.joined.end(), fragments_[f].data,
                      fragments_[f].data + fragments_[f].size);
  }
  out.data = out.joined.data();
  out.size = out.joined.size();
  check_start(out, index);
  return out;
}

void check_codestream_size(const FrameBytes& bytes, CodecFamily family, int64_t rows, int64_t cols,
                           int64_t samples, int64_t index, const std::string& transfer_syntax,
                           const std::string& name) {
  if (family != CodecFamily::kJpeg && family != CodecFamily::kJpegLs) return;
  const uint8_t* d = bytes.data;
  const size_t n = bytes.size;
  if (family == CodecFamily::kJpeg && dcmtk_bit_depth_scan_stalls(d, n)) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: frame {} of {} ({}) has a TEM marker (FF 01) before its frame "
                            "header, which the JPEG decoder (DCMTK 3.6.7) cannot get past",
                            name, index, kPixelTag, transfer_syntax_label(transfer_syntax)));
  }
  size_t i = 2;  // after SOI (checked by FrameIndex::frame)
  while (i + 4 <= n) {
    if (d[i] != 0xff) return;  // not a marker: the decoder will say what is wrong
    const uint8_t m = d[i + 1];
    if (m == 0xff) {  // fill byte
      ++i;
      continue;
    }
    if (m == 0x01 || (m >= 0xd0 && m <= 0xd8)) {  // markers without a length
      i += 2;
      continue;
    }
    const bool sof = (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) || m == 0xf7;
    if (sof && i + 10 <= n) {
      const int64_t y = d[i + 5] << 8 | d[i + 6], x = d[i + 7] << 8 | d[i + 8], nf = d[i + 9];
      // The decoders size their buffers from these values: a codestream claiming more than the
      // header (a decompression bomb, or a mismatch that would leave pixels unwritten) is
      // refused before any decoding. Height 0 (defined by a later DNL marker) is refused too.
      if (x != cols || y != rows || nf != samples) {
        throw Error(MV_ERR_CORRUPT_DATA,
                    fmt::format("{}: frame {} of {} ({}) is a {}x{} codestream with {} components; "
                                "the header says {}x{} with {}",
                                name, index, kPixelTag, transfer_syntax_label(transfer_syntax), x,
                                y, nf, cols, rows, samples));
      }
      return;
    }
    if (m == 0xda) return;  // start of scan before any frame header: the decoder refuses it
    i += 2 + static_cast<size_t>(d[i + 2] << 8 | d[i + 3]);
  }
}

void FrameIndex::check_start(const FrameBytes& bytes, int64_t index) const {
  std::string problem;
  switch (family_) {
    case CodecFamily::kJpeg:
    case CodecFamily::kJpegLs:
      if (!starts_jpeg(bytes.data, bytes.size)) {
        problem = std::string("holds no ") + (family_ == CodecFamily::kJpeg ? "JPEG" : "JPEG-LS") +
                  " codestream (no SOI marker FF D8 at its start; it starts " +
                  first_bytes(bytes.data, bytes.size) + ")";
      }
      break;
    case CodecFamily::kJ2k:
      if (!starts_codestream(bytes.data, bytes.size)) {
        problem =
            "holds no JPEG 2000 codestream (no SOC marker FF 4F FF 51 or JP2 signature at "
            "its start; it starts " +
            first_bytes(bytes.data, bytes.size) + ")";
      }
      break;
    case CodecFamily::kRle: {
      const std::string rle = rle_header_problem(bytes.data, bytes.size);
      if (!rle.empty()) problem = "holds no RLE frame: it " + rle;
      break;
    }
  }
  if (!problem.empty()) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{}: the transfer syntax is {} but frame {} of {} {}", name_,
                            transfer_syntax_label(transfer_syntax_), index, kPixelTag, problem));
  }
}

// ---- JPEG 2000 --------------------------------------------------------------------------------

J2kFrame decode_j2k(const uint8_t* data, size_t size, int64_t rows, int64_t cols, int64_t samples,
                    const std::string& name) {
  MemoryReader reader{data, size, 0};
  std::unique_ptr<opj_stream_t, StreamDeleter> stream(opj_stream_create(1 << 16, OPJ_TRUE));
  std::unique_ptr<opj_codec_t, CodecDeleter> codec(
      opj_create_decompress(is_jp2(data, size) ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K));
  if (!stream || !codec) throw Error(MV_ERR_OUT_OF_MEMORY, name + ": cannot start OpenJPEG");
  opj_stream_set_user_data(stream.get(), &reader, nullptr);
  opj_stream_set_user_data_length(stream.get(), size);
  opj_stream_set_read_function(stream.get(), mem_read);
  opj_stream_set_skip_function(stream.get(), mem_skip);
  opj_stream_set_seek_function(stream.get(), mem_seek);

  std::string error;
  opj_set_error_handler(codec.get(), on_error, &error);
  opj_set_warning_handler(codec.get(), on_quiet, nullptr);
  opj_set_info_handler(codec.get(), on_quiet, nullptr);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  auto fail = [&](const char* stage) {
    return Error(MV_ERR_CORRUPT_DATA, name + ": " + kPixelTag + " JPEG 2000 " + stage + " failed" +
                                          (error.empty() ? "" : " (" + error + ")"));
  };
  if (!opj_setup_decoder(codec.get(), &params)) throw fail("set-up");
  // J2K decoding dominates large radiographs; OpenJPEG decodes code-blocks in parallel.
  if (opj_has_thread_support()) {
    const unsigned cores = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
    opj_codec_set_threads(codec.get(), static_cast<int>(cores));
  }

  opj_image_t* raw = nullptr;
  if (!opj_read_header(stream.get(), codec.get(), &raw)) throw fail("header");
  std::unique_ptr<opj_image_t, ImageDeleter> image(raw);
  // Check the size before OpenJPEG allocates the tile buffers.
  check_components(*image, rows, cols, samples, name);
  if (!opj_decode(codec.get(), stream.get(), image.get()) ||
      !opj_end_decompress(codec.get(), stream.get())) {
    throw fail("decode");
  }

  J2kFrame out;
  out.samples = samples;
  const auto plane = static_cast<size_t>(rows * cols);
  out.planes.resize(plane * static_cast<size_t>(samples));
  for (int64_t c = 0; c < samples; ++c) {
    const opj_image_comp_t& comp = image->comps[c];
    if (comp.data == nullptr || comp.w != static_cast<OPJ_UINT32>(cols) ||
        comp.h != static_cast<OPJ_UINT32>(rows) || comp.dx != 1 || comp.dy != 1) {
      throw Error(MV_ERR_UNSUPPORTED_FORMAT,
                  fmt::format("{}: {} JPEG 2000 component {} is subsampled or incomplete", name,
                              kPixelTag, c));
    }
    std::memcpy(out.planes.data() + static_cast<size_t>(c) * plane, comp.data,
                plane * sizeof(int32_t));
  }
  return out;
}

// ---- JPEG-LS -----------------------------------------------------------------------------------

JlsFrame decode_jpegls(const uint8_t* data, size_t size, int64_t rows, int64_t cols,
                       int64_t samples, int bits_allocated, int64_t index,
                       const std::string& transfer_syntax, const std::string& name,
                       std::vector<uint8_t>& buffer) {
  const auto where = [&] {
    return fmt::format("{}: frame {} of {} ({})", name, index, kPixelTag,
                       transfer_syntax_label(transfer_syntax));
  };
  try {
    charls::jpegls_decoder decoder;
    decoder.source(data, size);
    decoder.read_header();  // SPIFF header (if any) and the markers up to the first scan
    const charls::frame_info& info = decoder.frame_info();
    // CharLS sizes nothing until decode(), and we size the buffer from these values: a frame
    // header that disagrees with the DICOM header (a decompression bomb, or a mismatch that
    // would leave pixels unwritten or misplaced) is refused here.
    if (static_cast<int64_t>(info.width) != cols || static_cast<int64_t>(info.height) != rows ||
        static_cast<int64_t>(info.component_count) != samples) {
      throw Error(
          MV_ERR_CORRUPT_DATA,
          fmt::format("{} is a {}x{} codestream with {} components; the header says {}x{} "
                      "with {}",
                      where(), info.width, info.height, info.component_count, cols, rows, samples));
    }
    if (info.bits_per_sample > bits_allocated) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{} holds {}-bit samples, more than (0028,0100) BitsAllocated {}",
                              where(), info.bits_per_sample, bits_allocated));
    }
    // CharLS 2.4 needs the EOI marker after the last scan and refuses a codestream without one,
    // but only once its scan data has run out: scan data of one zero byte and no EOI kept it
    // busy for 20 s (any image size) before it failed (found by fuzzing, tests/fuzz/
    // regressions/load_dicom/jpeg-ls_one-byte-scan_no-eoi.dcm). Refused here at once. Bytes
    // 00 or FF after the EOI (padding to an even length: pylibjpeg-data's CT1_JLSN.dcm ends
    // FF D9 FF) are allowed.
    size_t end = size;
    while (end > 0 && (data[end - 1] == 0 || data[end - 1] == 0xff)) --end;
    if (end < 4 || data[end - 2] != 0xff || data[end - 1] != 0xd9) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{} does not end with an EOI marker (FF D9): the JPEG-LS codestream "
                              "is truncated",
                              where()));
    }
    JlsFrame out;
    out.bytes_per_sample = info.bits_per_sample <= 8 ? 1 : 2;
    out.planar = samples > 1 && decoder.interleave_mode() == charls::interleave_mode::none;
    out.size =
        static_cast<size_t>(rows * cols * samples) * static_cast<size_t>(out.bytes_per_sample);
    if (decoder.destination_size() != out.size) {
      throw Error(MV_ERR_INTERNAL, fmt::format("{}: CharLS wants {} bytes, {} expected", where(),
                                               decoder.destination_size(), out.size));
    }
    if (buffer.size() < out.size) buffer.resize(out.size);
    decoder.decode(buffer.data(), out.size);
    return out;
  } catch (const charls::jpegls_error& e) {
    throw Error(MV_ERR_CORRUPT_DATA,
                fmt::format("{} is not a valid JPEG-LS codestream (CharLS reports: {})", where(),
                            e.what()));
  }
}

}  // namespace medvision::io::dicom
