// Raster reader: images encoded here with OpenCV (PNG 8/16-bit, TIFF 16-bit, BMP, JPEG with an
// EXIF orientation inserted by hand) and malformed or truncated inputs of each format.

#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "common/error.hpp"
#include "io/io.hpp"
#include "test_data.hpp"

using medvision::Error;
using medvision::Image;
namespace io = medvision::io;

namespace {

std::unique_ptr<Image> load(const std::vector<uint8_t>& b, uint64_t max_values = 1u << 30) {
  io::LoadOptions o;
  o.max_values = max_values;
  return io::load_memory(b.data(), b.size(), o, "mem.img");
}

std::vector<uint8_t> encode(const std::string& ext, const cv::Mat& m) {
  std::vector<uint8_t> out;
  REQUIRE(cv::imencode(ext, m, out));
  return out;
}

// A 3x2 BGR test image whose pixels are all distinct.
cv::Mat colour_image() {
  cv::Mat m(2, 3, CV_8UC3);
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 3; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(uint8_t(10 * x), uint8_t(100 + y), 200);
  }
  return m;
}

template <typename F>
void expect_error(F f, mv_status status, const std::string& needle) {
  try {
    f();
    FAIL("no error thrown");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.status() == status);
    CHECK(std::string(e.what()).find("mem.img") != std::string::npos);
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

// Inserts an APP1 Exif segment holding only an Orientation tag right after SOI.
std::vector<uint8_t> with_exif_orientation(const std::vector<uint8_t>& jpeg, uint16_t value) {
  const uint8_t tiff[] = {'M',  'M',  0, 42, 0, 0, 0, 8,  // header, IFD0 at 8
                          0,    1,                        // one entry
                          0x01, 0x12, 0, 3,  0, 0, 0, 1, uint8_t(value >> 8), uint8_t(value),
                          0,    0,    0, 0,  0, 0};  // no next IFD
  std::vector<uint8_t> seg = {0xff, 0xe1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  seg.insert(seg.end(), tiff, tiff + sizeof tiff);
  const size_t len = seg.size() - 2;
  seg[2] = uint8_t(len >> 8);
  seg[3] = uint8_t(len);
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);
  out.insert(out.end(), seg.begin(), seg.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

}  // namespace

TEST_CASE("raster: PNG 8-bit colour becomes planar RGB", "[io][raster]") {
  auto img = load(encode(".png", colour_image()));
  REQUIRE(img->channels() == 3);
  REQUIRE(img->height() == 2);
  REQUIRE(img->width() == 3);
  CHECK(img->format == MV_FORMAT_PNG);
  CHECK(img->photometric == MV_PHOTOMETRIC_RGB);
  const size_t plane = img->plane_size();
  CHECK(img->data()[0 * plane + 2] == 200.0f);  // R = OpenCV's third (B, G, R) component
  CHECK(img->data()[1 * plane + 3] == 101.0f);  // G at (x 0, y 1)
  CHECK(img->data()[2 * plane + 2] == 20.0f);   // B at (x 2, y 0)
}

TEST_CASE("raster: 16-bit grey PNG and TIFF keep their values", "[io][raster]") {
  cv::Mat m(3, 4, CV_16UC1);
  for (int i = 0; i < 12; ++i) m.at<uint16_t>(i / 4, i % 4) = static_cast<uint16_t>(i * 5000 + 7);
  for (const char* ext : {".png", ".tif"}) {
    INFO(ext);
    auto img = load(encode(ext, m));
    REQUIRE(img->channels() == 1);
    CHECK(img->photometric == MV_PHOTOMETRIC_MONOCHROME2);
    CHECK(img->stored_dtype == MV_DTYPE_UINT16);
    CHECK(img->bits_stored == 16);
    for (int i = 0; i < 12; ++i) CHECK(img->data()[i] == static_cast<float>(i * 5000 + 7));
  }
}

TEST_CASE("raster: BMP grey and colour", "[io][raster]") {
  cv::Mat grey(2, 3, CV_8UC1);
  for (int i = 0; i < 6; ++i) grey.at<uint8_t>(i / 3, i % 3) = static_cast<uint8_t>(i * 40);
  auto g = load(encode(".bmp", grey));
  CHECK(g->format == MV_FORMAT_BMP);
  REQUIRE(g->channels() == 1);
  CHECK(g->data()[5] == 200.0f);
  auto c = load(encode(".bmp", colour_image()));
  REQUIRE(c->channels() == 3);
  CHECK(c->data()[2] == 200.0f);
}

TEST_CASE("raster: JPEG EXIF orientation 6 is applied", "[io][raster]") {
  // A 16x8 grey image, left half black, right half white: after orientation 6 (rotate 90
  // clockwise) it is 8 wide and 16 high, with the top half black.
  cv::Mat m(8, 16, CV_8UC1, cv::Scalar(0));
  m(cv::Rect(8, 0, 8, 8)).setTo(255);
  auto img = load(with_exif_orientation(encode(".jpg", m), 6));
  REQUIRE(img->width() == 8);
  REQUIRE(img->height() == 16);
  CHECK(img->data()[2 * 8 + 4] < 30.0f);    // row 2: from the black half
  CHECK(img->data()[13 * 8 + 4] > 225.0f);  // row 13: from the white half
  auto plain = load(encode(".jpg", m));
  CHECK(plain->width() == 16);
}

TEST_CASE("raster: malformed and truncated inputs", "[io][raster]") {
  const auto png = encode(".png", colour_image());
  const auto jpg = encode(".jpg", colour_image());
  const auto bmp = encode(".bmp", colour_image());
  const auto tif = encode(".tif", colour_image());
  SECTION("PNG without IHDR") {
    auto b = png;
    b[12] = 'X';
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "PNG");
  }
  SECTION("truncated PNG") {
    std::vector<uint8_t> b(png.begin(), png.begin() + static_cast<long>(png.size() - 20));
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "PNG");
  }
  SECTION("truncated JPEG") {
    std::vector<uint8_t> b(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() - 10));
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "truncated");
  }
  SECTION("JPEG header only") {
    std::vector<uint8_t> b(jpg.begin(), jpg.begin() + 20);
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "JPEG");
  }
  SECTION("truncated BMP") {
    std::vector<uint8_t> b(bmp.begin(), bmp.begin() + 30);
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "BMP");
  }
  SECTION("TIFF with a bad IFD offset") {
    auto b = tif;
    b[4] = b[5] = b[6] = b[7] = 0x7f;
    expect_error([&] { load(b); }, MV_ERR_CORRUPT_DATA, "TIFF");
  }
  SECTION("max_values is checked from the header") {
    expect_error([&] { load(png, 17); }, MV_ERR_OUT_OF_MEMORY, "max_values");
    // A PNG header claiming 60000 x 60000 pixels: refused before OpenCV decodes anything.
    auto b = png;
    const uint8_t big[8] = {0, 0, 0xea, 0x60, 0, 0, 0xea, 0x60};
    std::memcpy(b.data() + 16, big, 8);
    expect_error([&] { load(b); }, MV_ERR_OUT_OF_MEMORY, "max_values");
  }
}

TEST_CASE("raster: a real chest X-ray PNG", "[io][raster]") {
  const std::string path = mvtest::data_path("jsrt/images/JPCLN001.png");
  if (path.empty()) return;
  auto img = io::load_file(path, io::LoadOptions{});
  CHECK(img->format == MV_FORMAT_PNG);
  CHECK(img->depth() == 1);
  CHECK(img->width() > 0);
}
