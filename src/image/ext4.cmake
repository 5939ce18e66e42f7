# tar -> ext4 rootfs writer (libext2fs + libarchive). Included from CMakeLists.txt.
# gzip and zstd are decoded with zlib and libzstd directly (CRC-checked, one pass).
find_package(ZLIB REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)

add_library(boxlite_image_ext4 STATIC
  ext4_builder.cc
  layer_size.cc
  layer_stream.cc
  tar_path.cc)
boxlite_target_defaults(boxlite_image_ext4)
target_link_libraries(boxlite_image_ext4
  PUBLIC boxlite_sys boxlite_base_crypto
  PRIVATE PkgConfig::EXT2FS PkgConfig::LIBARCHIVE ZLIB::ZLIB PkgConfig::ZSTD)

# Test helpers (ext4_test_util.h): a test-only library, never part of libboxlite.
if(BOXLITE_BUILD_TESTS)
  add_library(boxlite_ext4_test_util STATIC ext4_test_util.cc)
  boxlite_target_defaults(boxlite_ext4_test_util)
  target_link_libraries(boxlite_ext4_test_util PUBLIC boxlite_image_ext4 GTest::gtest
                        PRIVATE PkgConfig::EXT2FS PkgConfig::LIBARCHIVE)
endif()

boxlite_unit_test(ext4_builder_test
  SOURCES ext4_builder_test.cc ext4_hostile_test.cc tar_path_test.cc layer_size_test.cc
  LIBS boxlite_ext4_test_util boxlite_image_ext4 PkgConfig::EXT2FS PkgConfig::LIBARCHIVE
       ZLIB::ZLIB PkgConfig::ZSTD)
