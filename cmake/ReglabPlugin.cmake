# reglab_add_plugin(<name> SOURCES <file>... [LINK <target>...])
#
# Builds a method plugin: a MODULE library with hidden visibility that only
# exports `reglab_plugin_entry`, linked against reglab::sdk (the SDK headers
# and LibTorch). Inside the reglab build it lands in the build's plugin folder
# (found without any setting) and is installed with reglab; out of tree it is
# an ordinary module you point REGLAB_PLUGIN_PATH at.
function(reglab_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "reglab_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX "libreglab_"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON)
  if(TARGET reglab::sdk)
    target_link_libraries(${name} PRIVATE reglab::sdk ${ARG_LINK})
  else()
    target_link_libraries(${name} PRIVATE reglab_sdk ${ARG_LINK})
  endif()
  if(DEFINED REGLAB_BUILD_PLUGIN_DIR)  # in the reglab tree
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${REGLAB_BUILD_PLUGIN_DIR}")
    if(COMMAND reglab_use_torch_pch)
      reglab_use_torch_pch(${name})
    endif()
    if(COMMAND reglab_warnings)
      reglab_warnings(${name})
    endif()
    # Installed plugins find reglab's shared libraries (reglab::kernels) in
    # the library folder above the plugin folder.
    file(RELATIVE_PATH libdir_from_plugins "/${REGLAB_INSTALL_PLUGIN_DIR}" "/${CMAKE_INSTALL_LIBDIR}")
    set_target_properties(${name} PROPERTIES INSTALL_RPATH "$ORIGIN/${libdir_from_plugins}")
    install(TARGETS ${name} LIBRARY DESTINATION "${REGLAB_INSTALL_PLUGIN_DIR}")
    set_property(GLOBAL APPEND PROPERTY REGLAB_PLUGIN_TARGETS ${name})
  endif()
endfunction()
