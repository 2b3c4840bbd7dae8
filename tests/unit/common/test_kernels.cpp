// The shared numeric kernels of src/common: the DICOM VOI window, sigmoid/softmax, percentiles
// and half-pixel linear resampling. The VOI formulas are also compared with pydicom on DICOM
// files in tests/conformance/test_voi_pydicom.py; here the break points and the cases pydicom
// refuses (widths the standard does not allow) are pinned.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "common/activation.hpp"
#include "common/percentile.hpp"
#include "common/resample.hpp"
#include "common/voi.hpp"

using namespace medvision;

namespace {

WindowPreset window(mv_voi_function f, double c, double w) {
  WindowPreset p;
  p.function = f;
  p.center = c;
  p.width = w;
  return p;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("voi: LINEAR follows PS3.3 C.11.2.1.2.1", "[common][voi]") {
  const WindowPreset w = window(MV_VOI_LINEAR, 40, 400);
  // 0 at or below c - 0.5 - (w - 1) / 2 = -160, 1 above c - 0.5 + (w - 1) / 2 = 239;
  // ((x - 39.5) / 399 + 0.5) between.
  CHECK(voi::value(w, -160) == 0.0);
  CHECK(voi::value(w, -159) == Approx((-159 - 39.5) / 399 + 0.5));
  CHECK(voi::value(w, 39.5) == Approx(0.5));
  CHECK(voi::value(w, 239) == Approx(1.0));
  CHECK(voi::value(w, 239.01) == 1.0);
  // Width 1: a step at c - 0.5 (the formula's value where it divides by w - 1 = 0).
  const WindowPreset one = window(MV_VOI_LINEAR, 100, 1);
  CHECK(voi::value(one, 99.5) == 0.0);
  CHECK(voi::value(one, 99.51) == 1.0);
}

TEST_CASE("voi: LINEAR_EXACT and SIGMOID follow C.11.2.1.3", "[common][voi]") {
  const WindowPreset e = window(MV_VOI_LINEAR_EXACT, 50, 100);
  CHECK(voi::value(e, 0) == 0.0);
  CHECK(voi::value(e, 25) == Approx(0.25));
  CHECK(voi::value(e, 100) == 1.0);
  CHECK(voi::value(e, 100.5) == 1.0);
  const WindowPreset s = window(MV_VOI_SIGMOID, 40, 400);
  CHECK(voi::value(s, 40) == Approx(0.5));
  CHECK(voi::value(s, 140) == Approx(1.0 / (1.0 + std::exp(-1.0))));
  // No overflow far from the centre.
  CHECK(voi::value(s, -1e9) == 0.0);
  CHECK(voi::value(s, 1e9) == 1.0);
}

TEST_CASE("voi: widths the standard does not allow", "[common][voi]") {
  // LINEAR below 1 (PET in SUV units carries such windows): the LINEAR_EXACT ramp.
  const WindowPreset narrow = window(MV_VOI_LINEAR, 2.0, 0.5);
  CHECK(voi::value(narrow, 1.75) == 0.0);
  CHECK(voi::value(narrow, 2.0) == Approx(0.5));
  CHECK(voi::value(narrow, 2.125) == Approx(0.75));
  CHECK(voi::value(narrow, 2.3) == 1.0);
  CHECK_FALSE(voi::well_formed(narrow));
  // Width 0 (a constant image's percentile window, a broken preset): a step at c, whatever the
  // function; the centre itself maps to 0.
  for (mv_voi_function f : {MV_VOI_LINEAR, MV_VOI_LINEAR_EXACT, MV_VOI_SIGMOID}) {
    const WindowPreset z = window(f, 7, 0);
    CHECK(voi::value(z, 6.9) == 0.0);
    CHECK(voi::value(z, 7) == 0.0);
    CHECK(voi::value(z, 7.1) == 1.0);
    CHECK_FALSE(voi::well_formed(z));
  }
  CHECK(voi::well_formed(window(MV_VOI_LINEAR, 0, 1)));
  CHECK(voi::well_formed(window(MV_VOI_LINEAR_EXACT, 0, 0.01)));
}

TEST_CASE("voi: a VOI LUT is indexed by floor(x - first mapped), clamped", "[common][voi]") {
  WindowPreset t;
  t.function = MV_VOI_TABLE;
  t.table = {0, 100, 200, 255};
  t.first_mapped = 10;
  t.table_bits = 8;
  CHECK(voi::value(t, -5) == 0.0);
  CHECK(voi::value(t, 10) == 0.0);
  CHECK(voi::value(t, 11) == Approx(100.0 / 255));
  // A non-integer input takes the entry of the integer at or below it (pydicom's apply_voi
  // truncates x - first mapped); rounding would give entry 2 here.
  CHECK(voi::value(t, 11.5) == Approx(100.0 / 255));
  CHECK(voi::value(t, 11.99) == Approx(100.0 / 255));
  CHECK(voi::value(t, 13) == 1.0);
  CHECK(voi::value(t, 1e9) == 1.0);
  CHECK(std::isnan(voi::value(t, kNaN)));
  WindowPreset empty = t;
  empty.table.clear();
  CHECK(voi::value(empty, 11) == 0.0);
  CHECK_FALSE(voi::well_formed(empty));
}

TEST_CASE("voi: apply matches value and keeps NaN", "[common][voi]") {
  const std::vector<float> x{-1000, -160, -159, 39.5f, 40, 239.5f, static_cast<float>(kNaN)};
  for (mv_voi_function f : {MV_VOI_LINEAR, MV_VOI_LINEAR_EXACT, MV_VOI_SIGMOID}) {
    const WindowPreset w = window(f, 40, 400);
    std::vector<float> y(x.size());
    voi::apply(w, x.data(), y.data(), x.size());
    for (size_t i = 0; i + 1 < x.size(); ++i) {
      CHECK(y[i] == static_cast<float>(voi::value(w, x[i])));
    }
    CHECK(std::isnan(y.back()));
    // In place.
    std::vector<float> z = x;
    voi::apply(w, z.data(), z.data(), z.size());
    for (size_t i = 0; i + 1 < x.size(); ++i) CHECK(z[i] == y[i]);
  }
}

TEST_CASE("activation: sigmoid never overflows", "[common][activation]") {
  CHECK(sigmoid(0.0) == 0.5);
  CHECK(sigmoid(2.0) == Approx(1.0 / (1.0 + std::exp(-2.0))));
  CHECK(sigmoid(-2.0) == Approx(1.0 - sigmoid(2.0)));
  CHECK(sigmoid(-800.0) >= 0.0);
  CHECK(sigmoid(-800.0) < 1e-300);
  CHECK(sigmoid(800.0) == 1.0);
  CHECK(sigmoid(-40.0) == Approx(std::exp(-40.0)).epsilon(1e-12));  // keeps relative precision
}

TEST_CASE("activation: softmax is max-subtracted and strided", "[common][activation]") {
  const std::vector<float> z{1000.0f, 1001.0f, 999.0f};
  std::vector<float> p(3);
  softmax(z.data(), 3, 1, p.data());
  const double e = std::exp(1.0), sum = e + e * e + 1.0;
  CHECK(p[0] == Approx(e / sum));
  CHECK(p[1] == Approx(e * e / sum));
  CHECK(p[2] == Approx(1.0 / sum));
  CHECK(softmax_at(z.data(), 3, 1, 1) == Approx(e * e / sum));
  // [K = 2, n = 3] planar, softmax across K at every position, in place.
  std::vector<double> v{0, 5, -800, 0, -5, 800};
  for (int64_t i = 0; i < 3; ++i) softmax(v.data() + i, 2, 3, v.data() + i);
  CHECK(v[0] == Approx(0.5));
  CHECK(v[3] == Approx(0.5));
  CHECK(v[1] == Approx(sigmoid(10.0)));
  CHECK(v[2] == 0.0);
  CHECK(v[5] == 1.0);
}

TEST_CASE("percentile: numpy's linear interpolation, NaNs ignored", "[common][percentile]") {
  // numpy.percentile([10, 20, 30, 50], [50, 90]) = [25, 44].
  const std::vector<float> x{50, 10, 30, 20};
  const auto p = percentiles(x.data(), 4, 50, 90);
  CHECK(p.first == Approx(25));
  CHECK(p.second == Approx(44));
  CHECK(percentile_sorted({10, 20, 30, 50}, 90) == Approx(44));
  CHECK(percentile_sorted({10, 20, 30, 50}, 0) == 10);
  CHECK(percentile_sorted({10, 20, 30, 50}, 100) == 50);
  // numpy.nanpercentile([nan, 1, nan, 3, 2], [0.5, 99.5]) = [1.01, 2.99].
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> y{nan, 1, nan, 3, 2};
  const auto q = percentiles(y.data(), 5, 0.5, 99.5);
  CHECK(q.first == Approx(1.01));
  CHECK(q.second == Approx(2.99));
  // The high percentile below the low one still selects correctly.
  const auto r = percentiles(x.data(), 4, 90, 50);
  CHECK(r.first == Approx(44));
  CHECK(r.second == Approx(25));
  const std::vector<float> none{nan, nan};
  CHECK(percentiles(none.data(), 2, 1, 99) == std::pair<double, double>{0.0, 0.0});
}

TEST_CASE("resample: half-pixel linear as torch interpolate", "[common][resample]") {
  // torch.nn.functional.interpolate(tensor([[[0., 1., 2., 3.]]]), size=8, mode='linear',
  // align_corners=False) = [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3].
  const std::vector<float> row{0, 1, 2, 3};
  const auto up = resample::upsample_linear(row.data(), {{1, 1, 4}}, {{1, 1, 8}});
  const std::vector<float> want{0, 0.25f, 0.75f, 1.25f, 1.75f, 2.25f, 2.75f, 3};
  REQUIRE(up.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(up[i] == Approx(want[i]).margin(1e-6));
  // Down by 2 without antialias: the mean of each pair (source 2o + 0.5).
  const auto down = resample::resample(row.data(), 1, {{1, 1, 4}}, {{1, 1, 2}}, false);
  CHECK(down == std::vector<float>{0.5f, 2.5f});
  // With antialias (PIL's triangle widened by 2): interpolate(..., size=(1, 2),
  // mode='bilinear', antialias=True) = [0.7143, 2.2857] = [5/7, 16/7].
  const auto aa = resample::resample(row.data(), 1, {{1, 1, 4}}, {{1, 1, 2}}, true);
  CHECK(aa[0] == Approx(5.0 / 7));
  CHECK(aa[1] == Approx(16.0 / 7));
  // Separable over three axes: a [2, 2, 2] cube to [4, 4, 4] keeps the corners and the mean.
  const std::vector<float> cube{0, 1, 2, 3, 4, 5, 6, 7};
  const auto big = resample::upsample_linear(cube.data(), {{2, 2, 2}}, {{4, 4, 4}});
  CHECK(big.front() == 0.0f);
  CHECK(big.back() == 7.0f);
  double mean = 0;
  for (float v : big) mean += v;
  CHECK(mean / 64 == Approx(3.5));
}
