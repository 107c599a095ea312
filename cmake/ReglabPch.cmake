# One precompiled header with LibTorch's C++ API, built once and reused by every
# target that compiles torch code (reglab_use_torch_pch). Sources still include
# the narrow headers they need; the PCH only makes them cheap.
add_library(reglab_torch_pch OBJECT "${CMAKE_CURRENT_LIST_DIR}/pch_anchor.cpp")
target_link_libraries(reglab_torch_pch PUBLIC ${TORCH_LIBRARIES})
target_precompile_headers(reglab_torch_pch PRIVATE <torch/torch.h> <vector> <string> <map> <memory>)

function(reglab_use_torch_pch target)
  target_precompile_headers(${target} REUSE_FROM reglab_torch_pch)
endfunction()
