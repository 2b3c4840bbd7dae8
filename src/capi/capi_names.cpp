// C API: the one spelling of every option value (mv_<enum>_name / mv_<enum>_parse), used by the
// CLI, the Python bindings and configuration files alike.

#include <cstddef>
#include <cstring>
#include <string>

#include "capi/capi_guard.hpp"

namespace {

struct Name {
  int value;
  const char* name;
};

template <size_t N>
const char* name_of(const Name (&table)[N], int value) {
  for (const Name& n : table) {
    if (n.value == value) return n.name;
  }
  return nullptr;
}

// Looks `name` up (exact match); aliases follow the names in the table and are not listed in
// the message. `listed`: how many leading entries are the canonical names.
template <typename E, size_t N>
mv_status parse(const Name (&table)[N], size_t listed, const char* what, const char* fn,
                const char* name, E* out) {
  MV_CHECK_ARG(out != nullptr, (std::string(fn) + ": out is NULL").c_str());
  MV_CHECK_ARG(name != nullptr, (std::string(fn) + ": name is NULL").c_str());
  for (const Name& n : table) {
    if (std::strcmp(n.name, name) == 0) {
      *out = static_cast<E>(n.value);
      return MV_OK;
    }
  }
  std::string choices;
  for (size_t i = 0; i < listed && i < N; ++i) {
    choices += (i == 0 ? "" : (i + 1 == listed ? " or " : ", "));
    choices += std::string("'") + table[i].name + "'";
  }
  return medvision::capi::fail(
      MV_ERR_INVALID_ARGUMENT,
      (std::string(what) + " must be " + choices + ", not '" + name + "'").c_str());
}

constexpr Name kMethods[] = {{MV_CALIBRATION_TEMPERATURE, "temperature"},
                             {MV_CALIBRATION_PLATT, "platt"},
                             {MV_CALIBRATION_ISOTONIC, "isotonic"}};
constexpr Name kRules[] = {{MV_OPERATING_YOUDEN, "youden"},
                           {MV_OPERATING_SENSITIVITY, "sensitivity"},
                           {MV_OPERATING_SPECIFICITY, "specificity"}};
constexpr Name kReferModes[] = {{MV_REFER_LOGIT, "logit"},
                                {MV_REFER_FIXED, "fixed"},
                                {MV_REFER_PREDICTIVE_VALUE, "predictive-value"},
                                {MV_REFER_NONE, "none"}};
constexpr Name kConformalScores[] = {{MV_CONFORMAL_SCORE_LAC, "lac"},
                                     {MV_CONFORMAL_SCORE_APS, "aps"}};
constexpr Name kCamMethods[] = {{MV_CAM_GRADCAM, "gradcam"},
                                {MV_CAM_GRADCAM_PLUS_PLUS, "gradcam++"},
                                {MV_CAM_CAM, "cam"},
                                {MV_CAM_GRADCAM_PLUS_PLUS, "gradcampp"}};  // alias
constexpr Name kPrecisions[] = {{MV_PRECISION_FLOAT32, "float32"},
                                {MV_PRECISION_REDUCED, "reduced"}};
constexpr Name kTasks[] = {{MV_TASK_CLASSIFICATION, "classification"},
                           {MV_TASK_SEGMENTATION, "segmentation"}};
constexpr Name kActivations[] = {{MV_ACTIVATION_SIGMOID, "sigmoid"},
                                 {MV_ACTIVATION_SOFTMAX, "softmax"}};
constexpr Name kLabelOverlaps[] = {{MV_LABEL_OVERLAP_ERROR, "error"},
                                   {MV_LABEL_OVERLAP_LOWEST, "lowest"},
                                   {MV_LABEL_OVERLAP_HIGHEST, "highest"}};

}  // namespace

// Defines mv_<enum>_name and mv_<enum>_parse over one table.
// The arguments are identifiers pasted into declarations and calls, never expressions.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define MV_ENUM_NAMES(prefix, type, table, listed, what)              \
  const char* prefix##_name(type value) MV_NOEXCEPT {                 \
    return name_of(table, static_cast<int>(value));                   \
  }                                                                   \
  mv_status prefix##_parse(const char* name, type* out) MV_NOEXCEPT { \
    MV_CAPI_BEGIN                                                     \
    return parse(table, listed, what, #prefix "_parse", name, out);   \
    MV_CAPI_END                                                       \
  }
// NOLINTEND(bugprone-macro-parentheses)

extern "C" {

MV_ENUM_NAMES(mv_calibration_method, mv_calibration_method, kMethods, 3, "calibration method")
MV_ENUM_NAMES(mv_operating_rule, mv_operating_rule, kRules, 3, "operating rule")
MV_ENUM_NAMES(mv_refer_mode, mv_refer_mode, kReferModes, 4, "refer mode")
MV_ENUM_NAMES(mv_conformal_score, mv_conformal_score, kConformalScores, 2, "conformal score")
MV_ENUM_NAMES(mv_cam_method, mv_cam_method, kCamMethods, 3, "CAM method")
MV_ENUM_NAMES(mv_precision, mv_precision, kPrecisions, 2, "precision")
MV_ENUM_NAMES(mv_task, mv_task, kTasks, 2, "task")
MV_ENUM_NAMES(mv_activation, mv_activation, kActivations, 2, "activation")
MV_ENUM_NAMES(mv_label_overlap, mv_label_overlap, kLabelOverlaps, 3, "label overlap rule")

}  // extern "C"
