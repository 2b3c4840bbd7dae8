// DICOM pixel data to float32 planes: native (uncompressed) values are read in place; JPEG and
// RLE frames are decompressed by DCMTK one frame at a time; JPEG-LS frames by CharLS 2, JPEG 2000
// and HTJ2K frames by OpenJPEG (dicom_codecs.cpp). The value mapping (masking, sign, colour, LUTs)
// is dicom_pixels.cpp's ValueMapper.

#include <dcmtk/config/osconfig.h>  // must precede the other DCMTK headers
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfcache.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/parallel.hpp"
#include "io/dicom_codecs.hpp"
#include "io/dicom_dataset.hpp"
#include "io/dicom_reader.hpp"

namespace medvision::io::dicom {
namespace {

DcmTagKey pixel_tag(const PixelModule& pm, DcmDataset& ds) {
  if (!pm.is_float) return DCM_PixelData;
  return ds.tagExists(DCM_FloatPixelData) ? DCM_FloatPixelData : DCM_DoubleFloatPixelData;
}

const char* pixel_tag_label(const DcmTagKey& tag) {
  if (tag == DCM_FloatPixelData) return "(7FE0,0008) FloatPixelData";
  if (tag == DCM_DoubleFloatPixelData) return "(7FE0,0009) DoubleFloatPixelData";
  return "(7FE0,0010) PixelData";
}

// The value as bytes in host (little endian) order, whatever its VR (OB/OW/OF/OD).
OFCondition raw_bytes(DcmElement& e, Uint8*& bytes) {
  if (e.getVR() == EVR_OF) {
    Float32* f = nullptr;
    const OFCondition c = e.getFloat32Array(f);
    bytes = reinterpret_cast<Uint8*>(f);
    return c;
  }
  if (e.getVR() == EVR_OD) {
    Float64* d = nullptr;
    const OFCondition c = e.getFloat64Array(d);
    bytes = reinterpret_cast<Uint8*>(d);
    return c;
  }
  return e.getUint8Array(bytes);
}

// DCMTK swaps big endian OW data in 16-bit words, which is right for 8- and 16-bit samples (an OW
// value is a sequence of words) but leaves each 32-bit sample with its halves exchanged.
// An OB value is a byte stream: DCMTK leaves it in file order, so 16- and 32-bit samples stored
// as OB in a big endian file (pydicom-data SC_rgb_expb_16bit.dcm) are still big endian here.
// Found by tests/fuzz/dicom_differential.py: that file's samples are all 0000 or FFFF, so only a
// mutated copy showed the byte order was never fixed.
void fix_big_endian(uint8_t* bytes, size_t size, const PixelModule& pm, DcmElement& e) {
  if (e.getVR() == EVR_OB && pm.bits_allocated >= 16 && !pm.is_float) {
    const size_t w = static_cast<size_t>(pm.bits_allocated / 8);
    for (size_t i = 0; i + w <= size; i += w) std::reverse(bytes + i, bytes + i + w);
    return;
  }
  if (e.getVR() != EVR_OW || pm.bits_allocated != 32) return;
  for (size_t i = 0; i + 3 < size; i += 4) {
    std::swap(bytes[i], bytes[i + 2]);
    std::swap(bytes[i + 1], bytes[i + 3]);
  }
}

// The cheapest path for the commonest native data (one sample per pixel, 8/16/32-bit integers,
// little endian, not a palette): when DCMTK left the value on disk (it does for any value over
// DCM_MaxReadLength), read just the wanted frames in pieces of kPieceBytes into a buffer that
// stays in cache and convert each piece straight into the image. DCMTK would otherwise load
// the whole value into memory first (one more full-size copy, and its page faults). False when
// the value does not qualify; the caller then takes the general path.
bool read_native_in_pieces(DcmElement& e, DcmDataset& ds, const PixelModule& pm,
                           const ValueMapper& mapper, int64_t first, int64_t count, Image& out,
                           int64_t depth_offset, const std::string& name) {
  constexpr size_t kPieceBytes = size_t{256} << 10;
  constexpr size_t kMinPartBytes = size_t{2} << 20;  // below this one thread is quicker
  constexpr size_t kMaxParts = 4;  // memory-bound: more threads add little, and cost a server
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (e.valueLoaded() || pm.is_float || pm.samples != 1 ||
      pm.photometric == Photometric::kPalette ||
      (pm.bits_allocated != 8 && pm.bits_allocated != 16 && pm.bits_allocated != 32) ||
      (xfer != EXS_LittleEndianExplicit && xfer != EXS_LittleEndianImplicit)) {
    return false;
  }
  const auto sample_bytes = static_cast<size_t>(pm.bits_allocated / 8);
  const auto frame_bytes = static_cast<size_t>(pm.native_frame_bits() / 8);
  const size_t start = frame_bytes * static_cast<size_t>(first);
  const size_t total = frame_bytes * static_cast<size_t>(count);
  if (start + total > e.getLength()) return false;  // checked by the caller; never read past it
  float* dst = out.data() + static_cast<size_t>(depth_offset) * out.plane_size();
  // Large values are read and converted by several threads, each its own range of whole pieces
  // with its own file handle and buffer (getPartialValue only reads the element's fields).
  const size_t pieces = (total + kPieceBytes - 1) / kPieceBytes;
  const int parts = static_cast<int>(std::min({static_cast<size_t>(inner_parallelism()), kMaxParts,
                                               std::max<size_t>(1, total / kMinPartBytes)}));
  const size_t pieces_per_part =
      (pieces + static_cast<size_t>(parts) - 1) / static_cast<size_t>(parts);
  run_parts(parts, [&](int part) {
    const size_t begin = std::min(total, static_cast<size_t>(part) * pieces_per_part * kPieceBytes);
    const size_t end = std::min(total, begin + pieces_per_part * kPieceBytes);
    if (begin >= end) return;
    std::vector<uint8_t> piece(std::min(kPieceBytes, end - begin));
    DcmFileCache cache;  // one open file handle for all the pieces of this part
    for (size_t done = begin; done < end;) {
      const size_t n = std::min(piece.size(), end - done);
      const OFCondition cond = e.getPartialValue(piece.data(), static_cast<Uint32>(start + done),
                                                 static_cast<Uint32>(n), &cache);
      if (cond.bad()) {
        throw Error(MV_ERR_CORRUPT_DATA, fmt::format("{}: {} cannot be read ({})", name,
                                                     pixel_tag_label(e.getTag()), cond.text()));
      }
      mapper.convert_samples(piece.data(), n / sample_bytes, dst + done / sample_bytes);
      done += n;
    }
  });
  return true;
}

void decode_native(DcmDataset& ds, const Header& h, int64_t first, int64_t count, Image& out,
                   int64_t depth_offset, const std::string& name) {
  const PixelModule& pm = h.pixels;
  const DcmTagKey tag = pixel_tag(pm, ds);
  DcmElement* e = nullptr;
  if (ds.findAndGetElement(tag, e).bad() || e == nullptr) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": has no PixelData");
  }
  const uint64_t frame_bits = pm.native_frame_bits();
  const uint64_t expected = (frame_bits * static_cast<uint64_t>(pm.frames) + 7) / 8;
  // Checked against the length field before DCMTK loads the value from disk.
  if (e->getLength() < expected) {
    throw Error(MV_ERR_CORRUPT_DATA, fmt::format("{}: {} has {} bytes, {} expected", name,
                                                 pixel_tag_label(tag), e->getLength(), expected));
  }
  const PaletteLut palette =
      pm.photometric == Photometric::kPalette ? read_palette(ds, name) : PaletteLut{};
  const ValueMapper mapper(pm, read_modality_lut(ds, pm, name), &palette);
  if (read_native_in_pieces(*e, ds, pm, mapper, first, count, out, depth_offset, name)) return;
  Uint8* bytes = nullptr;
  const OFCondition cond = raw_bytes(*e, bytes);
  if (cond.bad() || bytes == nullptr) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": " + pixel_tag_label(tag) + " cannot be read (" +
                                         std::string(cond.text()) + ")");
  }
  if (ds.getOriginalXfer() == EXS_BigEndianExplicit) {
    fix_big_endian(bytes, static_cast<size_t>(expected), pm, *e);
  }
  for (int64_t k = 0; k < count; ++k) {
    FrameSamples src;
    src.data = bytes;
    src.size = static_cast<size_t>(expected);
    src.is_float = pm.is_float;
    src.planar = pm.planar;
    src.bytes_per_sample = pm.bits_allocated / 8;
    const uint64_t start_bit = frame_bits * static_cast<uint64_t>(first + k);
    if (pm.bits_allocated == 1) {
      src.bit_offset = start_bit;
    } else {
      src.data += start_bit / 8;
    }
    mapper.convert(src, out.data() + static_cast<size_t>(depth_offset + k) * out.plane_size(),
                   out.channel_size());
  }
}

// The encapsulated pixel sequence of `ds` and its frame index.
struct Encapsulated {
  DcmPixelData* pixel_data = nullptr;
  E_TransferSyntax xfer = EXS_Unknown;
  const DcmRepresentationParameter* param = nullptr;
  DcmPixelSequence* sequence = nullptr;
};

Encapsulated encapsulated(DcmDataset& ds, const std::string& name) {
  Encapsulated out;
  DcmElement* e = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, e).bad() || e == nullptr) {
    throw Error(MV_ERR_UNSUPPORTED_FORMAT, name + ": has no PixelData");
  }
  out.pixel_data = static_cast<DcmPixelData*>(e);
  out.pixel_data->getOriginalRepresentationKey(out.xfer, out.param);
  if (out.pixel_data->getEncapsulatedRepresentation(out.xfer, out.param, out.sequence).bad() ||
      out.sequence == nullptr) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": (7FE0,0010) PixelData is not encapsulated");
  }
  return out;
}

// The attributes DCMTK's decoders read (image pixel module), copied into an item that describes
// a single frame.
void copy_pixel_module(DcmDataset& ds, DcmItem& out) {
  static const DcmTagKey kTags[] = {DCM_SamplesPerPixel,
                                    DCM_PhotometricInterpretation,
                                    DCM_PlanarConfiguration,
                                    DCM_Rows,
                                    DCM_Columns,
                                    DCM_BitsAllocated,
                                    DCM_BitsStored,
                                    DCM_HighBit,
                                    DCM_PixelRepresentation};
  for (const DcmTagKey& tag : kTags) {
    DcmElement* e = nullptr;
    if (ds.findAndGetElement(tag, e).good() && e != nullptr) {
      out.insert(static_cast<DcmElement*>(e->clone()), true);
    }
  }
  out.putAndInsertString(DCM_NumberOfFrames, "1");
}

// DCMTK decompresses JPEG / RLE one frame at a time into our buffer. We find the frame's
// fragments ourselves (FrameIndex) and hand DCMTK a one-frame pixel sequence holding exactly that
// frame's codestream: DCMTK 3.6.7's own fragment grouping decodes an RLE frame split over several
// fragments to wrong pixels without an error (issue 19), and guesses at frame boundaries. Its
// decoders update the item's planar configuration and report the colour model they produced.
void decode_with_dcmtk(DcmDataset& ds, const Header& h, int64_t first, int64_t count, Image& out,
                       int64_t depth_offset, const std::string& name) {
  const Encapsulated enc = encapsulated(ds, name);
  CodecFamily family = CodecFamily::kJpeg;
  codec_family(h.transfer_syntax, family);
  const FrameIndex index(ds, *enc.sequence, h.pixels.frames, family, h.transfer_syntax, name);
  Uint32 frame_size = 0;
  if (enc.pixel_data->getUncompressedFrameSize(&ds, frame_size).bad()) {
    throw Error(MV_ERR_CORRUPT_DATA, name + ": (7FE0,0010) PixelData frame size is invalid");
  }
  const auto native = static_cast<size_t>((h.pixels.native_frame_bits() + 7) / 8);
  // DCMTK refuses odd buffer sizes (its frames are padded to even length).
  std::vector<uint8_t> buffer((std::max<size_t>(frame_size, native) + 1) & ~size_t{1});
  const ModalityLut lut = read_modality_lut(ds, h.pixels, name);
  const PaletteLut palette =
      h.pixels.photometric == Photometric::kPalette ? read_palette(ds, name) : PaletteLut{};
  const DcmXfer xfer(enc.xfer);
  for (int64_t k = 0; k < count; ++k) {
    const FrameBytes bytes = index.frame(first + k);
    check_codestream_size(bytes, family, h.pixels.rows, h.pixels.cols, h.pixels.samples, first + k,
                          h.transfer_syntax, name);
    DcmItem item;
    copy_pixel_module(ds, item);
    DcmPixelSequence one(DcmTag(DCM_PixelSequenceTag));
    one.insert(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB)));  // empty Basic Offset Table
    auto* fragment = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
    one.insert(fragment);
    if (fragment->putUint8Array(bytes.data, static_cast<Uint32>(bytes.size)).bad()) {
      throw Error(MV_ERR_OUT_OF_MEMORY,
                  fmt::format("{}: cannot copy frame {} for decoding", name, first + k));
    }
    Uint32 start_fragment = 1;
    OFString colour;
    std::string damaged;
    const JpegProblemScope watch(&damaged);
    const OFCondition cond =
        DcmCodecList::decodeFrame(xfer, enc.param, &one, &item, 0, start_fragment, buffer.data(),
                                  static_cast<Uint32>(buffer.size()), colour);
    if (cond.bad()) {
      throw Error(
          MV_ERR_CORRUPT_DATA,
          fmt::format("{}: (7FE0,0010) PixelData frame {} is not a valid {} codestream "
                      "(the decoder reports: {})",
                      name, first + k, transfer_syntax_label(h.transfer_syntax), cond.text()));
    }
    if (!damaged.empty()) {
      throw Error(MV_ERR_CORRUPT_DATA,
                  fmt::format("{}: (7FE0,0010) PixelData frame {} ({}) holds damaged data: {}",
                              name, first + k, transfer_syntax_label(h.transfer_syntax), damaged));
    }
    PixelModule pm = h.pixels;
    pm.planar = get_long(item, DCM_PlanarConfiguration, 0) == 1;
    if (pm.samples == 3) {
      // Decompressed YBR_FULL_422 is no longer subsampled (PS3.5 8.2.1).
      pm.photometric =
          std::string(colour.c_str()) == "RGB" ? Photometric::kRgb : Photometric::kYbrFull;
    }
    const ValueMapper mapper(pm, lut, &palette);
    FrameSamples src{buffer.data(), frame_size, pm.bits_allocated / 8, pm.planar, false, 0};
    mapper.convert(src, out.data() + static_cast<size_t>(depth_offset + k) * out.plane_size(),
                   out.channel_size());
  }
}

// CharLS decodes each JPEG-LS frame straight from its fragment (or the joined fragments) into one
// buffer reused for every frame, which the value mapper converts into the image: no DCMTK, no
// copy of the codestream. DCMTK's decoder (an old CharLS fork) wrote the samples in the order of
// the file's PlanarConfiguration and reported the header's colour model; the mapper reads either
// order, so the codestream's own order (planar for interleave mode "none") gives the same values,
// and colour is converted as DCMTK's path did (RGB stays RGB, any YBR is full-range YBR: a
// decompressed YBR_FULL_422 is no longer subsampled, PS3.5 8.2.1).
void decode_jpegls_frames(DcmDataset& ds, const Header& h, int64_t first, int64_t count, Image& out,
                          int64_t depth_offset, const std::string& name) {
  const Encapsulated enc = encapsulated(ds, name);
  const FrameIndex index(ds, *enc.sequence, h.pixels.frames, CodecFamily::kJpegLs,
                         h.transfer_syntax, name);
  const ModalityLut lut = read_modality_lut(ds, h.pixels, name);
  const PaletteLut palette =
      h.pixels.photometric == Photometric::kPalette ? read_palette(ds, name) : PaletteLut{};
  PixelModule pm = h.pixels;
  if (pm.samples == 3 && pm.photometric != Photometric::kRgb)
    pm.photometric = Photometric::kYbrFull;
  const ValueMapper mapper(pm, lut, &palette);
  std::vector<uint8_t> buffer;
  for (int64_t k = 0; k < count; ++k) {
    const FrameBytes bytes = index.frame(first + k);
    const JlsFrame frame =
        decode_jpegls(bytes.data, bytes.size, pm.rows, pm.cols, pm.samples, pm.bits_allocated,
                      first + k, h.transfer_syntax, name, buffer);
    FrameSamples src{buffer.data(), frame.size, frame.bytes_per_sample, frame.planar, false, 0};
    mapper.convert(src, out.data() + static_cast<size_t>(depth_offset + k) * out.plane_size(),
                   out.channel_size());
  }
}

void decode_j2k_frames(DcmDataset& ds, const Header& h, int64_t first, int64_t count, Image& out,
                       int64_t depth_offset, const std::string& name) {
  const Encapsulated enc = encapsulated(ds, name);
  const PixelModule& pm = h.pixels;
  const FrameIndex index(ds, *enc.sequence, pm.frames, CodecFamily::kJ2k, h.transfer_syntax, name);
  const ValueMapper mapper(pm, read_modality_lut(ds, pm, name), nullptr);
  for (int64_t k = 0; k < count; ++k) {
    const FrameBytes bytes = index.frame(first + k);
    const J2kFrame frame = decode_j2k(bytes.data, bytes.size, pm.rows, pm.cols, pm.samples, name);
    FrameSamples src{reinterpret_cast<const uint8_t*>(frame.planes.data()),
                     frame.planes.size() * sizeof(int32_t),
                     4,
                     true,
                     false,
                     0};
    mapper.convert(src, out.data() + static_cast<size_t>(depth_offset + k) * out.plane_size(),
                   out.channel_size());
  }
}

}  // namespace

void decode_frames(DcmFileFormat& file, const Header& header, int64_t first, int64_t count,
                   Image& out, int64_t depth_offset, const std::string& name) {
  DcmDataset& ds = *file.getDataset();
  switch (codec_for(header.transfer_syntax)) {
    case Codec::kNative:
      decode_native(ds, header, first, count, out, depth_offset, name);
      break;
    case Codec::kDcmtk: {
      CodecFamily family = CodecFamily::kJpeg;
      if (codec_family(header.transfer_syntax, family) && family == CodecFamily::kJpegLs) {
        decode_jpegls_frames(ds, header, first, count, out, depth_offset, name);
      } else {
        decode_with_dcmtk(ds, header, first, count, out, depth_offset, name);
      }
      break;
    }
    case Codec::kJ2k:
      decode_j2k_frames(ds, header, first, count, out, depth_offset, name);
      break;
    case Codec::kUnsupported:
      break;  // refused by read_header
  }
}

}  // namespace medvision::io::dicom
