// The C ABI core: versions, status names, last error, logging. Links only libmedvision.so.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <thread>

#include "medvision/medvision.h"

TEST_CASE("capi: version macros agree with the library", "[capi]") {
  REQUIRE(mv_version_number() == MV_VERSION_NUMBER);
  REQUIRE(std::string(mv_version_string()) == MV_VERSION_STRING);
  REQUIRE(mv_abi_version() == MV_ABI_VERSION);
  REQUIRE(MV_VERSION_CHECK(0, 0, 1));
  REQUIRE_FALSE(MV_VERSION_CHECK(99, 0, 0));
}

TEST_CASE("capi: status codes are pinned and named", "[capi]") {
  // These numbers are ABI: they must never change.
  STATIC_REQUIRE(MV_OK == 0);
  STATIC_REQUIRE(MV_ERR_INVALID_ARGUMENT == 1);
  STATIC_REQUIRE(MV_ERR_OUT_OF_MEMORY == 2);
  STATIC_REQUIRE(MV_ERR_IO == 3);
  STATIC_REQUIRE(MV_ERR_UNSUPPORTED_FORMAT == 4);
  STATIC_REQUIRE(MV_ERR_CORRUPT_DATA == 5);
  STATIC_REQUIRE(MV_ERR_MODEL == 6);
  STATIC_REQUIRE(MV_ERR_DEVICE == 7);
  STATIC_REQUIRE(MV_ERR_SHAPE_MISMATCH == 8);
  STATIC_REQUIRE(MV_ERR_ABI_MISMATCH == 9);
  STATIC_REQUIRE(MV_ERR_CANCELLED == 10);
  STATIC_REQUIRE(MV_ERR_NOT_IMPLEMENTED == 11);
  STATIC_REQUIRE(MV_ERR_INTERNAL == 12);
  STATIC_REQUIRE(MV_ERR_UNKNOWN == 13);
  REQUIRE(std::string(mv_status_name(MV_OK)) == "MV_OK");
  REQUIRE(std::string(mv_status_name(MV_ERR_IO)) == "MV_ERR_IO");
  REQUIRE(std::string(mv_status_name(static_cast<mv_status>(15))) == "MV_ERR_UNKNOWN_STATUS");
}

TEST_CASE("capi: last error is set on failure, cleared on the next call, per thread", "[capi]") {
  mv_image* img = nullptr;
  REQUIRE(mv_image_load("/nonexistent/x.dcm", nullptr, &img) == MV_ERR_IO);
  REQUIRE(img == nullptr);  // untouched on error
  const std::string msg = mv_last_error();
  REQUIRE(msg.find("/nonexistent/x.dcm") != std::string::npos);

  // Another thread sees its own (empty) error.
  std::string other = "unset";
  std::thread([&] { other = mv_last_error(); }).join();
  REQUIRE(other.empty());

  // A successful fallible call clears it.
  mv_image_load_options o;
  REQUIRE(mv_image_load_options_default(&o) == MV_OK);
  REQUIRE(std::string(mv_last_error()).empty());
  REQUIRE(mv_last_error() != nullptr);
}

namespace {
struct LogSink {
  int calls = 0;
  std::string last;
};
void sink_fn(mv_log_level, const char* message, void* user) {
  auto* s = static_cast<LogSink*>(user);
  ++s->calls;
  s->last = message;
}
}  // namespace

TEST_CASE("capi: log callback can be installed and removed", "[capi]") {
  LogSink sink;
  mv_set_log_callback(&sink_fn, &sink, MV_LOG_DEBUG);
  mv_set_log_callback(nullptr, nullptr, MV_LOG_OFF);
  REQUIRE(sink.calls == 0);  // installing alone logs nothing
}

TEST_CASE("capi: dtype sizes", "[capi]") {
  REQUIRE(mv_dtype_size(MV_DTYPE_FLOAT32) == 4);
  REQUIRE(mv_dtype_size(MV_DTYPE_UINT16) == 2);
  REQUIRE(mv_dtype_size(MV_DTYPE_FLOAT64) == 8);
}
