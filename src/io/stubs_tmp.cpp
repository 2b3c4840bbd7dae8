// Temporary: readers not written yet. Replaced by dicom_reader.cpp, nifti_reader.cpp, ...
#include "common/error.hpp"
#include "io/io.hpp"
namespace medvision::io {
std::unique_ptr<Image> read_dicom_file(const std::string& path, const LoadOptions&) {
  throw Error(MV_ERR_NOT_IMPLEMENTED, path + ": DICOM not yet");
}
std::unique_ptr<Image> read_dicom_memory(const uint8_t*, size_t, const LoadOptions&,
                                         const std::string& name) {
  throw Error(MV_ERR_NOT_IMPLEMENTED, name + ": DICOM not yet");
}
std::unique_ptr<Image> read_nifti_memory(const uint8_t*, size_t, const LoadOptions&,
                                         const std::string& name) {
  throw Error(MV_ERR_NOT_IMPLEMENTED, name + ": NIfTI not yet");
}
std::unique_ptr<Image> read_raster_memory(const uint8_t*, size_t, Format, const LoadOptions&,
                                          const std::string& name) {
  throw Error(MV_ERR_NOT_IMPLEMENTED, name + ": raster not yet");
}
std::unique_ptr<Image> load_series(const std::vector<std::string>& paths, const LoadOptions&) {
  throw Error(MV_ERR_NOT_IMPLEMENTED, paths.front() + ": series not yet");
}
}  // namespace medvision::io
