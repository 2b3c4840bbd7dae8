// NIfTI-1 writing (.nii, .nii.gz). The header is filled here rather than through niftilib's
// nifti_image_write(), which reports errors by printing to stderr; niftilib only supplies the
// quaternion maths.

#include <nifti2_io.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/geometry.hpp"
#include "io/writers.hpp"

namespace medvision::io {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The RAS affine (nibabel's convention) of an LPS geometry: index (i, j, k) -> RAS mm.
nifti_dmat44 ras_affine(const Geometry& g) {
  nifti_dmat44 a{};
  Eigen::Map<Eigen::Matrix<double, 4, 4, Eigen::RowMajor>>(&a.m[0][0]) =
      geometry::lps_to_ras() * geometry::index_to_lps(g);
  return a;
}

template <typename T>
void convert(const Image& image, std::vector<uint8_t>& out, const std::string& path) {
  const size_t n = image.size();
  const float* p = image.data();
  const size_t start = out.size();
  out.resize(start + n * sizeof(T));
  for (size_t i = 0; i < n; ++i) {
    T v;
    if constexpr (std::is_floating_point_v<T>) {
      v = p[i];
    } else {
      const double r = std::nearbyint(static_cast<double>(p[i]));
      if (!(r >= static_cast<double>(std::numeric_limits<T>::min()) &&
            r <= static_cast<double>(std::numeric_limits<T>::max()))) {
        throw Error(MV_ERR_INVALID_ARGUMENT,
                    fmt::format("{}: value {:f} does not fit the NIfTI data type", path,
                                static_cast<double>(p[i])));
      }
      v = static_cast<T>(r);
    }
    std::memcpy(out.data() + start + i * sizeof(T), &v, sizeof(T));
  }
}

nifti_1_header make_header(const Image& image, NiftiType type) {
  nifti_1_header h;
  std::memset(&h, 0, sizeof h);
  h.sizeof_hdr = 348;
  const bool four_d = image.channels() > 1;
  h.dim[0] = static_cast<short>(four_d ? 4 : 3);
  const int64_t dims[4] = {image.width(), image.height(), image.depth(), image.channels()};
  for (int i = 0; i < 4; ++i) h.dim[i + 1] = static_cast<short>(dims[i]);
  for (int i = 5; i < 8; ++i) h.dim[i] = 1;
  switch (type) {
    case NiftiType::kUint8:
      h.datatype = DT_UINT8;
      h.bitpix = 8;
      break;
    case NiftiType::kInt16:
      h.datatype = DT_INT16;
      h.bitpix = 16;
      break;
    case NiftiType::kFloat32:
      h.datatype = DT_FLOAT32;
      h.bitpix = 32;
      break;
  }
  const nifti_dmat44 a = ras_affine(image.geometry);
  double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
  nifti_dmat44_to_quatern(a, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
  h.pixdim[0] = static_cast<float>(qfac);
  h.pixdim[1] = static_cast<float>(dx);
  h.pixdim[2] = static_cast<float>(dy);
  h.pixdim[3] = static_cast<float>(dz);
  for (int i = 4; i < 8; ++i) h.pixdim[i] = 1.0f;
  h.quatern_b = static_cast<float>(qb);
  h.quatern_c = static_cast<float>(qc);
  h.quatern_d = static_cast<float>(qd);
  h.qoffset_x = static_cast<float>(qx);
  h.qoffset_y = static_cast<float>(qy);
  h.qoffset_z = static_cast<float>(qz);
  for (int c = 0; c < 4; ++c) {
    h.srow_x[c] = static_cast<float>(a.m[0][c]);
    h.srow_y[c] = static_cast<float>(a.m[1][c]);
    h.srow_z[c] = static_cast<float>(a.m[2][c]);
  }
  // Code 1, scanner-based anatomical coordinates: see write_nifti() in writers.hpp.
  h.qform_code = NIFTI_XFORM_SCANNER_ANAT;
  h.sform_code = NIFTI_XFORM_SCANNER_ANAT;
  h.xyzt_units = NIFTI_UNITS_MM;
  h.vox_offset = 352.0f;
  h.scl_slope = 1.0f;
  h.scl_inter = 0.0f;
  std::snprintf(h.descrip, sizeof h.descrip, "medvision");
  std::memcpy(h.magic, "n+1", 4);
  return h;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes, bool gzip) {
  if (gzip) {
    std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "wb6"), &gzclose);
    if (!f) throw Error(MV_ERR_IO, path + ": cannot write (" + std::strerror(errno) + ")");
    size_t done = 0;
    while (done < bytes.size()) {  // gzwrite takes an unsigned int length
      const auto chunk = static_cast<unsigned>(std::min<size_t>(bytes.size() - done, 1u << 30));
      if (gzwrite(f.get(), bytes.data() + done, chunk) != static_cast<int>(chunk)) {
        f.reset();
        std::remove(path.c_str());  // no half-written file behind
        throw Error(MV_ERR_IO, path + ": write failed");
      }
      done += chunk;
    }
    if (gzclose(f.release()) != Z_OK) {
      std::remove(path.c_str());
      throw Error(MV_ERR_IO, path + ": write failed");
    }
    return;
  }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw Error(MV_ERR_IO, path + ": cannot write (" + std::strerror(errno) + ")");
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size();
  if (!written || std::fclose(f.release()) != 0) {
    const std::string reason = std::strerror(errno);
    f.reset();                  // close before removing (a no-op when fclose already ran)
    std::remove(path.c_str());  // no half-written file behind
    throw Error(MV_ERR_IO, path + ": write failed (" + reason + ")");
  }
}

}  // namespace

void write_nifti(const Image& image, const std::string& path, NiftiType type) {
  const bool gzip = ends_with(path, ".nii.gz");
  if (!gzip && !ends_with(path, ".nii")) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": a NIfTI file name must end in .nii or .nii.gz");
  }
  if (image.size() == 0) throw Error(MV_ERR_INVALID_ARGUMENT, path + ": the image is empty");
  constexpr int64_t kMaxDim = std::numeric_limits<short>::max();
  if (image.width() > kMaxDim || image.height() > kMaxDim || image.depth() > kMaxDim ||
      image.channels() > kMaxDim) {
    throw Error(MV_ERR_INVALID_ARGUMENT, path + ": a dimension exceeds 32767, the NIfTI-1 limit");
  }
  const nifti_1_header h = make_header(image, type);
  std::vector<uint8_t> bytes(352, 0);  // header + 4 bytes of "no extension"
  std::memcpy(bytes.data(), &h, sizeof h);
  switch (type) {
    case NiftiType::kUint8:
      convert<uint8_t>(image, bytes, path);
      break;
    case NiftiType::kInt16:
      convert<int16_t>(image, bytes, path);
      break;
    case NiftiType::kFloat32:
      convert<float>(image, bytes, path);
      break;
  }
  write_bytes(path, bytes, gzip);
}

}  // namespace medvision::io
