// The names of option values (mv_<enum>_name / mv_<enum>_parse). Links only libmedvision.so.
#include <catch2/catch.hpp>
#include <string>

#include "medvision/medvision.h"

namespace {

// Every value's name parses back to the value; a wrong name is refused with the names listed,
// leaving *out untouched; NULLs are refused.
template <typename E>
void round_trip(const char* (*name)(E), mv_status (*parse)(const char*, E*), int count,
                const char* listed) {
  for (int v = 0; v < count; ++v) {
    const char* n = name(static_cast<E>(v));
    INFO(v);
    REQUIRE(n != nullptr);
    E back = static_cast<E>(v == 0 ? 1 : 0);
    REQUIRE(parse(n, &back) == MV_OK);
    CHECK(static_cast<int>(back) == v);
    CHECK(std::string(mv_last_error()).empty());
  }
  // Values out of range, as a C caller may pass them (a runtime int: C++ may not name them).
  volatile int beyond = count, below = -1;
  CHECK(name(static_cast<E>(beyond)) == nullptr);
  CHECK(name(static_cast<E>(below)) == nullptr);
  const E last = static_cast<E>(count - 1);
  E untouched = last;
  REQUIRE(parse("No Such Value", &untouched) == MV_ERR_INVALID_ARGUMENT);
  CHECK(untouched == last);
  const std::string msg = mv_last_error();
  CHECK(msg.find(listed) != std::string::npos);
  CHECK(msg.find("'No Such Value'") != std::string::npos);
  CHECK(parse(nullptr, &untouched) == MV_ERR_INVALID_ARGUMENT);
  CHECK(parse(name(static_cast<E>(0)), nullptr) == MV_ERR_INVALID_ARGUMENT);
  // Names are exact: no case folding.
  std::string upper = name(static_cast<E>(0));
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  CHECK(parse(upper.c_str(), &untouched) == MV_ERR_INVALID_ARGUMENT);
}

}  // namespace

TEST_CASE("capi: option values have one name each, parsed back exactly", "[capi][names]") {
  round_trip(mv_calibration_method_name, mv_calibration_method_parse, 3,
             "'temperature', 'platt' or 'isotonic'");
  round_trip(mv_operating_rule_name, mv_operating_rule_parse, 3,
             "'youden', 'sensitivity' or 'specificity'");
  round_trip(mv_refer_mode_name, mv_refer_mode_parse, 4,
             "'logit', 'fixed', 'predictive-value' or 'none'");
  round_trip(mv_conformal_score_name, mv_conformal_score_parse, 2, "'lac' or 'aps'");
  round_trip(mv_cam_method_name, mv_cam_method_parse, 3, "'gradcam', 'gradcam++' or 'cam'");
  round_trip(mv_precision_name, mv_precision_parse, 2, "'float32' or 'reduced'");
  round_trip(mv_task_name, mv_task_parse, 2, "'classification' or 'segmentation'");
  round_trip(mv_activation_name, mv_activation_parse, 2, "'sigmoid' or 'softmax'");
  round_trip(mv_label_overlap_name, mv_label_overlap_parse, 3,
             "label overlap rule must be 'error', 'lowest' or 'highest'");
}

TEST_CASE("capi: the names are the ones front ends have always used", "[capi][names]") {
  CHECK(std::string(mv_calibration_method_name(MV_CALIBRATION_ISOTONIC)) == "isotonic");
  CHECK(std::string(mv_refer_mode_name(MV_REFER_PREDICTIVE_VALUE)) == "predictive-value");
  CHECK(std::string(mv_conformal_score_name(MV_CONFORMAL_SCORE_APS)) == "aps");
  CHECK(std::string(mv_cam_method_name(MV_CAM_GRADCAM_PLUS_PLUS)) == "gradcam++");
  CHECK(std::string(mv_task_name(MV_TASK_SEGMENTATION)) == "segmentation");
  CHECK(std::string(mv_activation_name(MV_ACTIVATION_SOFTMAX)) == "softmax");
  // Python's load_label_map(overlaps=...) spellings since it was added.
  CHECK(std::string(mv_label_overlap_name(MV_LABEL_OVERLAP_ERROR)) == "error");
  CHECK(std::string(mv_label_overlap_name(MV_LABEL_OVERLAP_HIGHEST)) == "highest");
  // The CLI's and Python's old alias of Grad-CAM++.
  mv_cam_method m = MV_CAM_CAM;
  REQUIRE(mv_cam_method_parse("gradcampp", &m) == MV_OK);
  CHECK(m == MV_CAM_GRADCAM_PLUS_PLUS);
}

TEST_CASE("capi: calibration report accessors accept NULL", "[capi][calibrate]") {
  CHECK(std::string(mv_calibration_report_json(nullptr)).empty());
  mv_calibration_report_free(nullptr);
  CHECK(mv_model_activation(nullptr) == MV_ACTIVATION_SIGMOID);
  mv_calibration_report* r = nullptr;
  float z = 0.0f;
  int32_t y = 0;
  CHECK(mv_model_calibrate_report(nullptr, &z, &y, 1, nullptr, "/nonexistent/x", &r) ==
        MV_ERR_INVALID_ARGUMENT);
  CHECK(r == nullptr);
  CHECK(std::string(mv_last_error()).find("mv_model_calibrate_report: model is NULL") !=
        std::string::npos);
}
