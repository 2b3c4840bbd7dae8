#pragma once
// DICOM text values to UTF-8 by (0008,0005) Specific Character Set (PS3.3 C.12.1.1.2, PS3.5 6.1
// and Annexes H, I, J, K), so that every string medvision hands out is valid UTF-8 (issue 19).
//
// Rules (docs/decoders.md, "Character sets"):
// - no Specific Character Set: the default repertoire is ASCII; a value that is valid UTF-8 is
//   kept (many writers put UTF-8 there), anything else is read as ISO_IR 100 (Latin-1), which is
//   what pydicom does;
// - single-byte and multi-byte sets without code extensions (ISO_IR 100 ... 203, ISO_IR 13,
//   ISO_IR 192, GB18030, GBK): converted with the C library's iconv;
// - ISO 2022 code extensions (ISO 2022 IR 6, 100, ..., 13, 87, 159, 149, 58): the escape sequences
//   are interpreted here (G0 / G1 designations, reset to the initial state at each value
//   delimiter and control character), and each run is converted with iconv;
// - a byte that is not valid in the declared set, an escape sequence for a set the value did not
//   declare, an unknown defined term: U+FFFD, and one warning per file.

#include <memory>
#include <string>
#include <vector>

namespace medvision::io::dicom {

class TextDecoder {
 public:
  // `specific_character_set`: the value of (0008,0005) with its values separated by backslashes
  // (empty when absent). Warnings about replaced text are appended to `warnings`.
  TextDecoder(const std::string& specific_character_set, std::vector<std::string>& warnings);
  ~TextDecoder();
  TextDecoder(const TextDecoder&) = delete;
  TextDecoder& operator=(const TextDecoder&) = delete;

  // One value (or several, separated by backslashes) as valid UTF-8.
  std::string operator()(const std::string& raw);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace medvision::io::dicom
