# References, registry client, content store and offline import (namespace boxlite::image).
add_library(boxlite_image STATIC
  reference.cc
  auth.cc
  manifest.cc
  registry_client.cc
  store.cc
  import.cc)
boxlite_target_defaults(boxlite_image)
target_link_libraries(boxlite_image
  PUBLIC boxlite_image_ext4 boxlite_sys boxlite_base_crypto
  PRIVATE CURL::libcurl nlohmann_json::nlohmann_json PkgConfig::LIBARCHIVE)

# Test helpers (image_test_util.h): a test-only library, never part of libboxlite.
if(BOXLITE_BUILD_TESTS)
  add_library(boxlite_image_test_util STATIC image_test_util.cc)
  boxlite_target_defaults(boxlite_image_test_util)
  target_link_libraries(boxlite_image_test_util PUBLIC boxlite_image
                        PRIVATE nlohmann_json::nlohmann_json PkgConfig::LIBARCHIVE)
endif()

boxlite_unit_test(image_test
  SOURCES reference_test.cc auth_test.cc manifest_test.cc store_test.cc
  LIBS boxlite_image_test_util boxlite_image nlohmann_json::nlohmann_json PkgConfig::LIBARCHIVE)

# Talks to a real docker-registry on 127.0.0.1 (started by the test); needs
# docker-registry, skopeo, umoci, htpasswd (apache2-utils) and python3.
if(BOXLITE_BUILD_TESTS)
  add_executable(image_registry_test registry_integration_test.cc)
  boxlite_target_defaults(image_registry_test)
  target_link_libraries(image_registry_test PRIVATE boxlite_image_test_util boxlite_image
                        nlohmann_json::nlohmann_json
                        PkgConfig::LIBARCHIVE GTest::gtest GTest::gtest_main)
  target_compile_definitions(image_registry_test PRIVATE
    BOXLITE_FAULT_PROXY="${CMAKE_CURRENT_SOURCE_DIR}/testdata/fault_proxy.py")
  gtest_discover_tests(image_registry_test PROPERTIES LABELS integration DISCOVERY_TIMEOUT 30)
endif()
