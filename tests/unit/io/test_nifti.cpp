// NIfTI reader: synthetic headers built here (both versions, both byte orders, gzip), the
// scaling and affine rules, and the failure paths (truncation, bad gzip, absurd sizes).

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <nifti2_io.h>
#include <catch2/catch.hpp>

#include "common/error.hpp"
#include "io/io.hpp"
#include "test_data.hpp"

using medvision::Error;
using medvision::Image;
namespace io = medvision::io;

namespace {

template <typename T>
T swapped(T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  std::reverse(b, b + sizeof(T));
  std::memcpy(&v, b, sizeof(T));
  return v;
}

// A NIfTI-1 single file: `dims` (x, y, z[, t]), int16 voxels 0, 1, 2, ... in file order.
std::vector<uint8_t> make_n1(std::vector<int16_t> dims, bool big_endian, float slope = 0.0f,
                             float inter = 0.0f, int sform_code = 1) {
  nifti_1_header h{};
  h.sizeof_hdr = 348;
  h.dim[0] = static_cast<int16_t>(dims.size());
  size_t n = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    h.dim[i + 1] = dims[i];
    n *= static_cast<size_t>(dims[i]);
  }
  for (int i = 0; i < 8; ++i) h.pixdim[i] = 1.0f;
  h.pixdim[1] = 0.5f;
  h.pixdim[2] = 2.0f;
  h.pixdim[3] = 3.0f;
  h.datatype = NIFTI_TYPE_INT16;
  h.bitpix = 16;
  h.vox_offset = 352;
  h.scl_slope = slope;
  h.scl_inter = inter;
  h.sform_code = static_cast<int16_t>(sform_code);
  // sform: x -> -0.5 (R->L flip), y -> 2, z -> 3, origin (10, 20, 30) in RAS.
  const float srow[3][4] = {{-0.5f, 0, 0, 10}, {0, 2, 0, 20}, {0, 0, 3, 30}};
  std::memcpy(h.srow_x, srow[0], sizeof h.srow_x);
  std::memcpy(h.srow_y, srow[1], sizeof h.srow_y);
  std::memcpy(h.srow_z, srow[2], sizeof h.srow_z);
  std::strcpy(h.descrip, "synthetic \x01 test");
  std::memcpy(h.magic, "n+1", 4);
  if (big_endian) swap_nifti_header(&h, 1);
  std::vector<uint8_t> out(352 + n * 2, 0);
  std::memcpy(out.data(), &h, sizeof h);
  for (size_t i = 0; i < n; ++i) {
    int16_t v = static_cast<int16_t>(i);
    if (big_endian) v = swapped(v);
    std::memcpy(out.data() + 352 + 2 * i, &v, 2);
  }
  return out;
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<uint8_t> out(deflateBound(&zs, static_cast<uLong>(in.size())) + 32);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::unique_ptr<Image> load(const std::vector<uint8_t>& b, uint64_t max_values = 1u << 30) {
  io::LoadOptions o;
  o.max_values = max_values;
  return io::load_memory(b.data(), b.size(), o, "mem.nii");
}

// Runs `f`, expecting medvision::Error with `status` and a message naming the input.
template <typename F>
void expect_error(F f, mv_status status, const std::string& needle) {
  try {
    f();
    FAIL("no error thrown");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.status() == status);
    CHECK(std::string(e.what()).find("mem.nii") != std::string::npos);
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("nifti: reads NIfTI-1 in both byte orders, plain and gzipped", "[io][nifti]") {
  for (bool be : {false, true}) {
    for (bool gz : {false, true}) {
      INFO("big endian " << be << ", gzip " << gz);
      auto bytes = make_n1({4, 3, 2}, be);
      if (gz) bytes = gzip(bytes);
      auto img = load(bytes);
      REQUIRE(img->channels() == 1);
      REQUIRE(img->depth() == 2);
      REQUIRE(img->height() == 3);
      REQUIRE(img->width() == 4);
      for (size_t i = 0; i < img->size(); ++i) CHECK(img->data()[i] == static_cast<float>(i));
      CHECK(img->format == MV_FORMAT_NIFTI);
      CHECK(img->stored_dtype == MV_DTYPE_INT16);
      CHECK(img->bits_stored == 16);
      // RAS sform diag(-0.5, 2, 3) + (10, 20, 30) is LPS diag(0.5, -2, 3) + (-10, -20, 30).
      CHECK(img->geometry.spacing[0] == Approx(0.5));
      CHECK(img->geometry.spacing[1] == Approx(2.0));
      CHECK(img->geometry.spacing[2] == Approx(3.0));
      CHECK(img->geometry.direction[0] == Approx(1.0));
      CHECK(img->geometry.direction[4] == Approx(-1.0));
      CHECK(img->geometry.direction[8] == Approx(1.0));
      CHECK(img->geometry.origin[0] == Approx(-10.0));
      CHECK(img->geometry.origin[1] == Approx(-20.0));
      CHECK(img->geometry.origin[2] == Approx(30.0));
      REQUIRE(img->find_meta("SeriesDescription") != nullptr);
      CHECK(*img->find_meta("SeriesDescription") == "synthetic ? test");
    }
  }
}

TEST_CASE("nifti: 4-D volumes become channels; scl_slope/inter as nibabel", "[io][nifti]") {
  auto img = load(make_n1({2, 2, 1, 3}, false, 2.0f, -1.0f));
  REQUIRE(img->channels() == 3);
  REQUIRE(img->depth() == 1);
  for (size_t i = 0; i < img->size(); ++i) {
    CHECK(img->data()[i] == static_cast<float>(2.0 * static_cast<double>(i) - 1.0));
  }
  // Slope 0 means "no scaling" (nibabel's get_slope_inter returns None).
  auto unscaled = load(make_n1({2, 2, 1}, false, 0.0f, 5.0f));
  CHECK(unscaled->data()[3] == 3.0f);
}

TEST_CASE("nifti: no sform or qform gives nibabel's centred fall-back affine", "[io][nifti]") {
  auto img = load(make_n1({4, 3, 2}, false, 0.0f, 0.0f, /*sform_code=*/0));
  // nibabel: diag(-0.5, 2, 3), translation -(shape - 1) / 2 * zooms = (0.75, -2, -1.5) in RAS.
  CHECK(img->geometry.spacing[0] == Approx(0.5));
  CHECK(img->geometry.origin[0] == Approx(-0.75));
  CHECK(img->geometry.origin[1] == Approx(2.0));
  CHECK(img->geometry.origin[2] == Approx(-1.5));
  CHECK(img->geometry.direction[0] == Approx(1.0));
}

TEST_CASE("nifti: truncated, corrupt and absurd inputs fail with specific statuses",
          "[io][nifti]") {
  auto good = make_n1({4, 3, 2}, false);
  SECTION("truncated voxel data") {
    auto b = good;
    b.resize(b.size() - 1);
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "truncated");
  }
  SECTION("truncated gzip") {
    auto b = gzip(good);
    b.resize(b.size() / 2);
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "truncated");
  }
  SECTION("bad gzip data") {
    auto b = gzip(good);
    for (size_t i = 12; i < b.size() - 8; ++i) b[i] = static_cast<uint8_t>(b[i] ^ 0x5a);
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "gzip");
  }
  SECTION("gzip that is not NIfTI") {
    std::vector<uint8_t> text(600, 'a');
    expect_error([&] { load(gzip(text)); }, MV_ERR_UNSUPPORTED_FORMAT, "not NIfTI");
  }
  SECTION("unsupported datatype") {
    auto b = good;
    const int16_t complex64 = NIFTI_TYPE_COMPLEX64;
    std::memcpy(b.data() + 70, &complex64, 2);  // datatype at offset 70
    expect_error([&] { load(b); }, MV_ERR_UNSUPPORTED_FORMAT, "datatype");
  }
  SECTION("a 60000^3 header is refused before allocation") {
    // Only the header and 4 bytes: the size check must come before any voxel buffer.
    auto b = make_n1({1, 1, 1}, false);
    const int16_t d[4] = {3, 30000, 30000, 30000};  // int16 dims; 60000 needs NIfTI-2 below
    std::memcpy(b.data() + 40, d, sizeof d);
    expect_error([&] { load(b); }, MV_ERR_OUT_OF_MEMORY, "max_values");

    nifti_2_header h{};
    h.sizeof_hdr = 540;
    std::memcpy(h.magic, "n+2\0\r\n\032\n", 8);
    h.dim[0] = 3;
    h.dim[1] = h.dim[2] = h.dim[3] = 60000;
    for (int i = 0; i < 8; ++i) h.pixdim[i] = 1.0;
    h.datatype = NIFTI_TYPE_FLOAT32;
    h.bitpix = 32;
    h.vox_offset = 544;
    std::vector<uint8_t> n2(544, 0);
    std::memcpy(n2.data(), &h, sizeof h);
    expect_error([&] { load(n2); }, MV_ERR_OUT_OF_MEMORY, "max_values");
    expect_error([&] { load(gzip(n2)); }, MV_ERR_OUT_OF_MEMORY, "max_values");
  }
  SECTION("max_values is respected") {
    expect_error([&] { load(good, 23); }, MV_ERR_OUT_OF_MEMORY, "max_values");
    CHECK(load(good, 24)->size() == 24);
  }
  SECTION("negative dimension") {
    auto b = good;
    const int16_t minus = -4;
    std::memcpy(b.data() + 42, &minus, 2);
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "dim[1]");
  }
}

TEST_CASE("nifti: reads a real NIfTI-2 file", "[io][nifti]") {
  const std::string path = mvtest::data_path("nifti/nibabel/example_nifti2.nii.gz");
  if (path.empty()) return;
  auto img = io::load_file(path, io::LoadOptions{});
  CHECK(img->width() == 32);
  CHECK(img->height() == 20);
  CHECK(img->depth() == 12);
  CHECK(img->channels() == 2);
}
