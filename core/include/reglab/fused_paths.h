// reglab/fused_paths.h — one switch for methods that carry a hand-fused CPU
// path beside their generic tensor-op path. Header-only, part of the SDK.
//
// Some methods (ELR, PS-KD) compute their loss on the CPU with one fused
// autograd function and everywhere else (CUDA, other dtypes) with plain
// tensor ops. Both must give the same values, but a CPU-only machine would
// only ever run the first. Setting the environment variable
// REGLAB_TENSOR_OPS_ONLY to anything but "" or "0" makes such methods take
// their tensor-op path on the CPU too, so tests and users can check the path
// an accelerator takes without one. It changes no result a method is
// supposed to produce, only how it is computed, so it is not part of a
// trial's key.
//
// Contract:
//   fused_cpu_paths_enabled()
//       false while REGLAB_TENSOR_OPS_ONLY is set to a value other than ""
//       or "0"; read on every call (cheap), so a test may flip it between
//       steps. Thread-safe as long as nobody calls setenv concurrently.
#pragma once

#include <cstdlib>
#include <cstring>

namespace reglab {

inline bool fused_cpu_paths_enabled() {
  const char* v = std::getenv("REGLAB_TENSOR_OPS_ONLY");
  return v == nullptr || *v == '\0' || std::strcmp(v, "0") == 0;
}

}  // namespace reglab
