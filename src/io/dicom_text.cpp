#include "io/dicom_text.hpp"

#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <string_view>

#include "common/utf8.hpp"

namespace medvision::io::dicom {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

// What a code element (G0 for bytes below 0x80, G1 for bytes from 0x80) holds.
enum class Set {
  kNone,      // nothing designated: bytes are invalid
  kAscii,     // ISO-IR 6 (and ISO-IR 14 romaji, read as ASCII like pydicom does)
  kSingle,    // an ISO 8859 / TIS-620 right half, through iconv
  kKatakana,  // JIS X 0201 katakana (ISO-IR 13) in G1: U+FF61..U+FF9F
  kJis0208,   // JIS X 0208 (ISO-IR 87) in G0: two 7-bit bytes, through EUC-JP
  kJis0212,   // JIS X 0212 (ISO-IR 159) in G0: two 7-bit bytes, through EUC-JP
  kKsc,       // KS X 1001 (ISO-IR 149) in G1: two 8-bit bytes, EUC-KR
  kGb2312,    // GB 2312 (ISO-IR 58) in G1: two 8-bit bytes, EUC-CN
};

struct Designation {
  const char* term;    // defined term with code extensions
  const char* escape;  // the escape sequence after ESC
  bool g1;             // designates G1 (else G0)
  Set set;
  const char* iconv;  // for kSingle
};

// PS3.3 Tables C.12-3 and C.12-4.
const Designation kIso2022[] = {
    {"ISO 2022 IR 6", "(B", false, Set::kAscii, nullptr},
    {"ISO 2022 IR 100", "-A", true, Set::kSingle, "ISO-8859-1"},
    {"ISO 2022 IR 101", "-B", true, Set::kSingle, "ISO-8859-2"},
    {"ISO 2022 IR 109", "-C", true, Set::kSingle, "ISO-8859-3"},
    {"ISO 2022 IR 110", "-D", true, Set::kSingle, "ISO-8859-4"},
    {"ISO 2022 IR 144", "-L", true, Set::kSingle, "ISO-8859-5"},
    {"ISO 2022 IR 127", "-G", true, Set::kSingle, "ISO-8859-6"},
    {"ISO 2022 IR 126", "-F", true, Set::kSingle, "ISO-8859-7"},
    {"ISO 2022 IR 138", "-H", true, Set::kSingle, "ISO-8859-8"},
    {"ISO 2022 IR 148", "-M", true, Set::kSingle, "ISO-8859-9"},
    {"ISO 2022 IR 203", "-b", true, Set::kSingle, "ISO-8859-15"},
    {"ISO 2022 IR 166", "-T", true, Set::kSingle, "TIS-620"},
    {"ISO 2022 IR 13", ")I", true, Set::kKatakana, nullptr},
    {"ISO 2022 IR 13", "(J", false, Set::kAscii, nullptr},
    {"ISO 2022 IR 87", "$B", false, Set::kJis0208, nullptr},
    {"ISO 2022 IR 159", "$(D", false, Set::kJis0212, nullptr},
    {"ISO 2022 IR 149", "$)C", true, Set::kKsc, nullptr},
    {"ISO 2022 IR 58", "$)A", true, Set::kGb2312, nullptr},
};

// Defined terms without code extensions (PS3.3 Table C.12-2 and C.12-5) and their iconv names.
const std::pair<const char*, const char*> kPlain[] = {
    {"ISO_IR 100", "ISO-8859-1"},
    {"ISO_IR 101", "ISO-8859-2"},
    {"ISO_IR 109", "ISO-8859-3"},
    {"ISO_IR 110", "ISO-8859-4"},
    {"ISO_IR 144", "ISO-8859-5"},
    {"ISO_IR 127", "ISO-8859-6"},
    {"ISO_IR 126", "ISO-8859-7"},
    {"ISO_IR 138", "ISO-8859-8"},
    {"ISO_IR 148", "ISO-8859-9"},
    {"ISO_IR 203", "ISO-8859-15"},
    {"ISO_IR 166", "TIS-620"},
    {"GB18030", "GB18030"},
    {"GBK", "GBK"},
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::vector<std::string> split_values(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == '\\') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  for (auto& v : out) v = trim(v);
  return out;
}

void append_code_point(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

struct TextDecoder::State {
  std::vector<std::string>& warnings;
  std::string charset;  // as declared, for the warning
  enum class Mode { kUndeclared, kUtf8, kIconv, kKatakana, kIso2022, kUnknown } mode;
  std::string iconv_name;  // kIconv
  Set initial_g0 = Set::kAscii, initial_g1 = Set::kNone;
  const char* initial_g1_iconv = nullptr;
  std::map<std::string, iconv_t> converters;
  bool warned = false;

  explicit State(std::vector<std::string>& w) : warnings(w), mode(Mode::kUndeclared) {}
  ~State() {
    for (auto& [name, cd] : converters) {
      // iconv_open's documented failure value is (iconv_t)-1.
      // NOLINTNEXTLINE(performance-no-int-to-ptr)
      if (cd != reinterpret_cast<iconv_t>(-1)) iconv_close(cd);
    }
  }

  void warn() {
    if (warned) return;
    warned = true;
    warnings.push_back(to_valid_utf8("(0008,0005) SpecificCharacterSet '" + charset +
                                     "': text with bytes that are not valid in the declared "
                                     "character set; they are replaced by U+FFFD"));
  }

  iconv_t converter(const std::string& name) {
    auto it = converters.find(name);
    if (it == converters.end()) {
      it = converters.emplace(name, iconv_open("UTF-8", name.c_str())).first;
    }
    return it->second;
  }

  // `in` through iconv; each byte iconv refuses becomes U+FFFD.
  void convert(const std::string& name, std::string_view in, std::string& out) {
    iconv_t cd = converter(name);
    if (cd == reinterpret_cast<iconv_t>(-1)) {  // NOLINT(performance-no-int-to-ptr)
      for (size_t i = 0; i < in.size(); ++i) out += kReplacement;
      warn();
      return;
    }
    iconv(cd, nullptr, nullptr, nullptr, nullptr);
    std::string src(in);
    char* inp = src.data();
    size_t left = src.size();
    char buf[256];
    while (left > 0) {
      char* outp = buf;
      size_t room = sizeof buf;
      const size_t r = iconv(cd, &inp, &left, &outp, &room);
      out.append(buf, static_cast<size_t>(outp - buf));
      if (r == static_cast<size_t>(-1)) {
        if (errno == E2BIG) continue;
        // EILSEQ (invalid) or EINVAL (incomplete at the end): replace one byte, go on.
        out += kReplacement;
        warn();
        ++inp;
        --left;
        iconv(cd, nullptr, nullptr, nullptr, nullptr);
      }
    }
    char* outp = buf;
    size_t room = sizeof buf;
    iconv(cd, nullptr, nullptr, &outp, &room);  // flush any shift state
    out.append(buf, static_cast<size_t>(outp - buf));
  }

  std::string katakana(std::string_view in) {
    std::string out;
    for (char ch : in) {
      const auto c = static_cast<uint8_t>(ch);
      if (c < 0x80) {
        out += ch;
      } else if (c >= 0xA1 && c <= 0xDF) {
        append_code_point(out, 0xFF61 + (c - 0xA1));
      } else {
        out += kReplacement;
        warn();
      }
    }
    return out;
  }

  std::string iso2022(std::string_view in);
};

TextDecoder::TextDecoder(const std::string& specific_character_set,
                         std::vector<std::string>& warnings)
    : state_(std::make_unique<State>(warnings)) {
  State& s = *state_;
  s.charset = trim(specific_character_set);
  const std::vector<std::string> values = split_values(specific_character_set);
  const bool extensions = values.size() > 1 || values[0].rfind("ISO 2022", 0) == 0;
  if (s.charset.empty()) {
    s.mode = State::Mode::kUndeclared;
    return;
  }
  if (!extensions) {
    const std::string& v = values[0];
    if (v == "ISO_IR 192") {
      s.mode = State::Mode::kUtf8;
      return;
    }
    if (v == "ISO_IR 13") {
      s.mode = State::Mode::kKatakana;
      return;
    }
    if (v == "ISO_IR 6") {
      s.mode = State::Mode::kUndeclared;
      return;
    }
    for (const auto& [term, name] : kPlain) {
      if (v == term) {
        s.mode = State::Mode::kIconv;
        s.iconv_name = name;
        return;
      }
    }
    s.mode = State::Mode::kUnknown;
    return;
  }
  s.mode = State::Mode::kIso2022;
  // The first value sets the initial state; empty means ISO 2022 IR 6 (PS3.3 C.12.1.1.2).
  for (const Designation& d : kIso2022) {
    if (values[0] == d.term) {
      if (d.g1) {
        s.initial_g1 = d.set;
        s.initial_g1_iconv = d.iconv;
      } else {
        s.initial_g0 = d.set;
      }
    }
  }
  for (const auto& v : values) {
    bool known = v.empty();
    for (const Designation& d : kIso2022) known = known || v == d.term;
    if (!known)
      s.warnings.push_back(to_valid_utf8(
          "(0008,0005) SpecificCharacterSet: unknown code extension '" + v + "' ignored"));
  }
}

TextDecoder::~TextDecoder() = default;

std::string TextDecoder::State::iso2022(std::string_view in) {
  std::string out;
  Set g0 = initial_g0, g1 = initial_g1;
  const char* g1_iconv = initial_g1_iconv;
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<uint8_t>(in[i]);
    if (c == 0x1B) {  // escape sequence: designate a set
      bool matched = false;
      for (const Designation& d : kIso2022) {
        const size_t n = std::strlen(d.escape);
        if (in.substr(i + 1, n) == d.escape) {
          (d.g1 ? g1 : g0) = d.set;
          if (d.g1) g1_iconv = d.iconv;
          i += 1 + n;
          matched = true;
          break;
        }
      }
      if (!matched) {  // unknown escape: drop the ESC itself
        out += kReplacement;
        warn();
        ++i;
      }
      continue;
    }
    // Delimiters and control characters return to the initial state (PS3.5 6.1.2.5.3).
    if (c == '\\' || c == '\r' || c == '\n' || c == '\t' || c == '\f') {
      g0 = initial_g0;
      g1 = initial_g1;
      g1_iconv = initial_g1_iconv;
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      if (g0 == Set::kJis0208 || g0 == Set::kJis0212) {
        if (i + 1 < in.size() && c >= 0x21 && c <= 0x7E &&
            static_cast<uint8_t>(in[i + 1]) >= 0x21 && static_cast<uint8_t>(in[i + 1]) <= 0x7E) {
          std::string euc;
          if (g0 == Set::kJis0212) euc += static_cast<char>(0x8F);
          euc += static_cast<char>(c | 0x80);
          euc += static_cast<char>(static_cast<uint8_t>(in[i + 1]) | 0x80);
          convert("EUC-JP", euc, out);
          i += 2;
        } else if (c == ' ') {
          out += ' ';
          ++i;
        } else {
          out += kReplacement;
          warn();
          ++i;
        }
      } else {
        out += static_cast<char>(c);
        ++i;
      }
      continue;
    }
    switch (g1) {
      case Set::kSingle:
        convert(g1_iconv, in.substr(i, 1), out);
        ++i;
        break;
      case Set::kKatakana:
        out += katakana(in.substr(i, 1));
        ++i;
        break;
      case Set::kKsc:
      case Set::kGb2312:
        if (i + 1 < in.size() && static_cast<uint8_t>(in[i + 1]) >= 0xA1) {
          convert(g1 == Set::kKsc ? "EUC-KR" : "GB2312", in.substr(i, 2), out);
          i += 2;
        } else {
          out += kReplacement;
          warn();
          ++i;
        }
        break;
      default:
        out += kReplacement;
        warn();
        ++i;
        break;
    }
  }
  return out;
}

std::string TextDecoder::operator()(const std::string& raw) {
  State& s = *state_;
  const bool plain = std::all_of(raw.begin(), raw.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x80 && c != 0x1B;
  });
  if (plain) return raw;
  std::string out;
  switch (s.mode) {
    case State::Mode::kUndeclared:
      if (is_valid_utf8(raw)) return raw;
      for (char ch : raw) append_code_point(out, static_cast<uint8_t>(ch));  // Latin-1
      return out;
    case State::Mode::kUtf8:
      if (is_valid_utf8(raw)) return raw;
      s.warn();
      return to_valid_utf8(raw);
    case State::Mode::kIconv:
      s.convert(s.iconv_name, raw, out);
      break;
    case State::Mode::kKatakana:
      out = s.katakana(raw);
      break;
    case State::Mode::kIso2022:
      out = s.iso2022(raw);
      break;
    case State::Mode::kUnknown:
      for (char ch : raw) {
        const auto c = static_cast<unsigned char>(ch);
        out += c < 0x80 && c != 0x1B ? std::string(1, ch) : std::string(kReplacement);
      }
      if (!s.warned) {
        s.warned = true;
        s.warnings.push_back(to_valid_utf8("(0008,0005) SpecificCharacterSet '" + s.charset +
                                           "' is not a character set medvision knows; "
                                           "non-ASCII text is replaced by U+FFFD"));
      }
      break;
  }
  return to_valid_utf8(out);
}

}  // namespace medvision::io::dicom
