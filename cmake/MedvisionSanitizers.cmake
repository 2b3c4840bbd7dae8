# Global sanitizer flags, so that every target (library, tests, examples) is instrumented alike.
set(_mv_san "")
if(MV_SANITIZE_ADDRESS)
  list(APPEND _mv_san address)
endif()
if(MV_SANITIZE_UNDEFINED)
  list(APPEND _mv_san undefined)
endif()
if(MV_SANITIZE_THREAD)
  list(APPEND _mv_san thread)
endif()
if(_mv_san)
  list(JOIN _mv_san "," _mv_san_list)
  add_compile_options(-fsanitize=${_mv_san_list} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${_mv_san_list})
endif()

# MV_BUILD_FUZZERS: libFuzzer coverage instrumentation plus ASan and UBSan everywhere (clang only);
# the harnesses link -fsanitize=fuzzer themselves (tests/fuzz/CMakeLists.txt).
if(MV_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MV_BUILD_FUZZERS needs clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
