// CUDA row kernels: one warp per row for rows of up to 1024 entries (four rows
// per block), one 512-thread block per row beyond. Each thread walks its
// row with a stride of the row's thread count (coalesced loads), keeps an
// online (max, Σe, Σe·d) state, and the states are merged by shuffles (and,
// for a block, through shared memory). Inputs of float16/bfloat16 are read
// into float32, float64 stays float64. Only the CUDA runtime is used here;
// the tensor-facing side is cuda_ops.cpp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "cuda/launch.h"

namespace reglab::kernels::cuda_launch {
namespace {

constexpr int kWarpRows = 4;      // rows per block in the warp-per-row layout
constexpr int kBlockThreads = 512;  // threads per row in the block-per-row layout
constexpr std::int64_t kWarpRowMax = 1024;

template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <typename T>
using acc_t = typename AccOf<T>::type;

__device__ __forceinline__ float to_acc(float x) { return x; }
__device__ __forceinline__ double to_acc(double x) { return x; }
__device__ __forceinline__ float to_acc(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_acc(acc_t<T> x);
template <>
__device__ __forceinline__ float from_acc<float>(float x) { return x; }
template <>
__device__ __forceinline__ double from_acc<double>(double x) { return x; }
template <>
__device__ __forceinline__ __half from_acc<__half>(float x) { return __float2half(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

__device__ __forceinline__ float dexp(float x) { return expf(x); }
__device__ __forceinline__ double dexp(double x) { return exp(x); }
__device__ __forceinline__ float dlog(float x) { return logf(x); }
__device__ __forceinline__ double dlog(double x) { return log(x); }
__device__ __forceinline__ float inf_of(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double inf_of(double) { return __longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ float nan_of(float) { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double nan_of(double) { return __longlong_as_double(0x7ff8000000000000LL); }
__device__ __forceinline__ float lowest_of(float) { return -FLT_MAX; }
__device__ __forceinline__ double lowest_of(double) { return -DBL_MAX; }

// d = max(z − shift, lowest): −inf logits give exp(d) = 0 and exp(d)·d = 0.
template <typename A>
__device__ __forceinline__ A clamp_low(A d) {
  return d != d ? d : (d < lowest_of(d) ? lowest_of(d) : d);
}

// Online softmax state of a set of logits: max m, S = Σ e^{z−m},
// B = Σ e^{z−m}(z − m). m = −inf: empty; m = NaN: a NaN was seen.
template <typename A>
struct State {
  A m, s, b;
};

template <typename A>
__device__ __forceinline__ State<A> empty_state() {
  return {-inf_of(A()), A(0), A(0)};
}

template <typename A>
__device__ __forceinline__ State<A> merge(const State<A>& x, const State<A>& y) {
  if (x.m != x.m || y.m != y.m) return {nan_of(A()), nan_of(A()), nan_of(A())};
  if (x.m == -inf_of(A())) return y;
  if (y.m == -inf_of(A())) return x;
  const A m = x.m > y.m ? x.m : y.m;
  const A ax = dexp(x.m - m), ay = dexp(y.m - m);
  return {m, ax * x.s + ay * y.s, ax * (x.b + (x.m - m) * x.s) + ay * (y.b + (y.m - m) * y.s)};
}

template <typename A>
__device__ __forceinline__ void update(State<A>& st, A x) {
  if (x == -inf_of(A()) || st.m != st.m) return;
  if (x != x) {
    st = {x, x, x};
  } else if (x > st.m) {
    if (st.m == -inf_of(A())) {
      st = {x, A(1), A(0)};
    } else {
      const A a = dexp(st.m - x);
      st.b = a * (st.b + (st.m - x) * st.s);
      st.s = a * st.s + A(1);
      st.m = x;
    }
  } else {
    const A d = x - st.m, e = dexp(d);
    st.s += e;
    st.b += e * d;
  }
}

template <typename A>
__device__ __forceinline__ State<A> shfl_xor(const State<A>& v, int offset) {
  return {__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset),
          __shfl_xor_sync(0xffffffffu, v.b, offset)};
}

template <typename A>
struct Sums {
  A x, y;
};

template <typename A>
__device__ __forceinline__ Sums<A> merge(const Sums<A>& p, const Sums<A>& q) {
  return {p.x + q.x, p.y + q.y};
}

template <typename A>
__device__ __forceinline__ Sums<A> shfl_xor(const Sums<A>& v, int offset) {
  return {__shfl_xor_sync(0xffffffffu, v.x, offset), __shfl_xor_sync(0xffffffffu, v.y, offset)};
}

// Every thread of the row gets the merge of all the row's values.
template <int TPR, typename V>
__device__ __forceinline__ V row_allreduce(V v) {
  for (int offset = 16; offset > 0; offset /= 2) v = merge(v, shfl_xor(v, offset));
  if constexpr (TPR > 32) {
    __shared__ V partial[TPR / 32];
    const int warp = threadIdx.x / 32;
    __syncthreads();  // the previous reduction's readers are done
    if (threadIdx.x % 32 == 0) partial[warp] = v;
    __syncthreads();
    v = partial[0];
    for (int i = 1; i < TPR / 32; ++i) v = merge(v, partial[i]);
  }
  return v;
}

template <int TPR, int RPB>
__device__ __forceinline__ std::int64_t row_index() {
  return static_cast<std::int64_t>(blockIdx.x) * RPB + threadIdx.y;
}

// ---- entropy --------------------------------------------------------------

template <typename T, int TPR, int RPB>
__global__ void entropy_forward_kernel(EntropyForwardArgs args, std::int64_t rows) {
  using A = acc_t<T>;
  const std::int64_t r = row_index<TPR, RPB>();
  if (r >= rows) return;  // uniform per warp (and per block when TPR > 32)
  const std::int64_t k = args.k;
  const T* x = static_cast<const T*>(args.logits) + r * k;
  const bool* mask = args.mask != nullptr ? args.mask + args.mask_row_offset[r] : nullptr;
  State<A> st = empty_state<A>();
  for (std::int64_t j = threadIdx.x; j < k; j += TPR) {
    if (mask != nullptr && !mask[j * args.mask_col_stride]) continue;
    update(st, to_acc(x[j]));
  }
  st = row_allreduce<TPR>(st);
  if (threadIdx.x != 0) return;
  A lse, h;
  if (st.m != st.m) {
    lse = h = st.m;
  } else if (st.m == -inf_of(A())) {
    lse = -inf_of(A());
    h = (k == 0 || args.padding_rows_zero) ? A(0) : nan_of(A());
  } else {
    const A log_s = dlog(st.s);
    lse = st.m + log_s;
    h = log_s - st.b / st.s;
  }
  static_cast<A*>(args.lse)[r] = lse;
  static_cast<A*>(args.entropy)[r] = h;
}

template <typename T, int TPR, int RPB>
__global__ void entropy_backward_kernel(EntropyBackwardArgs args, std::int64_t rows) {
  using A = acc_t<T>;
  const std::int64_t r = row_index<TPR, RPB>();
  if (r >= rows) return;
  const std::int64_t k = args.k;
  const T* x = static_cast<const T*>(args.logits) + r * k;
  T* out = static_cast<T*>(args.grad_logits) + r * k;
  const bool* mask = args.mask != nullptr ? args.mask + args.mask_row_offset[r] : nullptr;
  const A g = static_cast<const A*>(args.grad)[r];
  const A lse = static_cast<const A*>(args.lse)[r];
  const A h = static_cast<const A*>(args.entropy)[r];
  if (!(lse > -inf_of(A()))) {
    const A fill = (h != h || lse != lse) ? nan_of(A()) : A(0);
    for (std::int64_t j = threadIdx.x; j < k; j += TPR) out[j] = from_acc<T>(fill);
    return;
  }
  for (std::int64_t j = threadIdx.x; j < k; j += TPR) {
    const bool allowed = mask == nullptr || mask[j * args.mask_col_stride];
    const A d = clamp_low(allowed ? to_acc(x[j]) - lse : -inf_of(A()));
    out[j] = from_acc<T>(-g * dexp(d) * (d + h));
  }
}

// ---- soft-target cross-entropy ---------------------------------------------

template <typename T, int TPR, int RPB>
__global__ void soft_target_forward_kernel(SoftTargetForwardArgs args, std::int64_t rows) {
  using A = acc_t<T>;
  const std::int64_t r = row_index<TPR, RPB>();
  if (r >= rows) return;
  const std::int64_t k = args.k;
  const T* x = static_cast<const T*>(args.logits) + r * k;
  const T* t = static_cast<const T*>(args.targets) + r * k;
  State<A> st = empty_state<A>();
  for (std::int64_t j = threadIdx.x; j < k; j += TPR) update(st, to_acc(x[j]));
  st = row_allreduce<TPR>(st);
  const A lse = st.m != st.m ? st.m : (st.m == -inf_of(A()) ? -inf_of(A()) : st.m + dlog(st.s));
  // Σ t·(lse − z) with t = 0 contributing 0 even against z = −inf, and Σ t.
  Sums<A> acc{A(0), A(0)};
  for (std::int64_t j = threadIdx.x; j < k; j += TPR) {
    const A tj = to_acc(t[j]);
    if (tj != A(0)) acc.x += tj * (lse - to_acc(x[j]));
    acc.y += tj;
  }
  acc = row_allreduce<TPR>(acc);
  if (threadIdx.x != 0) return;
  static_cast<A*>(args.loss)[r] = acc.x;
  static_cast<A*>(args.lse)[r] = lse;
  static_cast<A*>(args.target_sum)[r] = acc.y;
}

template <typename T, int TPR, int RPB>
__global__ void soft_target_backward_kernel(SoftTargetBackwardArgs args, std::int64_t rows) {
  using A = acc_t<T>;
  const std::int64_t r = row_index<TPR, RPB>();
  if (r >= rows) return;
  const std::int64_t k = args.k;
  const T* x = static_cast<const T*>(args.logits) + r * k;
  const T* t = static_cast<const T*>(args.targets) + r * k;
  const A g = static_cast<const A*>(args.grad)[r];
  const A lse = static_cast<const A*>(args.lse)[r];
  const A tsum = static_cast<const A*>(args.target_sum)[r];
  if (args.grad_logits != nullptr) {
    T* out = static_cast<T*>(args.grad_logits) + r * k;
    if (lse > -inf_of(A())) {
      for (std::int64_t j = threadIdx.x; j < k; j += TPR) {
        const A p = dexp(clamp_low(to_acc(x[j]) - lse));
        out[j] = from_acc<T>(g * (p * tsum - to_acc(t[j])));
      }
    } else {
      const A fill = (tsum == A(0) && lse == lse) ? A(0) : nan_of(A());
      for (std::int64_t j = threadIdx.x; j < k; j += TPR) out[j] = from_acc<T>(fill);
    }
  }
  if (args.grad_targets != nullptr) {
    T* out = static_cast<T*>(args.grad_targets) + r * k;
    for (std::int64_t j = threadIdx.x; j < k; j += TPR) out[j] = from_acc<T>(g * (lse - to_acc(x[j])));
  }
}

// ---- linear cross-entropy, one vocabulary chunk ----------------------------

template <typename T, int TPR, int RPB>
__global__ void lce_chunk_forward_kernel(LceChunkForwardArgs args, std::int64_t rows) {
  const std::int64_t r = row_index<TPR, RPB>();
  if (r >= rows) return;
  const std::int64_t k = args.k;
  const T* x = static_cast<const T*>(args.logits) + r * k;
  State<T> st = empty_state<T>();
  for (std::int64_t j = threadIdx.x; j < k; j += TPR) update(st, x[j]);
  st = row_allreduce<TPR>(st);
  if (threadIdx.x != 0) return;
  T* s = static_cast<T*>(args.stats) + 4 * r;
  const State<T> merged = merge(State<T>{s[0], s[1], s[2]}, st);
  s[0] = merged.m;
  s[1] = merged.s;
  s[2] = merged.b;
  const std::int64_t tl = args.target[r];
  if (tl >= 0 && tl < k) s[3] = x[tl];
}

template <typename T, int TPR, int RPB>
__global__ void lce_chunk_backward_kernel(LceChunkBackwardArgs args, std::int64_t rows) {
  const std::int64_t r = row_index<TPR, RPB>();
  if (r >= rows) return;
  const std::int64_t k = args.k;
  T* x = static_cast<T*>(args.logits) + r * k;
  const T lse = static_cast<const T*>(args.lse)[r];
  const T h = static_cast<const T*>(args.entropy)[r];
  const T a = static_cast<const T*>(args.coef_ce)[r];
  const T b = static_cast<const T*>(args.coef_ent)[r];
  const std::int64_t tl = args.target[r];
  for (std::int64_t j = threadIdx.x; j < k; j += TPR) {
    const T d = clamp_low(x[j] - lse);
    T v = dexp(d) * (a - b * (d + h));
    if (j == tl) v -= a;
    x[j] = v;
  }
}

// ---- launch ----------------------------------------------------------------

template <typename Args>
const char* launch(void (*warp_kernel)(Args, std::int64_t), void (*block_kernel)(Args, std::int64_t),
                   const Args& args, std::int64_t rows, void* stream) {
  if (rows == 0) return nullptr;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (args.k <= kWarpRowMax) {
    const dim3 block(32, kWarpRows);
    const dim3 grid(static_cast<unsigned>((rows + kWarpRows - 1) / kWarpRows));
    warp_kernel<<<grid, block, 0, s>>>(args, rows);
  } else {
    const dim3 block(kBlockThreads, 1);
    const dim3 grid(static_cast<unsigned>(rows));
    block_kernel<<<grid, block, 0, s>>>(args, rows);
  }
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

#define REGLAB_LAUNCH(kernel, T) \
  launch(&kernel<T, 32, kWarpRows>, &kernel<T, kBlockThreads, 1>, args, rows, stream)

#define REGLAB_LAUNCH_ANY_DTYPE(kernel)                                      \
  switch (args.dtype) {                                                      \
    case Dtype::kFloat: return REGLAB_LAUNCH(kernel, float);                 \
    case Dtype::kDouble: return REGLAB_LAUNCH(kernel, double);               \
    case Dtype::kHalf: return REGLAB_LAUNCH(kernel, __half);                 \
    case Dtype::kBFloat16: return REGLAB_LAUNCH(kernel, __nv_bfloat16);      \
  }                                                                          \
  return "reglab_kernels: unsupported dtype";

}  // namespace

const char* entropy_forward(const EntropyForwardArgs& args, std::int64_t rows, void* stream) {
  REGLAB_LAUNCH_ANY_DTYPE(entropy_forward_kernel)
}
const char* entropy_backward(const EntropyBackwardArgs& args, std::int64_t rows, void* stream) {
  REGLAB_LAUNCH_ANY_DTYPE(entropy_backward_kernel)
}
const char* soft_target_forward(const SoftTargetForwardArgs& args, std::int64_t rows, void* stream) {
  REGLAB_LAUNCH_ANY_DTYPE(soft_target_forward_kernel)
}
const char* soft_target_backward(const SoftTargetBackwardArgs& args, std::int64_t rows, void* stream) {
  REGLAB_LAUNCH_ANY_DTYPE(soft_target_backward_kernel)
}
const char* lce_chunk_forward(const LceChunkForwardArgs& args, std::int64_t rows, void* stream) {
  if (args.dtype == Dtype::kDouble) return REGLAB_LAUNCH(lce_chunk_forward_kernel, double);
  if (args.dtype == Dtype::kFloat) return REGLAB_LAUNCH(lce_chunk_forward_kernel, float);
  return "reglab_kernels: linear cross-entropy chunks must be float32 or float64";
}
const char* lce_chunk_backward(const LceChunkBackwardArgs& args, std::int64_t rows, void* stream) {
  if (args.dtype == Dtype::kDouble) return REGLAB_LAUNCH(lce_chunk_backward_kernel, double);
  if (args.dtype == Dtype::kFloat) return REGLAB_LAUNCH(lce_chunk_backward_kernel, float);
  return "reglab_kernels: linear cross-entropy chunks must be float32 or float64";
}

}  // namespace reglab::kernels::cuda_launch
