# `cmake --install` exports the SDK as a CMake package:
#   find_package(reglab REQUIRED)   # also finds Torch
#   reglab_add_plugin(my_method SOURCES my_method.cpp)
include(CMakePackageConfigHelpers)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/core/include/reglab" "${PROJECT_SOURCE_DIR}/kernels/include/reglab"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
# reglab::kernels, the fused operations (kernels/): a shared library beside
# libreglab's others, found by installed plugins through their RPATH.
install(TARGETS reglab_sdk reglab_kernels EXPORT reglabTargets LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(EXPORT reglabTargets NAMESPACE reglab:: DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/reglab")
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/reglabConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/reglabConfig.cmake" INSTALL_DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/reglab")
write_basic_package_version_file("${CMAKE_BINARY_DIR}/reglabConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_BINARY_DIR}/reglabConfig.cmake" "${CMAKE_BINARY_DIR}/reglabConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/ReglabPlugin.cmake" DESTINATION "${CMAKE_INSTALL_LIBDIR}/cmake/reglab")
