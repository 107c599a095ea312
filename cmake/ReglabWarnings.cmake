# reglab_warnings(target): the warning set every reglab target compiles with.
function(reglab_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()
