# FindOpenJPEG2: libopenjp2 (JPEG 2000 and, from 2.5, HTJ2K decoding) through pkg-config.
# Debian 12 ships a stale /usr/lib/x86_64-linux-gnu/openjpeg-2.1/OpenJPEGConfig.cmake whose
# targets point at missing files, so the CMake config package is not used.
# Provides: OpenJPEG2_FOUND and the target OpenJPEG2::openjp2.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_OPENJP2 QUIET libopenjp2)
endif()
find_path(OpenJPEG2_INCLUDE_DIR openjpeg.h HINTS ${PC_OPENJP2_INCLUDE_DIRS} PATH_SUFFIXES openjpeg-2.5 openjpeg-2.4)
find_library(OpenJPEG2_LIBRARY NAMES openjp2 HINTS ${PC_OPENJP2_LIBRARY_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(OpenJPEG2 REQUIRED_VARS OpenJPEG2_LIBRARY OpenJPEG2_INCLUDE_DIR
  VERSION_VAR PC_OPENJP2_VERSION)
if(OpenJPEG2_FOUND AND NOT TARGET OpenJPEG2::openjp2)
  add_library(OpenJPEG2::openjp2 UNKNOWN IMPORTED)
  set_target_properties(OpenJPEG2::openjp2 PROPERTIES
    IMPORTED_LOCATION ${OpenJPEG2_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${OpenJPEG2_INCLUDE_DIR})
endif()
mark_as_advanced(OpenJPEG2_INCLUDE_DIR OpenJPEG2_LIBRARY)
