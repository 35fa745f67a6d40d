# The SDK as an installed package for plugin authors:
#   CMake:      find_package(Sluice REQUIRED) -> target Sluice::sdk,
#               variable SLUICE_PLUGIN_DIR (where sluice loads plugins from)
#   pkg-config: sluice-sdk.pc -> Cflags, variable plugindir
# Both point at the same installed headers; the SDK is header-only.
include(CMakePackageConfigHelpers)

set(SLUICE_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Sluice)

set_target_properties(sluice_sdk PROPERTIES EXPORT_NAME sdk)
install(TARGETS sluice_sdk EXPORT SluiceTargets)
install(EXPORT SluiceTargets NAMESPACE Sluice:: DESTINATION ${SLUICE_CMAKE_INSTALL_DIR})

# SLUICE_PLUGIN_INSTALL_DIR is relative to the prefix (top-level CMakeLists);
# the package config turns it into an absolute path of wherever it was installed.
configure_package_config_file(
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/SluiceConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/SluiceConfig.cmake
  INSTALL_DESTINATION ${SLUICE_CMAKE_INSTALL_DIR}
  PATH_VARS SLUICE_PLUGIN_INSTALL_DIR CMAKE_INSTALL_INCLUDEDIR)
# Header-only, so any architecture; a plugin needs the same ABI major, which
# follows the package's major version.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/SluiceConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/SluiceConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/SluiceConfigVersion.cmake
  DESTINATION ${SLUICE_CMAKE_INSTALL_DIR})

# The prefix is written at install time, so `cmake --install --prefix P`
# produces a .pc for P (two passes: build-time values now, the prefix later).
set(SLUICE_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/sluice-sdk.pc.in
               ${CMAKE_CURRENT_BINARY_DIR}/sluice-sdk.pc.in @ONLY)
install(CODE "
  set(_pc \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/sluice-sdk.pc\")
  message(STATUS \"Installing: \${_pc}\")
  configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/sluice-sdk.pc.in\" \"\${_pc}\" @ONLY)
")

# The example plugin, built in-tree too so the test suite exercises it.
add_subdirectory(examples/source-counter)
