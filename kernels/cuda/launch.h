// Host-side launchers of the CUDA row kernels (row_kernels.cu). Plain C++: a
// translation unit that includes this needs neither CUDA's headers nor
// LibTorch's, which is what lets row_kernels.cu compile (and be checked) in a
// build whose LibTorch has no CUDA.
//
// `stream` is a cudaStream_t. Each launcher returns nullptr on success, else
// the CUDA error string of the launch.
#pragma once

#include <cstdint>

#include "src/row_args.h"

namespace reglab::kernels::cuda_launch {

const char* entropy_forward(const EntropyForwardArgs& args, std::int64_t rows, void* stream);
const char* entropy_backward(const EntropyBackwardArgs& args, std::int64_t rows, void* stream);
const char* soft_target_forward(const SoftTargetForwardArgs& args, std::int64_t rows, void* stream);
const char* soft_target_backward(const SoftTargetBackwardArgs& args, std::int64_t rows, void* stream);
const char* lce_chunk_forward(const LceChunkForwardArgs& args, std::int64_t rows, void* stream);
const char* lce_chunk_backward(const LceChunkBackwardArgs& args, std::int64_t rows, void* stream);

}  // namespace reglab::kernels::cuda_launch
