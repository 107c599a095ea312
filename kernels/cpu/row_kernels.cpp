// Row kernels, compiled once per instruction set (see row_kernels.h): the
// namespace comes from REGLAB_CPU_ISA and ATen's vector type from the
// CPU_CAPABILITY macros the build sets for this copy.
//
// Conventions used throughout:
//  - d = max(z − shift, lowest) instead of z − shift: a logit of −inf gives
//    d = lowest, exp(d) = 0 and exp(d)·d = 0, so an impossible class adds
//    nothing instead of 0·(−inf) = NaN. NaN still propagates (ATen's maximum
//    returns NaN when either side is NaN).
//  - Float16/bfloat16 rows, and rows with a mask, are first copied into a
//    float buffer (masked entries become −inf); the row is then in cache for
//    the passes that follow, so the copy costs little.
#include "row_kernels.h"

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#if !defined(REGLAB_CPU_ISA)
#error "row_kernels.cpp is compiled with REGLAB_CPU_ISA set to the namespace of its instruction set"
#endif

namespace reglab::kernels::cpu::REGLAB_CPU_ISA {
namespace {

using at::vec::Vectorized;

template <typename T>
constexpr T kInf = std::numeric_limits<T>::infinity();
template <typename T>
constexpr T kLowest = std::numeric_limits<T>::lowest();
template <typename T>
constexpr T kNaN = std::numeric_limits<T>::quiet_NaN();

template <typename S>
using acc_t = std::conditional_t<std::is_same_v<S, double>, double, float>;

// NaN-propagating maximum (std::max would drop a NaN in second position).
template <typename T>
inline T max_nan(T a, T b) {
  return (b > a || b != b) ? b : a;
}

template <typename T>
T row_max(const T* x, std::int64_t k) {
  using V = Vectorized<T>;
  constexpr std::int64_t w = V::size();
  T m = -kInf<T>;
  std::int64_t j = 0;
  if (k >= w) {
    V acc(-kInf<T>);
    for (; j + w <= k; j += w) acc = at::vec::maximum(acc, V::loadu(x + j));
    m = at::vec::vec_reduce_all<T>([](V& a, V& b) { return at::vec::maximum(a, b); }, acc);
  }
  for (; j < k; ++j) m = max_nan(m, x[j]);
  return m;
}

// S = Σ exp(d), and B = Σ exp(d)·d when WithB, d = max(z − shift, lowest).
template <typename T, bool WithB>
void sum_exp(const T* x, std::int64_t k, T shift, T& s_out, T& b_out) {
  using V = Vectorized<T>;
  constexpr std::int64_t w = V::size();
  const V vshift(shift), vlow(kLowest<T>);
  V vs(T(0)), vb(T(0));
  std::int64_t j = 0;
  for (; j + w <= k; j += w) {
    const V d = at::vec::maximum(V::loadu(x + j) - vshift, vlow);
    const V e = d.exp();
    vs = vs + e;
    if constexpr (WithB) vb = at::vec::fmadd(e, d, vb);
  }
  auto add = [](V& a, V& b) { return a + b; };
  T s = at::vec::vec_reduce_all<T>(add, vs);
  T b = WithB ? at::vec::vec_reduce_all<T>(add, vb) : T(0);
  for (; j < k; ++j) {
    const T d = max_nan(x[j] - shift, kLowest<T>);
    const T e = std::exp(d);
    s += e;
    if constexpr (WithB) b += e * d;
  }
  s_out = s;
  b_out = b;
}

// −g·p·(d + H) with d = max(z − lse, lowest), p = exp(d): the entropy gradient.
template <typename T>
void entropy_grad_row(const T* x, std::int64_t k, T lse, T h, T g, T* out) {
  using V = Vectorized<T>;
  constexpr std::int64_t w = V::size();
  const V vlse(lse), vlow(kLowest<T>), vh(h), vneg_g(-g);
  std::int64_t j = 0;
  for (; j + w <= k; j += w) {
    const V d = at::vec::maximum(V::loadu(x + j) - vlse, vlow);
    (vneg_g * d.exp() * (d + vh)).store(out + j);
  }
  for (; j < k; ++j) {
    const T d = max_nan(x[j] - lse, kLowest<T>);
    out[j] = -g * std::exp(d) * (d + h);
  }
}

template <typename T>
inline void fill(T* out, std::int64_t k, T value) {
  for (std::int64_t j = 0; j < k; ++j) out[j] = value;
}

// The row as accumulation-type values: the input itself when no conversion or
// masking is needed, else `buffer` filled with converted (and masked) values.
template <typename S, typename Args>
const acc_t<S>* load_row(const Args& args, const S* x, std::int64_t r, std::vector<acc_t<S>>& buffer) {
  using A = acc_t<S>;
  const bool masked = args.mask != nullptr;
  if constexpr (std::is_same_v<S, A>) {
    if (!masked) return x;
  }
  buffer.resize(static_cast<std::size_t>(args.k));
  if (masked) {
    const bool* m = args.mask + args.mask_row_offset[r];
    const std::int64_t stride = args.mask_col_stride;
    for (std::int64_t j = 0; j < args.k; ++j) buffer[j] = m[j * stride] ? static_cast<A>(x[j]) : -kInf<A>;
  } else {
    for (std::int64_t j = 0; j < args.k; ++j) buffer[j] = static_cast<A>(x[j]);
  }
  return buffer.data();
}

template <typename S>
const acc_t<S>* convert_row(const S* x, std::int64_t k, std::vector<acc_t<S>>& buffer) {
  using A = acc_t<S>;
  if constexpr (std::is_same_v<S, A>) {
    return x;
  } else {
    buffer.resize(static_cast<std::size_t>(k));
    for (std::int64_t j = 0; j < k; ++j) buffer[j] = static_cast<A>(x[j]);
    return buffer.data();
  }
}

// ---- entropy --------------------------------------------------------------

template <typename S>
void entropy_forward_impl(const EntropyForwardArgs& args, std::int64_t begin, std::int64_t end) {
  using A = acc_t<S>;
  const std::int64_t k = args.k;
  const S* logits = static_cast<const S*>(args.logits);
  A* entropy = static_cast<A*>(args.entropy);
  A* lse = static_cast<A*>(args.lse);
  std::vector<A> buffer;
  for (std::int64_t r = begin; r < end; ++r) {
    const A* x = load_row(args, logits + r * k, r, buffer);
    const A m = row_max(x, k);
    A h, l;
    if (m == -kInf<A>) {  // also k == 0
      l = -kInf<A>;
      h = (k == 0 || args.padding_rows_zero) ? A(0) : kNaN<A>;
    } else {
      A s, b;
      sum_exp<A, true>(x, k, m, s, b);
      const A log_s = std::log(s);
      l = m + log_s;
      h = log_s - b / s;
    }
    lse[r] = l;
    entropy[r] = h;
  }
}

template <typename S>
void entropy_backward_impl(const EntropyBackwardArgs& args, std::int64_t begin, std::int64_t end) {
  using A = acc_t<S>;
  const std::int64_t k = args.k;
  const S* logits = static_cast<const S*>(args.logits);
  const A* grad = static_cast<const A*>(args.grad);
  const A* lse = static_cast<const A*>(args.lse);
  const A* entropy = static_cast<const A*>(args.entropy);
  S* out = static_cast<S*>(args.grad_logits);
  std::vector<A> in_buffer, out_buffer;
  for (std::int64_t r = begin; r < end; ++r) {
    const A* x = load_row(args, logits + r * k, r, in_buffer);
    A* o;
    if constexpr (std::is_same_v<S, A>) {
      o = out + r * k;
    } else {
      out_buffer.resize(static_cast<std::size_t>(k));
      o = out_buffer.data();
    }
    const A l = lse[r];
    if (l > -kInf<A>) {
      entropy_grad_row(x, k, l, entropy[r], grad[r], o);
    } else {
      // No finite logit: a padding row (H = 0) has no gradient; a row whose
      // entropy is NaN (or whose lse is NaN) passes the NaN on.
      fill(o, k, std::isnan(entropy[r]) || std::isnan(l) ? kNaN<A> : A(0));
    }
    if constexpr (!std::is_same_v<S, A>) {
      for (std::int64_t j = 0; j < k; ++j) out[r * k + j] = static_cast<S>(o[j]);
    }
  }
}

// ---- soft-target cross-entropy ---------------------------------------------

template <typename S>
void soft_target_forward_impl(const SoftTargetForwardArgs& args, std::int64_t begin, std::int64_t end) {
  using A = acc_t<S>;
  using V = Vectorized<A>;
  constexpr std::int64_t w = V::size();
  const std::int64_t k = args.k;
  const S* logits = static_cast<const S*>(args.logits);
  const S* targets = static_cast<const S*>(args.targets);
  A* loss = static_cast<A*>(args.loss);
  A* lse = static_cast<A*>(args.lse);
  A* target_sum = static_cast<A*>(args.target_sum);
  std::vector<A> xb, tb;
  for (std::int64_t r = begin; r < end; ++r) {
    const A* x = convert_row(logits + r * k, k, xb);
    const A* t = convert_row(targets + r * k, k, tb);
    const A m = row_max(x, k);
    A l = -kInf<A>;
    if (m > -kInf<A> || m != m) {
      A s, unused;
      sum_exp<A, false>(x, k, m, s, unused);
      l = m + std::log(s);
    }
    // Σ t·(lse − z), where t = 0 contributes 0 even against z = −inf.
    const V vl(l), vzero(A(0));
    V vloss(A(0)), vtsum(A(0));
    std::int64_t j = 0;
    for (; j + w <= k; j += w) {
      const V tj = V::loadu(t + j);
      const V term = tj * (vl - V::loadu(x + j));
      vloss = vloss + V::blendv(term, vzero, tj == vzero);
      vtsum = vtsum + tj;
    }
    auto add = [](V& a, V& b) { return a + b; };
    A total = at::vec::vec_reduce_all<A>(add, vloss);
    A tsum = at::vec::vec_reduce_all<A>(add, vtsum);
    for (; j < k; ++j) {
      if (t[j] != A(0)) total += t[j] * (l - x[j]);
      tsum += t[j];
    }
    loss[r] = total;
    lse[r] = l;
    target_sum[r] = tsum;
  }
}

template <typename S>
void soft_target_backward_impl(const SoftTargetBackwardArgs& args, std::int64_t begin, std::int64_t end) {
  using A = acc_t<S>;
  using V = Vectorized<A>;
  constexpr std::int64_t w = V::size();
  const std::int64_t k = args.k;
  const S* logits = static_cast<const S*>(args.logits);
  const S* targets = static_cast<const S*>(args.targets);
  const A* grad = static_cast<const A*>(args.grad);
  const A* lse = static_cast<const A*>(args.lse);
  const A* target_sum = static_cast<const A*>(args.target_sum);
  S* grad_logits = static_cast<S*>(args.grad_logits);
  S* grad_targets = static_cast<S*>(args.grad_targets);
  std::vector<A> xb, tb, ob;
  auto out_row = [&](S* base, std::int64_t r) -> A* {
    if constexpr (std::is_same_v<S, A>) {
      return base + r * k;
    } else {
      ob.resize(static_cast<std::size_t>(k));
      return ob.data();
    }
  };
  auto store_row = [&](S* base, std::int64_t r, const A* o) {
    if constexpr (!std::is_same_v<S, A>) {
      for (std::int64_t j = 0; j < k; ++j) base[r * k + j] = static_cast<S>(o[j]);
    }
  };
  for (std::int64_t r = begin; r < end; ++r) {
    const A* x = convert_row(logits + r * k, k, xb);
    const A g = grad[r], l = lse[r];
    if (grad_logits != nullptr) {
      const A* t = convert_row(targets + r * k, k, tb);
      A* o = out_row(grad_logits, r);
      const A tsum = target_sum[r];
      if (l > -kInf<A>) {
        // g·(p·Σt − t)
        const V vl(l), vlow(kLowest<A>), vg(g), vts(tsum);
        std::int64_t j = 0;
        for (; j + w <= k; j += w) {
          const V p = at::vec::maximum(V::loadu(x + j) - vl, vlow).exp();
          (vg * (p * vts - V::loadu(t + j))).store(o + j);
        }
        for (; j < k; ++j) o[j] = g * (std::exp(max_nan(x[j] - l, kLowest<A>)) * tsum - t[j]);
      } else {
        // No finite logit: the loss was 0 (every t = 0) or not a number.
        fill(o, k, tsum == A(0) && !std::isnan(l) ? A(0) : kNaN<A>);
      }
      store_row(grad_logits, r, o);
    }
    if (grad_targets != nullptr) {
      // g·(lse − z) = −g·log p
      A* o = out_row(grad_targets, r);
      const V vl(l), vg(g);
      std::int64_t j = 0;
      for (; j + w <= k; j += w) (vg * (vl - V::loadu(x + j))).store(o + j);
      for (; j < k; ++j) o[j] = g * (l - x[j]);
      store_row(grad_targets, r, o);
    }
  }
}

// ---- linear cross-entropy, one vocabulary chunk ----------------------------

template <typename T>
void lce_chunk_forward_impl(const LceChunkForwardArgs& args, std::int64_t begin, std::int64_t end) {
  const std::int64_t k = args.k;
  const T* logits = static_cast<const T*>(args.logits);
  T* stats = static_cast<T*>(args.stats);
  for (std::int64_t r = begin; r < end; ++r) {
    const T* x = logits + r * k;
    T* st = stats + 4 * r;
    const std::int64_t tl = args.target[r];
    if (tl >= 0 && tl < k) st[3] = x[tl];
    const T mc = row_max(x, k);
    if (mc != mc) {
      st[0] = st[1] = st[2] = mc;
      continue;
    }
    if (mc == -kInf<T>) continue;  // nothing to add
    T sc, bc;
    sum_exp<T, true>(x, k, mc, sc, bc);
    const T m0 = st[0], s0 = st[1], b0 = st[2];
    if (m0 != m0) continue;  // already NaN
    if (m0 == -kInf<T>) {
      st[0] = mc;
      st[1] = sc;
      st[2] = bc;
    } else if (mc > m0) {
      // Rescale the running sums to the new maximum:
      // Σ e^{z−M}(z−M) = e^{m0−M}·(B0 + (m0 − M)·S0).
      const T a = std::exp(m0 - mc);
      st[0] = mc;
      st[1] = a * s0 + sc;
      st[2] = a * (b0 + (m0 - mc) * s0) + bc;
    } else {
      const T a = std::exp(mc - m0);
      st[1] = s0 + a * sc;
      st[2] = b0 + a * (bc + (mc - m0) * sc);
    }
  }
}

template <typename T>
void lce_chunk_backward_impl(const LceChunkBackwardArgs& args, std::int64_t begin, std::int64_t end) {
  using V = Vectorized<T>;
  constexpr std::int64_t w = V::size();
  const std::int64_t k = args.k;
  T* logits = static_cast<T*>(args.logits);
  const T* lse = static_cast<const T*>(args.lse);
  const T* entropy = static_cast<const T*>(args.entropy);
  const T* coef_ce = static_cast<const T*>(args.coef_ce);
  const T* coef_ent = static_cast<const T*>(args.coef_ent);
  for (std::int64_t r = begin; r < end; ++r) {
    T* x = logits + r * k;
    const T l = lse[r], h = entropy[r], a = coef_ce[r], b = coef_ent[r];
    // p·(a − b·(d + H)), d = log p
    const V vl(l), vlow(kLowest<T>), vh(h), va(a), vb(b);
    std::int64_t j = 0;
    for (; j + w <= k; j += w) {
      const V d = at::vec::maximum(V::loadu(x + j) - vl, vlow);
      (d.exp() * (va - vb * (d + vh))).store(x + j);
    }
    for (; j < k; ++j) {
      const T d = max_nan(x[j] - l, kLowest<T>);
      x[j] = std::exp(d) * (a - b * (d + h));
    }
    const std::int64_t tl = args.target[r];
    if (tl >= 0 && tl < k) x[tl] -= a;
  }
}

template <template <typename> class Fn, typename Args>
void by_dtype(const Args& args, std::int64_t begin, std::int64_t end) {
  switch (args.dtype) {
    case Dtype::kFloat: return Fn<float>::run(args, begin, end);
    case Dtype::kDouble: return Fn<double>::run(args, begin, end);
    case Dtype::kHalf: return Fn<c10::Half>::run(args, begin, end);
    case Dtype::kBFloat16: return Fn<c10::BFloat16>::run(args, begin, end);
  }
}

#define REGLAB_KERNELS_ADAPT(name)                                                  \
  template <typename S>                                                             \
  struct name##_fn {                                                                \
    template <typename Args>                                                        \
    static void run(const Args& args, std::int64_t begin, std::int64_t end) {       \
      name##_impl<S>(args, begin, end);                                             \
    }                                                                               \
  };
REGLAB_KERNELS_ADAPT(entropy_forward)
REGLAB_KERNELS_ADAPT(entropy_backward)
REGLAB_KERNELS_ADAPT(soft_target_forward)
REGLAB_KERNELS_ADAPT(soft_target_backward)
#undef REGLAB_KERNELS_ADAPT

}  // namespace

void entropy_forward(const EntropyForwardArgs& args, std::int64_t begin, std::int64_t end) {
  by_dtype<entropy_forward_fn>(args, begin, end);
}
void entropy_backward(const EntropyBackwardArgs& args, std::int64_t begin, std::int64_t end) {
  by_dtype<entropy_backward_fn>(args, begin, end);
}
void soft_target_forward(const SoftTargetForwardArgs& args, std::int64_t begin, std::int64_t end) {
  by_dtype<soft_target_forward_fn>(args, begin, end);
}
void soft_target_backward(const SoftTargetBackwardArgs& args, std::int64_t begin, std::int64_t end) {
  by_dtype<soft_target_backward_fn>(args, begin, end);
}
void lce_chunk_forward(const LceChunkForwardArgs& args, std::int64_t begin, std::int64_t end) {
  if (args.dtype == Dtype::kDouble) return lce_chunk_forward_impl<double>(args, begin, end);
  lce_chunk_forward_impl<float>(args, begin, end);
}
void lce_chunk_backward(const LceChunkBackwardArgs& args, std::int64_t begin, std::int64_t end) {
  if (args.dtype == Dtype::kDouble) return lce_chunk_backward_impl<double>(args, begin, end);
  lce_chunk_backward_impl<float>(args, begin, end);
}

}  // namespace reglab::kernels::cpu::REGLAB_CPU_ISA
