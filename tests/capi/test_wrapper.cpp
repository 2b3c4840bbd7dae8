// The C++ wrapper (medvision.hpp) over the C ABI: option types hold the C library's defaults and
// never restate them; option values by the C names. Links only libmedvision.so.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "medvision/medvision.hpp"

TEST_CASE("wrapper: CalibrateOptions holds mv_calibrate_options_init()'s struct",
          "[capi][wrapper]") {
  mv_calibrate_options c;
  REQUIRE(mv_calibrate_options_default(&c) == MV_OK);
  medvision::CalibrateOptions o;
  const mv_calibrate_options* w = o.c();
  CHECK(w->struct_size == c.struct_size);
  CHECK(w->method == c.method);
  CHECK(w->rule == c.rule);
  CHECK(w->target == c.target);
  CHECK(w->refer_half_width == c.refer_half_width);
  CHECK(w->conformal == c.conformal);
  CHECK(w->alpha == c.alpha);
  CHECK(w->refer_mode == c.refer_mode);
  CHECK(w->refer_logit_half_width == c.refer_logit_half_width);
  CHECK(w->refer_npv == c.refer_npv);
  CHECK(w->refer_ppv == c.refer_ppv);
  CHECK(w->conformal_score == c.conformal_score);
  CHECK(w->data_description == nullptr);
  CHECK(w->version == nullptr);
  // Setters chain and reach the C struct; strings are owned by the options object.
  std::string version = "2.0";
  o.set_method(MV_CALIBRATION_ISOTONIC)
      .set_rule(MV_OPERATING_SENSITIVITY)
      .set_target(0.8)
      .set_refer_mode(MV_REFER_LOGIT)
      .set_refer_logit_half_width(1.5)
      .set_refer_npv(0.99)
      .set_refer_ppv(0.8)
      .set_refer_half_width(0.2)
      .set_conformal(true)
      .set_alpha(0.05)
      .set_conformal_score(MV_CONFORMAL_SCORE_APS)
      .set_data_description("site 2")
      .set_version(version);
  version = "changed";
  const medvision::CalibrateOptions copy = o;
  for (const medvision::CalibrateOptions* x :
       {&static_cast<const medvision::CalibrateOptions&>(o), &copy}) {
    w = x->c();
    CHECK(w->method == MV_CALIBRATION_ISOTONIC);
    CHECK(w->rule == MV_OPERATING_SENSITIVITY);
    CHECK(w->target == 0.8);
    CHECK(w->refer_mode == MV_REFER_LOGIT);
    CHECK(w->refer_logit_half_width == 1.5);
    CHECK(w->refer_npv == 0.99);
    CHECK(w->refer_ppv == 0.8);
    CHECK(w->refer_half_width == 0.2);
    CHECK(w->conformal == 1);
    CHECK(w->alpha == 0.05);
    CHECK(w->conformal_score == MV_CONFORMAL_SCORE_APS);
    REQUIRE(w->data_description != nullptr);
    CHECK(std::string(w->data_description) == "site 2");
    CHECK(std::string(w->version) == "2.0");
    CHECK(w->data_description == x->data_description().c_str());  // the copy's own string
  }
  CHECK(o.method() == MV_CALIBRATION_ISOTONIC);
  CHECK(o.refer_mode() == MV_REFER_LOGIT);
}

TEST_CASE("wrapper: the other option types start from their C *_init", "[capi][wrapper]") {
  mv_model_options m;
  REQUIRE(mv_model_options_default(&m) == MV_OK);
  const medvision::ModelOptions mo;
  CHECK(mo.num_threads == m.num_threads);
  CHECK(mo.precision == m.precision);
  CHECK(mo.warmup == (m.warmup != 0));
  CHECK(mo.optimize == (m.optimize != 0));
  CHECK(mo.device == "auto");  // NULL in C means "auto"
  mv_segment_options s;
  REQUIRE(mv_segment_options_default(&s) == MV_OK);
  const medvision::SegmentOptions so;
  CHECK(so.overlap == s.overlap);
  CHECK(so.batch_size == s.batch_size);
  CHECK(so.mirror == s.mirror);
  CHECK(so.largest_component == s.largest_component);
  CHECK(so.fill_holes == s.fill_holes);
  CHECK(so.progress == nullptr);
  mv_image_load_options l;
  REQUIRE(mv_image_load_options_default(&l) == MV_OK);
  const medvision::LoadOptions lo;
  CHECK(lo.frame == l.frame);
  CHECK(lo.apply_voi == l.apply_voi);
  CHECK(lo.max_values == l.max_values);
  CHECK(lo.pixel_spacing[0] == l.pixel_spacing[0]);
  mv_evaluate_options e;
  REQUIRE(mv_evaluate_options_default(&e) == MV_OK);
  const medvision::EvaluateOptions eo;
  CHECK(eo.bootstrap == e.bootstrap);
  CHECK(eo.bins == e.bins);
  CHECK(eo.seed == e.seed);
  CHECK(eo.level == e.level);
  CHECK(eo.threshold == e.threshold);
  CHECK(eo.sensitivity == e.sensitivity);
}

TEST_CASE("wrapper: to_string and parse use the C names", "[capi][wrapper][names]") {
  CHECK(std::string(medvision::to_string(MV_REFER_PREDICTIVE_VALUE)) == "predictive-value");
  volatile int beyond = 42;  // a C caller's value out of range
  CHECK(std::string(medvision::to_string(static_cast<mv_refer_mode>(beyond))) == "unknown");
  CHECK(medvision::parse<mv_refer_mode>("none") == MV_REFER_NONE);
  CHECK(medvision::parse<mv_cam_method>("gradcampp") == MV_CAM_GRADCAM_PLUS_PLUS);
  CHECK(medvision::parse<mv_activation>("softmax") == MV_ACTIVATION_SOFTMAX);
  try {
    (void)medvision::parse<mv_operating_rule>("best");
    FAIL("parse accepted 'best'");
  } catch (const medvision::Exception& e) {
    CHECK(e.status() == MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(e.what()).find("'youden', 'sensitivity' or 'specificity'") !=
          std::string::npos);
  }
}
