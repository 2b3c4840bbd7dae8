#pragma once
// UTF-8 hygiene: every string that leaves medvision (metadata, error messages, JSON) is valid
// UTF-8 (STYLE.md B1.5, B1.7). Bytes from files are not: a damaged file, a legacy character set,
// a file name in Latin-1. These helpers replace what is not valid UTF-8 by U+FFFD, never throw on
// any input, and keep valid text unchanged.

#include <cstddef>
#include <string>
#include <string_view>

namespace medvision {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

// `s` with each maximal ill-formed subsequence replaced by U+FFFD (EF BF BD), as the Unicode
// standard recommends (and Python's errors="replace" does).
std::string to_valid_utf8(std::string_view s);

// The same into a fixed buffer without allocating: writes at most `cap - 1` bytes and a NUL,
// never cutting a character in half; returns the number of bytes written.
size_t copy_valid_utf8(std::string_view s, char* out, size_t cap) noexcept;

}  // namespace medvision
