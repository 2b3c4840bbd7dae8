#pragma once
// SHA-256 (FIPS 180-4), used to verify model files against their manifest.

#include <cstddef>
#include <cstdint>
#include <string>

namespace medvision {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();  // finalises; call once

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Hex SHA-256 of a file; throws medvision::Error(MV_ERR_IO) naming the path.
std::string sha256_file(const std::string& path);

}  // namespace medvision
