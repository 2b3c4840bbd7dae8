# FindNIfTI2: nifti2_io (NIfTI-1 and NIfTI-2 reading) and znzlib.
#
# Debian 12's /usr/share/cmake/NIFTI/NIFTIConfig.cmake imports targets whose files do not exist
# (e.g. nifti1_tool binaries and libraries from packages that are not installed), so
# find_package(NIFTI CONFIG) fails on a normal install. This module finds the pieces directly.
# Packages: libnifti2-dev (libnifti2), libniftiio-dev (nifti2_io.h), libznz-dev (znzlib).
#
# Provides: NIfTI2_FOUND, NIfTI2_INCLUDE_DIR, NIfTI2_LIBRARIES and the target NIfTI2::nifti2.
find_path(NIfTI2_INCLUDE_DIR nifti2_io.h PATH_SUFFIXES nifti)
find_library(NIfTI2_LIBRARY NAMES nifti2)
find_library(NIfTI2_ZNZ_LIBRARY NAMES znz)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(NIfTI2
  REQUIRED_VARS NIfTI2_LIBRARY NIfTI2_ZNZ_LIBRARY NIfTI2_INCLUDE_DIR)

if(NIfTI2_FOUND)
  set(NIfTI2_LIBRARIES ${NIfTI2_LIBRARY} ${NIfTI2_ZNZ_LIBRARY})
  if(NOT TARGET NIfTI2::nifti2)
    find_package(ZLIB REQUIRED)
    add_library(NIfTI2::nifti2 UNKNOWN IMPORTED)
    set_target_properties(NIfTI2::nifti2 PROPERTIES
      IMPORTED_LOCATION ${NIfTI2_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${NIfTI2_INCLUDE_DIR}
      INTERFACE_COMPILE_DEFINITIONS HAVE_ZLIB
      INTERFACE_LINK_LIBRARIES "${NIfTI2_ZNZ_LIBRARY};ZLIB::ZLIB;m")
  endif()
endif()
mark_as_advanced(NIfTI2_INCLUDE_DIR NIfTI2_LIBRARY NIfTI2_ZNZ_LIBRARY)
