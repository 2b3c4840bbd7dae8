#pragma once
// Eigen views of medvision::Geometry (common/image.hpp) for the geometry code: direction cosines,
// the index-to-patient affine, slice normals. Fixed-size types only (no heap). Geometry keeps its
// std::array storage, which the C API copies out as is; Eigen stays out of include/medvision/.

#include <Eigen/Core>
#include <Eigen/Geometry>
#include <array>

#include "common/image.hpp"

namespace medvision::geometry {

using Vec3 = Eigen::Vector3d;
using Mat3 = Eigen::Matrix3d;
using Mat4 = Eigen::Matrix4d;
// Geometry::direction's layout: row-major, one axis per column.
using RowMajor3 = Eigen::Matrix<double, 3, 3, Eigen::RowMajor>;

inline Vec3 vec(const std::array<double, 3>& a) { return Vec3(a[0], a[1], a[2]); }
inline std::array<double, 3> array(const Vec3& v) { return {{v[0], v[1], v[2]}}; }

// Column a is the LPS unit vector of index axis a (column, row, slice).
inline Mat3 direction(const Geometry& g) { return Eigen::Map<const RowMajor3>(g.direction.data()); }
inline void set_direction(Geometry& g, const Mat3& d) {
  Eigen::Map<RowMajor3>(g.direction.data()) = d;
}

// Index (column, row, slice, 1) to LPS mm: origin + direction * diag(spacing) * index.
inline Mat4 index_to_lps(const Geometry& g) {
  Mat4 a = Mat4::Identity();
  a.topLeftCorner<3, 3>() = direction(g) * vec(g.spacing).asDiagonal();
  a.topRightCorner<3, 1>() = vec(g.origin);
  return a;
}

// LPS <-> RAS (NIfTI, nibabel): x and y change sign.
inline Mat4 lps_to_ras() { return Eigen::Vector4d(-1.0, -1.0, 1.0, 1.0).asDiagonal(); }

// Direction cosines from ImageOrientationPatient (row direction, then column direction): x along
// a row, y down the columns, z their cross product (the slice normal).
inline Mat3 direction_from_orientation(const std::array<double, 6>& o) {
  const Vec3 row(o[0], o[1], o[2]);
  const Vec3 col(o[3], o[4], o[5]);
  Mat3 d;
  d << row, col, row.cross(col);
  return d;
}

}  // namespace medvision::geometry
