#include <catch2/catch.hpp>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "common/error.hpp"
#include "common/image.hpp"

using medvision::Error;

TEST_CASE("error: last error is thread-local and truncates on a UTF-8 boundary", "[common]") {
  medvision::set_last_error("first");
  REQUIRE(std::string(medvision::last_error()) == "first");
  medvision::clear_last_error();
  REQUIRE(std::string(medvision::last_error()).empty());

  std::string long_msg(5000, 'a');
  long_msg += "\xC3\xA9";  // é
  medvision::set_last_error(long_msg.c_str());
  const std::string got = medvision::last_error();
  REQUIRE(got.size() < 2048);
  REQUIRE(got.back() == 'a');
}

TEST_CASE("error: checked_volume refuses overflow and the limit before allocating", "[common]") {
  const uint64_t big[3] = {60000, 60000, 60000};
  REQUIRE_THROWS_AS(medvision::checked_volume(big, 3, medvision::kDefaultMaxValues, "x"), Error);
  const uint64_t huge[4] = {1ull << 32, 1ull << 32, 1ull << 32, 2};
  try {
    medvision::checked_volume(huge, 4, ~0ull, "f.dcm");
    FAIL("no throw");
  } catch (const Error& e) {
    REQUIRE(e.status() == MV_ERR_OUT_OF_MEMORY);
    REQUIRE(std::string(e.what()).find("f.dcm") != std::string::npos);
  }
  const uint64_t ok[2] = {512, 512};
  REQUIRE(medvision::checked_volume(ok, 2, 1u << 20, "x") == 512u * 512u);
}

TEST_CASE("error: error_info maps every exception kind to one status and message", "[common]") {
  auto info_of = [](auto&& thrower) {
    try {
      thrower();
    } catch (...) {
      return medvision::error_info(std::current_exception());
    }
    FAIL("no throw");
    return medvision::ErrorInfo{MV_OK, ""};
  };
  auto e = info_of([] { throw Error(MV_ERR_CORRUPT_DATA, "f.dcm: bad \xff byte"); });
  REQUIRE(e.status == MV_ERR_CORRUPT_DATA);
  REQUIRE(e.message == "f.dcm: bad \xEF\xBF\xBD byte");  // U+FFFD, valid UTF-8
  e = info_of([] { throw std::bad_alloc(); });
  REQUIRE(e.status == MV_ERR_OUT_OF_MEMORY);
  REQUIRE(e.message == "out of memory");
  e = info_of([] { throw std::out_of_range("vector index"); });
  REQUIRE(e.status == MV_ERR_INTERNAL);
  REQUIRE(e.message == "internal error: vector index");
  e = info_of([] { throw 42; });
  REQUIRE(e.status == MV_ERR_UNKNOWN);
  REQUIRE(e.message == "unknown error");
}

TEST_CASE("image: only allow-listed metadata is kept", "[common]") {
  medvision::Image im(1, 1, 2, 2, 100, "t");
  im.set_meta("Modality", "CR");
  im.set_meta("PatientName", "DOE^JOHN");
  im.set_meta("PatientID", "12345");
  REQUIRE(im.find_meta("Modality") != nullptr);
  REQUIRE(im.find_meta("PatientName") == nullptr);
  REQUIRE(im.find_meta("PatientID") == nullptr);
  REQUIRE(im.meta.size() == 1);
}
