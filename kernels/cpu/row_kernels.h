// Row kernels of the CPU implementation, one call per block of rows (the
// caller splits rows over threads).
//
// row_kernels.cpp is compiled once per instruction set, each time into its own
// namespace (ATen's CPU_CAPABILITY scheme): `portable` with the compiler's
// baseline flags and, on x86-64 where sleef.h is found, `avx2` with -mavx2
// -mfma and ATen's AVX2 Vectorized specialisations. cpu_ops.cpp picks one at
// run time.
#pragma once

#include <cstdint>

#include "src/row_args.h"

namespace reglab::kernels::cpu {

#define REGLAB_KERNELS_DECLARE_ROW_KERNELS(isa)                                                    \
  namespace isa {                                                                                  \
  void entropy_forward(const EntropyForwardArgs& args, std::int64_t begin, std::int64_t end);     \
  void entropy_backward(const EntropyBackwardArgs& args, std::int64_t begin, std::int64_t end);   \
  void soft_target_forward(const SoftTargetForwardArgs& args, std::int64_t begin, std::int64_t end); \
  void soft_target_backward(const SoftTargetBackwardArgs& args, std::int64_t begin, std::int64_t end); \
  void lce_chunk_forward(const LceChunkForwardArgs& args, std::int64_t begin, std::int64_t end);  \
  void lce_chunk_backward(const LceChunkBackwardArgs& args, std::int64_t begin, std::int64_t end); \
  }

REGLAB_KERNELS_DECLARE_ROW_KERNELS(portable)
#if defined(REGLAB_KERNELS_HAVE_AVX2)
REGLAB_KERNELS_DECLARE_ROW_KERNELS(avx2)
#endif

}  // namespace reglab::kernels::cpu
