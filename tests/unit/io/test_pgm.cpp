// PGM reader (scratch, checklist trial).
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/error.hpp"
#include "io/io.hpp"

namespace io = medvision::io;

static std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

TEST_CASE("pgm: 8-bit, comment in the header", "[io][pgm]") {
  auto b = bytes("P5\n# made by hand\n3 2\n255\n");
  for (int i = 0; i < 6; ++i) b.push_back(static_cast<uint8_t>(i * 40));
  auto im = io::load_memory(b.data(), b.size(), io::LoadOptions{}, "mem.pgm");
  CHECK(im->width() == 3);
  CHECK(im->height() == 2);
  CHECK(im->data()[5] == 200.0f);
  CHECK(im->format == MV_FORMAT_PGM);
  CHECK(im->geometry.spacing_source.empty());
}

TEST_CASE("pgm: 16-bit big endian", "[io][pgm]") {
  auto b = bytes("P5 1 1 65535\n");
  b.push_back(0x12), b.push_back(0x34);
  auto im = io::load_memory(b.data(), b.size(), io::LoadOptions{}, "mem.pgm");
  CHECK(im->data()[0] == 4660.0f);
  CHECK(im->bits_stored == 16);
}

TEST_CASE("pgm: truncated and lying headers are refused", "[io][pgm]") {
  auto b = bytes("P5\n3 2\n255\n\x01\x02");
  CHECK_THROWS_WITH(io::load_memory(b.data(), b.size(), io::LoadOptions{}, "mem.pgm"),
                    Catch::Contains("mem.pgm") && Catch::Contains("truncated"));
  b = bytes("P5\n999999 999999\n255\n");
  CHECK_THROWS_WITH(io::load_memory(b.data(), b.size(), io::LoadOptions{}, "mem.pgm"),
                    Catch::Contains("truncated"));
  b = bytes("P5\nx 2\n255\n");
  CHECK_THROWS_WITH(io::load_memory(b.data(), b.size(), io::LoadOptions{}, "mem.pgm"),
                    Catch::Contains("width"));
}
