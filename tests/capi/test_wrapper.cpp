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

TEST_CASE("wrapper: every option type holds its C *_init struct, field by field",
          "[capi][wrapper]") {
  mv_model_options m;
  REQUIRE(mv_model_options_default(&m) == MV_OK);
  const medvision::ModelOptions mo;
  const mv_model_options* mw = mo.c();
  CHECK(mw->struct_size == m.struct_size);
  CHECK(mw->device == m.device);  // NULL: the library picks ("auto")
  CHECK(mw->num_threads == m.num_threads);
  CHECK(mw->precision == m.precision);
  CHECK(mw->warmup == m.warmup);
  CHECK(mw->optimize == m.optimize);
  CHECK(mo.device().empty());
  CHECK(mo.num_threads() == m.num_threads);
  CHECK(mo.precision() == m.precision);
  CHECK(mo.warmup() == (m.warmup != 0));
  CHECK(mo.optimize() == (m.optimize != 0));

  mv_segment_options s;
  REQUIRE(mv_segment_options_default(&s) == MV_OK);
  const medvision::SegmentOptions so;
  const mv_segment_options* sw = so.c();
  CHECK(sw->struct_size == s.struct_size);
  CHECK(sw->overlap == s.overlap);
  CHECK(sw->batch_size == s.batch_size);
  CHECK(sw->mirror == s.mirror);
  CHECK(sw->probabilities == s.probabilities);
  CHECK(sw->largest_component == s.largest_component);
  CHECK(sw->fill_holes == s.fill_holes);
  CHECK(sw->progress == s.progress);
  CHECK(sw->progress_user == s.progress_user);
  CHECK(so.overlap() == s.overlap);
  CHECK(so.batch_size() == s.batch_size);
  CHECK(so.mirror() == s.mirror);
  CHECK(so.probabilities() == (s.probabilities != 0));
  CHECK(so.largest_component() == s.largest_component);
  CHECK(so.fill_holes() == s.fill_holes);
  CHECK(so.progress() == s.progress);
  CHECK(so.progress_user() == s.progress_user);

  mv_image_load_options l;
  REQUIRE(mv_image_load_options_default(&l) == MV_OK);
  const medvision::LoadOptions lo;
  const mv_image_load_options* lw = lo.c();
  CHECK(lw->struct_size == l.struct_size);
  CHECK(lw->frame == l.frame);
  CHECK(lw->apply_voi == l.apply_voi);
  CHECK(lw->max_values == l.max_values);
  CHECK(lw->series_uid == l.series_uid);
  CHECK(lw->pixel_spacing[0] == l.pixel_spacing[0]);
  CHECK(lw->pixel_spacing[1] == l.pixel_spacing[1]);
  CHECK(lo.frame() == l.frame);
  CHECK(lo.apply_voi() == l.apply_voi);
  CHECK(lo.max_values() == l.max_values);
  CHECK(lo.series_uid().empty());
  CHECK(lo.pixel_spacing()[0] == l.pixel_spacing[0]);
  CHECK(lo.pixel_spacing()[1] == l.pixel_spacing[1]);

  mv_evaluate_options e;
  REQUIRE(mv_evaluate_options_default(&e) == MV_OK);
  const medvision::EvaluateOptions eo;
  const mv_evaluate_options* ew = eo.c();
  CHECK(ew->struct_size == e.struct_size);
  CHECK(ew->bootstrap == e.bootstrap);
  CHECK(ew->bins == e.bins);
  CHECK(ew->reserved == e.reserved);
  CHECK(ew->seed == e.seed);
  CHECK(ew->level == e.level);
  CHECK(ew->threshold == e.threshold);
  CHECK(ew->sensitivity == e.sensitivity);
  CHECK(eo.bootstrap() == e.bootstrap);
  CHECK(eo.bins() == e.bins);
  CHECK(eo.seed() == e.seed);
  CHECK(eo.level() == e.level);
  CHECK(eo.threshold() == e.threshold);
  CHECK(eo.sensitivity() == e.sensitivity);

  mv_explain_options x;
  REQUIRE(mv_explain_options_default(&x) == MV_OK);
  const medvision::ExplainOptions xo;
  const mv_explain_options* xw = xo.c();
  CHECK(xw->struct_size == x.struct_size);
  CHECK(xw->method == x.method);
  CHECK(xw->label == x.label);
  CHECK(xw->progress == x.progress);
  CHECK(xw->progress_user == x.progress_user);
  CHECK(xo.method() == x.method);
  CHECK(xo.label() == x.label);

  mv_dicom_sr_options r;
  REQUIRE(mv_dicom_sr_options_default(&r) == MV_OK);
  const medvision::DicomSrOptions ro;
  CHECK(ro.c()->struct_size == r.struct_size);
  CHECK(ro.c()->seg_path == r.seg_path);
  CHECK(ro.seg_path().empty());

  mv_image_geometry g;
  REQUIRE(mv_image_geometry_init(&g, sizeof g) == MV_OK);
  const medvision::ImageGeometry go;
  const mv_image_geometry* gw = go.c();
  CHECK(gw->struct_size == g.struct_size);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(gw->spacing[i] == g.spacing[i]);
    CHECK(gw->origin[i] == g.origin[i]);
    CHECK(go.spacing()[i] == g.spacing[i]);
    CHECK(go.origin()[i] == g.origin[i]);
  }
  for (size_t i = 0; i < 9; ++i) {
    CHECK(gw->direction[i] == g.direction[i]);
    CHECK(go.direction()[i] == g.direction[i]);
  }
  CHECK(gw->photometric == g.photometric);
  CHECK(go.photometric() == static_cast<mv_photometric>(g.photometric));
}

namespace {
int32_t no_progress(uint64_t, uint64_t, void*) { return 1; }
}  // namespace

TEST_CASE("wrapper: option setters chain and reach the C struct", "[capi][wrapper]") {
  int user = 0;
  std::string device = "cpu";
  medvision::ModelOptions mo;
  mo.set_device(device)
      .set_num_threads(3)
      .set_precision(MV_PRECISION_REDUCED)
      .set_warmup(false)
      .set_optimize(false);
  device = "changed";
  const medvision::ModelOptions mcopy = mo;
  for (const medvision::ModelOptions* x :
       {&static_cast<const medvision::ModelOptions&>(mo), &mcopy}) {
    const mv_model_options* w = x->c();
    REQUIRE(w->device != nullptr);
    CHECK(std::string(w->device) == "cpu");
    CHECK(w->device == x->device().c_str());  // the copy's own string
    CHECK(w->num_threads == 3);
    CHECK(w->precision == MV_PRECISION_REDUCED);
    CHECK(w->warmup == 0);
    CHECK(w->optimize == 0);
  }
  CHECK(medvision::ModelOptions().set_device("").c()->device == nullptr);

  const medvision::SegmentOptions so = medvision::SegmentOptions()
                                           .set_overlap(0.25)
                                           .set_batch_size(4)
                                           .set_mirror(0)
                                           .set_probabilities(true)
                                           .set_largest_component(1)
                                           .set_fill_holes(0)
                                           .set_progress(&no_progress, &user);
  CHECK(so.c()->overlap == 0.25);
  CHECK(so.c()->batch_size == 4);
  CHECK(so.c()->mirror == 0);
  CHECK(so.c()->probabilities == 1);
  CHECK(so.c()->largest_component == 1);
  CHECK(so.c()->fill_holes == 0);
  CHECK(so.c()->progress == &no_progress);
  CHECK(so.c()->progress_user == &user);

  medvision::LoadOptions lo;
  lo.set_frame(2).set_apply_voi(0).set_max_values(1000).set_series_uid("1.2.3").set_pixel_spacing(
      0.5, 0.7);
  const medvision::LoadOptions lcopy = lo;
  for (const medvision::LoadOptions* x :
       {&static_cast<const medvision::LoadOptions&>(lo), &lcopy}) {
    const mv_image_load_options* w = x->c();
    CHECK(w->frame == 2);
    CHECK(w->apply_voi == 0);
    CHECK(w->max_values == 1000);
    REQUIRE(w->series_uid != nullptr);
    CHECK(std::string(w->series_uid) == "1.2.3");
    CHECK(w->series_uid == x->series_uid().c_str());
    CHECK(w->pixel_spacing[0] == 0.5);
    CHECK(w->pixel_spacing[1] == 0.7);
  }

  const medvision::EvaluateOptions eo = medvision::EvaluateOptions()
                                            .set_bootstrap(10)
                                            .set_bins(5)
                                            .set_seed(7)
                                            .set_level(0.9)
                                            .set_threshold(0.3)
                                            .set_sensitivity(0.8);
  CHECK(eo.c()->bootstrap == 10);
  CHECK(eo.c()->bins == 5);
  CHECK(eo.c()->seed == 7);
  CHECK(eo.c()->level == 0.9);
  CHECK(eo.c()->threshold == 0.3);
  CHECK(eo.c()->sensitivity == 0.8);

  const medvision::ExplainOptions xo = medvision::ExplainOptions()
                                           .set_method(MV_CAM_CAM)
                                           .set_label(2)
                                           .set_progress(&no_progress, &user);
  CHECK(xo.c()->method == MV_CAM_CAM);
  CHECK(xo.c()->label == 2);
  CHECK(xo.c()->progress == &no_progress);
  CHECK(xo.c()->progress_user == &user);

  const medvision::DicomSrOptions ro = medvision::DicomSrOptions().set_seg_path("a.seg.dcm");
  REQUIRE(ro.c()->seg_path != nullptr);
  CHECK(std::string(ro.c()->seg_path) == "a.seg.dcm");

  const medvision::ImageGeometry go = medvision::ImageGeometry()
                                          .set_spacing({{0.5, 0.6, 2.0}})
                                          .set_origin({{1, 2, 3}})
                                          .set_direction({{0, 1, 0, 1, 0, 0, 0, 0, -1}})
                                          .set_photometric(MV_PHOTOMETRIC_MONOCHROME1);
  CHECK(go.c()->spacing[2] == 2.0);
  CHECK(go.c()->origin[1] == 2.0);
  CHECK(go.c()->direction[8] == -1.0);
  CHECK(go.c()->photometric == MV_PHOTOMETRIC_MONOCHROME1);
}

TEST_CASE("wrapper: to_string and parse use the C names", "[capi][wrapper][names]") {
  CHECK(std::string(medvision::to_string(MV_REFER_PREDICTIVE_VALUE)) == "predictive-value");
  volatile int beyond = 42;  // a C caller's value out of range
  CHECK(std::string(medvision::to_string(static_cast<mv_refer_mode>(beyond))) == "unknown");
  CHECK(medvision::parse<mv_refer_mode>("none") == MV_REFER_NONE);
  CHECK(medvision::parse<mv_cam_method>("gradcampp") == MV_CAM_GRADCAM_PLUS_PLUS);
  CHECK(medvision::parse<mv_activation>("softmax") == MV_ACTIVATION_SOFTMAX);
  CHECK(medvision::parse<mv_label_overlap>("highest") == MV_LABEL_OVERLAP_HIGHEST);
  CHECK(std::string(medvision::to_string(MV_LABEL_OVERLAP_LOWEST)) == "lowest");
  try {
    (void)medvision::parse<mv_operating_rule>("best");
    FAIL("parse accepted 'best'");
  } catch (const medvision::Exception& e) {
    CHECK(e.status() == MV_ERR_INVALID_ARGUMENT);
    CHECK(std::string(e.what()).find("'youden', 'sensitivity' or 'specificity'") !=
          std::string::npos);
  }
}
