# Use ccache when it is installed. Precompiled headers need ccache's
# pch_defines and time_macros sloppiness to be cacheable.
find_program(REGLAB_CCACHE ccache)
if(REGLAB_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      ${REGLAB_CCACHE})
endif()
