// DCMTK attribute access shared by the DICOM reader's files (dicom_dataset.hpp).

#include "io/dicom_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>

namespace medvision::io::dicom {

Codec codec_for(const std::string& uid) {
  static const char* const kNative[] = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                        "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"};
  // JPEG baseline, extended, spectral selection, progressive, lossless (14, SV1), JPEG-LS, RLE.
  static const char* const kDcmtk[] = {
      "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.53",
      "1.2.840.10008.1.2.4.55", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
      "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.5"};
  // JPEG 2000 (lossless, lossy) and HTJ2K (lossless, lossless RPCL, lossy).
  static const char* const kJ2k[] = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                                     "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                                     "1.2.840.10008.1.2.4.203"};
  auto in = [&](const auto& list) {
    return std::any_of(std::begin(list), std::end(list), [&](const char* u) { return uid == u; });
  };
  if (in(kNative)) return Codec::kNative;
  if (in(kDcmtk)) return Codec::kDcmtk;
  if (in(kJ2k)) return Codec::kJ2k;
  return Codec::kUnsupported;
}

std::string get_string(DcmItem& item, const DcmTagKey& tag) {
  OFString s;
  if (item.findAndGetOFString(tag, s).bad()) return {};
  return std::string(s.c_str());
}

long get_long(DcmItem& item, const DcmTagKey& tag, long fallback) {
  long v = 0;
  if (item.findAndGetLongInt(tag, v).good()) return v;
  // NumberOfFrames and friends are IS strings; DCMTK's LongInt getter only covers binary VRs.
  const std::string s = get_string(item, tag);
  if (s.empty()) return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(s.c_str(), &end, 10);
  return end != s.c_str() ? parsed : fallback;
}

bool get_doubles(DcmItem& item, const DcmTagKey& tag, double* out, unsigned long n) {
  for (unsigned long i = 0; i < n; ++i) {
    if (item.findAndGetFloat64(tag, out[i], i).bad() || !std::isfinite(out[i])) return false;
  }
  return true;
}

bool has_values(DcmItem& item, const DcmTagKey& tag) {
  DcmElement* e = nullptr;
  return item.findAndGetElement(tag, e).good() && e != nullptr && e->getLength() > 0;
}

std::string tag_name(const DcmTagKey& tag) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "(%04X,%04X)", tag.getGroup(), tag.getElement());
  return buf;
}

// The first item of `seq` in `item`, or of its first-level functional group `group`.
DcmItem* sub_item(DcmItem* item, const DcmTagKey& seq) {
  DcmItem* out = nullptr;
  if (item == nullptr || item->findAndGetSequenceItem(seq, out, 0).bad()) return nullptr;
  return out;
}

}  // namespace medvision::io::dicom
