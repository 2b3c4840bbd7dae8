#pragma once
// medvision::io writers: NIfTI-1 volumes, DICOM Segmentation and Secondary Capture objects derived
// from a DICOM source, PNG files, and 8-bit renderings (grey base, segment outlines) of an image.
// Every function throws medvision::Error; none prints. Messages name paths and tags, never
// patient values.

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/image.hpp"

namespace medvision::io {

// ---- NIfTI ------------------------------------------------------------------------------------

enum class NiftiType { kUint8, kInt16, kFloat32 };

// Writes a NIfTI-1 single file: .nii, or gzip-compressed when the path ends in .nii.gz (any other
// ending is MV_ERR_INVALID_ARGUMENT). The affine is the image's LPS geometry converted to RAS (x
// and y negated, the nibabel convention), written as the sform exactly and as the qform (its
// nearest rotation, for readers that ignore the sform), both with code 1
// (NIFTI_XFORM_SCANNER_ANAT): the coordinates are the scanner's patient coordinates as DICOM gives
// them, not coordinates aligned to another volume (code 2) or to a template. More than one channel
// becomes dim[4] (4-D); xyzt_units is mm. Integer types round to the nearest value; a value outside
// the type's range (or not finite) is MV_ERR_INVALID_ARGUMENT. Throws MV_ERR_IO "<path>: ..." on
// write errors.
void write_nifti(const Image& image, const std::string& path, NiftiType type);

// The smallest type that holds every value of `image` exactly: uint8 (e.g. masks), int16 (e.g.
// CT in HU), else float32 (io/nifti_type.cpp).
NiftiType smallest_exact_nifti_type(const Image& image);

// ---- derived DICOM objects --------------------------------------------------------------------

// A coded concept (DICOM Code Sequence Macro).
struct Code {
  std::string value;
  std::string scheme;
  std::string meaning;
};

// One segment of a label map. `value` is the label-map value (> 0) that marks it.
struct SegmentDescription {
  std::string label;
  int value = 1;
  std::array<uint8_t, 3> rgb{{255, 0, 0}};
  // Segmented Property Category / Type (CID 7150 / 7151). The defaults say only "tissue"; a
  // model package that knows its anatomy should say so.
  Code category{"85756007", "SCT", "Tissue"};
  Code type{"85756007", "SCT", "Tissue"};
};

// Who made a derived object: written as the algorithm identification, the series description
// (when `series_description` is empty: "<model_name> <model_version>") and the image comments.
struct DerivedInfo {
  std::string model_name;
  std::string model_version;
  std::string notice;  // e.g. "Not for diagnostic use"
  std::string series_description;
};

// Writes a DICOM Segmentation (BINARY) of `label_map` (one channel, integer values, exactly the
// grid of `source`) with one segment per description. Frames are written only for slices where a
// segment is present (a segment absent everywhere gets one empty frame so that it stays
// declared); each frame references its source instance (Derivation Image and Source Image
// Sequences) and carries its plane position, orientation and pixel measures. The SEG is a new
// series in the source's study and frame of reference, with the Patient and Study modules copied
// from the source file (re-read from disk). Throws MV_ERR_INVALID_ARGUMENT when the source has no
// DICOM file behind it, the grids differ, or a label value has no description; MV_ERR_IO.
void write_dicom_seg(const Image& label_map, const Image& source,
                     const std::vector<SegmentDescription>& segments, const DerivedInfo& info,
                     const std::string& path);

// Writes an RGB image (interleaved, height x width x 3 bytes, e.g. a heat-map overlay) as a DICOM
// Secondary Capture: a new series in the source's study, the Patient and Study modules copied
// from the source file, referencing the source instance (and frame) of `slice`, the slice the
// rendering shows; the notice goes to ImageComments and DerivationDescription. Throws as
// write_dicom_seg().
void write_dicom_secondary_capture(const uint8_t* rgb, int64_t height, int64_t width,
                                   const Image& source, const DerivedInfo& info,
                                   const std::string& path, int64_t slice = 0);

// One measurement group of a DICOM SR (TID 1500): a classification label or a segmentation
// region.
struct SrFinding {
  std::string label;  // the tracking identifier
  Code finding;       // the finding, coded; empty value: a local code (99MEDVISION) of the label
  // Classification (has_scores): the numbers of mv_result_*; NaN / -1 when absent.
  bool has_scores = false;
  double probability = 0.0;
  double calibrated = 0.0;  // NaN when the package has no calibration
  int decision = -1;        // 1 present, 0 absent, -1 no operating point (no evaluation written)
  bool refer = false;
  int conformal = -1;  // mv_conformal_set bits, -1 without conformal sets
  // Segmentation (has_region): the region's size.
  bool has_region = false;
  uint64_t voxels = 0;
  double volume_ml = 0.0;  // written for volumes (depth > 1)
  double area_mm2 = 0.0;   // written for 2D images whose source gives a pixel spacing
  // The segment's label in the referenced DICOM SEG; empty for regions without a segment (unions).
  std::string segment_label;
};

// What a DICOM SR of a result says besides its measurement groups.
struct SrContent {
  DerivedInfo info;
  std::vector<SrFinding> findings;
  bool softmax = false;          // classification: conformal sets are over the classes
  double conformal_alpha = 0.0;  // NaN without conformal sets
};

// Writes a Comprehensive 3D SR following TID 1500 (Measurement Report; IHE AI Results) of
// `content` as a new series in the source's study: Patient and Study modules (and the Frame of
// Reference, when there is one) copied from the source file, a device observer, the procedure
// reported, an image library of the source instances, one measurement group per finding. With a
// `seg_path` (a DICOM SEG of the same source), findings with a segment_label reference that
// segment (TID 1411). PRELIMINARY, UNVERIFIED, "NOT FOR DIAGNOSTIC USE" in the series
// description. Throws MV_ERR_INVALID_ARGUMENT (source not from DICOM files, a SEG of another
// study or without the segment), MV_ERR_IO.
void write_dicom_sr(const SrContent& content, const Image& source, const std::string& seg_path,
                    const std::string& path);

// ---- renderings -------------------------------------------------------------------------------

enum class GreyWindow {
  kPercentile,       // the slice's 0.5-99.5 percentile range
  kPresetOrPercent,  // the first window preset when the image has one, else the percentiles
};

// One slice of the image (first channel, or luma of RGB) in [0, 1], row-major height x width;
// MONOCHROME1 is inverted so that higher always displays brighter.
std::vector<float> grey_slice(const Image& image, int64_t slice, GreyWindow window);

// An RGB rendering (height x width x 3 bytes) of one slice of `image` in grey with the outline
// (boundary pixels, 4-connected, about 1 px wide) of each segment drawn in its colour and its
// interior lightly tinted (alpha 0.2). `slice` -1 picks the slice with the largest foreground
// area (the middle slice when there is none). Label values without a description are ignored.
std::vector<uint8_t> render_outline_overlay(const Image& image, const Image& label_map,
                                            int64_t slice,
                                            const std::vector<SegmentDescription>& segments,
                                            int64_t* out_height, int64_t* out_width);

// The heat-map colour map, shared by overlays and their legends: cividis (Nuñez, Anderton and
// Renslow 2018, PLoS ONE 13(7): e0199239), perceptually uniform and designed to read the same
// with red-green colour-vision deficiency; `v` in [0, 1] (clamped), low = dark blue.
std::array<uint8_t, 3> heat_colour(float v);

// The segmentation palette (Okabe and Ito 2008, "Color Universal Design"): eight colours that
// stay distinct under protanopia, deuteranopia and tritanopia; class k (1-based) gets entry
// (k - 1) % 8.
std::array<uint8_t, 3> class_colour(int value);

// What is burned into a rendering shown to people, in a margin below the picture so that the
// picture itself is unchanged: the model's name and version, "NOT FOR DIAGNOSTIC USE", and a
// legend (a swatch and label per segmentation class, or the heat map's colour bar).
struct Annotation {
  std::string title;  // e.g. "cxr-lungs 1.0.1"
  std::vector<std::pair<std::string, std::array<uint8_t, 3>>> swatches;
  std::string colour_bar;  // heat maps: what the bar measures, e.g. "Grad-CAM: Pneumonia"
};

// The rendering (height x width x 3 bytes) on a larger canvas: the picture unchanged at the top
// left, the margin below it (dark grey, white text) and, when the text is wider than the
// picture, to its right. Writes the canvas's size to out_height / out_width.
std::vector<uint8_t> annotate(const std::vector<uint8_t>& rgb, int64_t height, int64_t width,
                              const Annotation& annotation, int64_t* out_height,
                              int64_t* out_width);

// Writes an RGB buffer (height x width x 3 bytes) as PNG. Throws MV_ERR_IO naming the path.
void write_png_rgb(const std::string& path, const std::vector<uint8_t>& rgb, int64_t height,
                   int64_t width);

}  // namespace medvision::io
