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

boxlite_unit_test(ext4_builder_test
  SOURCES ext4_builder_test.cc ext4_hostile_test.cc ext4_test_util.cc tar_path_test.cc
          layer_size_test.cc
  LIBS boxlite_image_ext4 PkgConfig::EXT2FS PkgConfig::LIBARCHIVE ZLIB::ZLIB PkgConfig::ZSTD)
