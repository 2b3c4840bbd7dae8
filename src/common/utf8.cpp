#include "common/utf8.hpp"

#include <cstdint>
#include <cstring>

namespace medvision {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

// Length of the well-formed character at s[i], or 0 when s[i] starts an ill-formed sequence; on
// 0, `skip` is the length of the maximal ill-formed subpart to replace by one U+FFFD.
size_t char_length(std::string_view s, size_t i, size_t& skip) noexcept {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t c = b(0);
  skip = 1;
  if (c < 0x80) return 1;
  size_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (Unicode table 3-7)
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // at most U+10FFFF
  } else {
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return 0;
    const uint8_t x = b(k);
    if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) return 0;
    skip = k + 1;
  }
  return need;
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
  size_t skip = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = char_length(s, i, skip);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t skip = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = char_length(s, i, skip);
    if (n == 0) {
      out += kReplacement;
      i += skip;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

size_t copy_valid_utf8(std::string_view s, char* out, size_t cap) noexcept {
  if (cap == 0) return 0;
  size_t w = 0, skip = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = char_length(s, i, skip);
    const char* src = n == 0 ? kReplacement : s.data() + i;
    const size_t len = n == 0 ? 3 : n;
    if (w + len > cap - 1) break;
    std::memcpy(out + w, src, len);
    w += len;
    i += n == 0 ? skip : n;
  }
  out[w] = '\0';
  return w;
}

}  // namespace medvision
