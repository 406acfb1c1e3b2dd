// Activations used inside the fused per-step loops: branch-free polynomial exp, sigmoid and
// tanh that the compiler vectorises (libm's expf/tanhf are scalar calls costing ~15 ns each,
// which dominated small problems). Accuracy: exp within ~2 ulp of exact in the clamped range;
// tanh never computed as 2*sigmoid(2x)-1 near 0 (docs/design.md): a Taylor polynomial below
// |x| = 1/8, 1 - 2/(exp(2|x|)+1) above, both within a few ulp of exact.
// NaN propagates through every function (comparisons with NaN are false, so clamps keep it).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "rnnkit/isa.hpp"
#include "rnnkit/simd.hpp"

// The default pair's math is forced inline (as GCC inlined it before the other activations
// existed): where many call sites share it, GCC's unit-growth limits could leave exp_clamped
// out of line, a call per vector. The runtime-switched path is also compiled in its own
// translation units (cells/any_activation.hpp) for the same reason.
#ifndef RNNKIT_FORCE_INLINE
#define RNNKIT_FORCE_INLINE inline __attribute__((always_inline))
#endif

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace detail {

// A scalar as V: itself for V = T, all lanes for V = Vec<T>.
template <class V, class T>
inline V broadcast_as(T x) { return V{} + x; }

template <class T>
struct ExpConstants;

template <>
struct ExpConstants<float> {
  using Bits = std::uint32_t;
  static constexpr float lo = -87.3f, hi = 88.3f;      // 2^n stays a normal float
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;        // Cody-Waite split of ln 2
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float round_magic = 12582912.0f;    // 1.5 * 2^23: adds round to integer
  static constexpr int mantissa_bits = 23, exponent_bias = 127;
  static constexpr float sigmoid_zero_below = -103.972077f;  // ln(2^-150): exp underflows to 0
};

template <>
struct ExpConstants<double> {
  using Bits = std::uint64_t;
  static constexpr double lo = -708.3, hi = 709.0;
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double round_magic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr int mantissa_bits = 52, exponent_bias = 1023;
  static constexpr double sigmoid_zero_below = -745.1332191019412;  // ln(2^-1075)
};

// exp(r) for |r| <= ln2/2: Taylor series to r^7 (float, error < 4e-9) or r^12 (double,
// error < 2e-16), Horner form. V is T or Vec<T>.
template <class T, class V>
RNNKIT_FORCE_INLINE V exp_reduced(V r) {
  V p = broadcast_as<V>(T(1.0 / 479001600));
  if constexpr (sizeof(T) == 8) {
    p = p * r + T(1.0 / 39916800);
    p = p * r + T(1.0 / 3628800);
    p = p * r + T(1.0 / 362880);
    p = p * r + T(1.0 / 40320);
    p = p * r + T(1.0 / 5040);
  } else {
    p = broadcast_as<V>(T(1.0 / 5040));
  }
  p = p * r + T(1.0 / 720);
  p = p * r + T(1.0 / 120);
  p = p * r + T(1.0 / 24);
  p = p * r + T(1.0 / 6);
  p = p * r + T(0.5);
  p = p * r + T(1);
  return p * r + T(1);
}

// Odd Taylor polynomial of tanh(x)/x - 1 in x^2 for |x| < 1/8: terms to x^9 suffice for
// float, to x^15 for double.
template <class T, class V>
RNNKIT_FORCE_INLINE V tanh_small_poly(V x2) {
  V p = broadcast_as<V>(T(-1382.0 / 155925));
  if constexpr (sizeof(T) == 8) {
    p = broadcast_as<V>(T(-929569.0 / 638512875));
    p = p * x2 + T(21844.0 / 6081075);
    p = p * x2 + T(-1382.0 / 155925);
  }
  p = p * x2 + T(62.0 / 2835);
  p = p * x2 + T(-17.0 / 315);
  p = p * x2 + T(2.0 / 15);
  return p * x2 + T(-1.0 / 3);
}

// The range reduction of exp: x clamped to the range where 2^round(x/ln2) is a normal number,
// then x = n ln2 + r with |r| <= ln2/2 (r exact: ln2 split in hi + lo) and scale = 2^n built
// in the exponent field. Written once over whole vectors (Vec<T>): the branch-free selects and
// the exponent-field arithmetic are lane-wise, so nothing depends on the auto-vectoriser.
template <class T>
struct ExpReduction {
  Vec<T> r, scale;
};

template <class T>
RNNKIT_FORCE_INLINE ExpReduction<T> reduce_exp_argument(Vec<T> x) {
  using C = ExpConstants<T>;
  using Bits = typename C::Bits;
  using UVec = typename VecOf<Bits>::type;
  const Vec<T> lo = broadcast(static_cast<T>(C::lo)), hi = broadcast(static_cast<T>(C::hi));
  x = x < lo ? lo : x;  // NaN compares false and stays NaN
  x = x > hi ? hi : x;
  const Vec<T> shifted = x * C::log2e + C::round_magic;  // low mantissa bits: round(x/ln2)
  const Vec<T> n = shifted - C::round_magic;
  ExpReduction<T> red;
  red.r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  // 2^n (unsigned arithmetic: wraps instead of overflowing for NaN, whose polynomial then
  // carries the NaN into the result).
  const T magic = C::round_magic;
  Bits magic_bits;
  std::memcpy(&magic_bits, &magic, sizeof(T));
  UVec bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  bits = (bits - magic_bits + static_cast<Bits>(C::exponent_bias)) << C::mantissa_bits;
  std::memcpy(&red.scale, &bits, sizeof(red.scale));
  return red;
}
}  // namespace detail

// exp(x) with x clamped to the range where 2^round(x/ln2) is a normal number: exp(x) for
// x <= lo is ~1e-38 (float) instead of a denormal or 0, and for x >= hi ~2e38 instead of inf.
// Both are harmless where it is used (1/(1+e) and 2/(e+1) saturate the same way).
template <class T>
RNNKIT_FORCE_INLINE Vec<T> exp_clamped(Vec<T> x) {
  const detail::ExpReduction<T> red = detail::reduce_exp_argument<T>(x);
  return detail::exp_reduced<T>(red.r) * red.scale;
}

// sigmoid(x) = 1 / (1 + exp(-x)), saturating exactly as the NumPy reference's stable form
// (1/(1+e) for x >= 0, e/(1+e) for x < 0, e = exp(-|x|)) does in the same dtype:
//   * exactly 0 where exp(x) underflows to 0 (x < ln(2^-150) in float, ln(2^-1075) in
//     double; so sigmoid(-inf) = 0). Without the blend the clamped exp gives ~4.6e-39, and
//     a gradient a*(1-a)*inf would be inf where the reference has 0*inf = NaN. Between that
//     point and the clamp both are tiny nonzero numbers;
//   * exactly 1 where 1 + exp(-x) rounds to 1 (x > ~16.6 in float, ~36.7 in double; +inf);
//   * NaN stays NaN (the comparison is false for NaN).
// Branch-free: one compare and one blend more than the plain formula.
template <class T>
RNNKIT_FORCE_INLINE Vec<T> sigmoid(Vec<T> x) {
  using C = detail::ExpConstants<T>;
  const Vec<T> s = T(1) / (T(1) + exp_clamped<T>(-x));
  return x < broadcast(static_cast<T>(C::sigmoid_zero_below)) ? broadcast(T(0)) : s;
}

// tanh. fp32: a 13/6 rational minimax approximation on [-7.9053, 7.9053], |error| < 2.5e-7
// absolute and relative, and exactly +-1 beyond (where 1 - tanh^2 < 5.5e-7): saturated
// units then have exactly zero derivative, as the exp-based form and NumPy give them. Half
// the operations of the exp-based form; the LSTM step calls it twice per unit.
// fp64: the Taylor polynomial below |x| = 1/8, 1 - 2/(exp(2|x|)+1) above. Never computed as
// 2*sigmoid(2x)-1, whose relative error near 0 is 100%.
template <class T>
RNNKIT_FORCE_INLINE Vec<T> tanh_act(Vec<T> x) {
  if constexpr (sizeof(T) == 4) {
    const Vec<T> lim = broadcast(T(7.90531110763549805)), one = broadcast(T(1));
    const Vec<T> x2 = x * x;
    Vec<T> p = broadcast(T(-2.76076847742355e-16));
    p = p * x2 + T(2.00018790482477e-13);
    p = p * x2 + T(-8.60467152213735e-11);
    p = p * x2 + T(5.12229709037114e-08);
    p = p * x2 + T(1.48572235717979e-05);
    p = p * x2 + T(6.37261928875436e-04);
    p = p * x2 + T(4.89352455891786e-03);
    Vec<T> q = broadcast(T(1.19825839466702e-06));
    q = q * x2 + T(1.18534705686654e-04);
    q = q * x2 + T(2.26843463243900e-03);
    q = q * x2 + T(4.89352518554385e-03);
    const Vec<T> r = x * p / q;  // NaN compares false below and stays NaN
    return x >= lim ? one : (x <= -lim ? -one : r);
  }
  const Vec<T> zero = broadcast(T(0));
  const Vec<T> ax = x < zero ? -x : x;
  const Vec<T> x2 = x * x;
  const Vec<T> small = x + x * x2 * detail::tanh_small_poly<T>(x2);
  const Vec<T> mag = T(1) - T(2) / (exp_clamped<T>(T(2) * ax) + T(1));
  const Vec<T> large = x < zero ? -mag : mag;
  return ax < broadcast(T(0.125)) ? small : large;
}

// Derivatives expressed through the activation's output a (V is T or Vec<T>).
template <class V>
RNNKIT_FORCE_INLINE V dsigmoid_from_out(V a) { return a * (1 - a); }
template <class V>
RNNKIT_FORCE_INLINE V dtanh_from_out(V a) { return 1 - a * a; }

// ------------------------------------------------------------------ the other activations
// Every Keras element-wise activation (dims.hpp, Activation). Forward values on Vec<T>;
// NaN propagates through each (selects test the condition that is false for NaN).

namespace detail {

// expm1(r) / r - 1 ... as the polynomial P(r) = sum_k r^k / (k+1)!, so expm1(r) = r * P(r)
// for |r| <= ln2/2: terms to r^7/8! (float, relative error < 2e-8) or r^12/13! (double,
// < 1e-16 relative plus rounding).
template <class T, class V>
inline V expm1_reduced_over_r(V r) {
  V p;
  if constexpr (sizeof(T) == 8) {
    p = broadcast_as<V>(T(1.0 / 6227020800.0));  // 1/13!
    p = p * r + T(1.0 / 479001600);
    p = p * r + T(1.0 / 39916800);
    p = p * r + T(1.0 / 3628800);
    p = p * r + T(1.0 / 362880);
    p = p * r + T(1.0 / 40320);
  } else {
    p = broadcast_as<V>(T(1.0 / 40320));
  }
  p = p * r + T(1.0 / 5040);
  p = p * r + T(1.0 / 720);
  p = p * r + T(1.0 / 120);
  p = p * r + T(1.0 / 24);
  p = p * r + T(1.0 / 6);
  p = p * r + T(0.5);
  return p * r + T(1);
}

}  // namespace detail

// expm1(x) = 2^n (exp(r) - 1) + (2^n - 1) with the reduction of exp_clamped: exact
// argument r = x for |x| < ln2/2 (n = 0), so small |x| keeps full relative accuracy
// (~2 ulp; exp(x)-1 would lose it all). Beyond the clamp: -1 below, a huge finite number
// above (the kernels use it for x <= 0 only).
template <class T>
inline Vec<T> expm1_act(Vec<T> x) {
  const detail::ExpReduction<T> red = detail::reduce_exp_argument<T>(x);
  const Vec<T> q = red.r * detail::expm1_reduced_over_r<T>(red.r);  // exp(r) - 1
  return red.scale * q + (red.scale - T(1));
}

// log1p(u) for u in [0, 1] (or NaN): w = 1 + u rounded, plus the rounding correction
// (u - (w - 1)) / w; log w = k ln2 + 2 atanh(s), s = (m - 1)/(m + 1), m = w / 2^k in
// [sqrt(2)/2, sqrt(2)], |s| <= 0.1716: the atanh series to s^21 (double) / s^9 (float).
template <class T>
inline Vec<T> log1p_unit(Vec<T> u) {
  const Vec<T> one = broadcast(T(1)), zero = broadcast(T(0));
  const Vec<T> w = one + u;
  const Vec<T> corr = (u - (w - one)) / w;
  const auto big = w > broadcast(T(1.41421356237309504880));
  const Vec<T> m = big ? w * T(0.5) : w;
  const Vec<T> k = big ? one : zero;
  const Vec<T> s = (m - one) / (m + one);
  const Vec<T> s2 = s * s;
  Vec<T> p;
  if constexpr (sizeof(T) == 8) {
    p = broadcast(T(1.0 / 21));
    p = p * s2 + T(1.0 / 19);
    p = p * s2 + T(1.0 / 17);
    p = p * s2 + T(1.0 / 15);
    p = p * s2 + T(1.0 / 13);
    p = p * s2 + T(1.0 / 11);
  } else {
    p = broadcast(T(1.0 / 11));
  }
  p = p * s2 + T(1.0 / 9);
  p = p * s2 + T(1.0 / 7);
  p = p * s2 + T(1.0 / 5);
  p = p * s2 + T(1.0 / 3);
  const Vec<T> log_m = T(2) * s + T(2) * s * s2 * p;
  using C = detail::ExpConstants<T>;
  return k * static_cast<T>(C::ln2_hi) + (k * static_cast<T>(C::ln2_lo) + (log_m + corr));
}

namespace detail {
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSqrt2 = 1.4142135623730950488016887242097;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;
}  // namespace detail

// Standard normal CDF Phi(x) = erfc(-x/sqrt 2)/2 lane by lane with the C library's erfc
// (a scalar loop over the vector: GELU is the only user; erfc rather than 1 + erf keeps
// the relative accuracy of the tail x << 0).
template <class T>
inline Vec<T> normal_cdf(Vec<T> x) {
  Vec<T> out;
  for (index_t l = 0; l < lanes<T>(); ++l) {
    out[l] = T(0.5) * std::erfc(-x[l] / T(detail::kSqrt2));  // x / sqrt 2, as Keras
  }
  return out;
}

// Value of activation k at z (a runtime switch: the non-default combinations).
template <class T>
inline Vec<T> activation_value(Activation k, Vec<T> z) {
  const Vec<T> zero = broadcast(T(0)), one = broadcast(T(1));
  switch (k) {
    case Activation::Tanh: return tanh_act<T>(z);
    case Activation::Sigmoid: return sigmoid<T>(z);
    case Activation::HardSigmoid: {  // relu6(x + 3) / 6
      Vec<T> t = z + T(3);
      t = t < zero ? zero : t;
      t = t > broadcast(T(6)) ? broadcast(T(6)) : t;
      return t / T(6);
    }
    case Activation::HardSigmoidKeras2: {  // clip(0.2 x + 0.5, 0, 1)
      Vec<T> t = T(0.2) * z + T(0.5);
      t = t < zero ? zero : t;
      return t > one ? one : t;
    }
    case Activation::ReLU: return z < zero ? zero : z;
    case Activation::ReLU6: {
      const Vec<T> t = z < zero ? zero : z;
      return t > broadcast(T(6)) ? broadcast(T(6)) : t;
    }
    case Activation::ELU: return z > zero ? z : expm1_act<T>(z);
    case Activation::SELU: {
      const Vec<T> neg = T(detail::kSeluAlpha) * expm1_act<T>(z);
      return T(detail::kSeluScale) * (z > zero ? z : neg);
    }
    case Activation::Softsign: return z / (one + (z < zero ? -z : z));
    case Activation::Softplus: {  // max(x, 0) + log1p(exp(-|x|))
      using C = detail::ExpConstants<T>;
      const Vec<T> nax = z < zero ? z : -z;
      Vec<T> u = exp_clamped<T>(nax);
      u = nax < broadcast(static_cast<T>(C::lo)) ? zero : u;  // exp underflows: 0, as NumPy
      return (z > zero ? z : zero) + log1p_unit<T>(u);
    }
    case Activation::SiLU: return z * sigmoid<T>(z);
    case Activation::GELU: return z * normal_cdf<T>(z);
    default: return z;  // Linear
  }
}

// Activations whose derivative is not a function of their output: the training cache keeps
// their pre-activation instead (cells.hpp, TrainCache).
inline bool activation_needs_input(Activation k) {
  return k == Activation::SiLU || k == Activation::GELU;
}

// From the cached form c (the output a, or the pre-activation z when needs_input): the output
// a and the derivative da/dz. Kinks take the derivative 0 at the boundary (relu'(0) = 0,
// relu6'(6) = 0, hard_sigmoid'(+-3) = 0), except elu'(0) = 1 and selu'(0) = scale*alpha.
template <class T>
inline void activation_restore(Activation k, Vec<T> c, Vec<T>& a, Vec<T>& da) {
  const Vec<T> zero = broadcast(T(0)), one = broadcast(T(1));
  a = c;
  switch (k) {
    case Activation::Tanh: da = dtanh_from_out(c); return;
    case Activation::Sigmoid: da = dsigmoid_from_out(c); return;
    case Activation::HardSigmoid:
      da = ((c > zero) & (c < one)) ? broadcast(T(1.0 / 6)) : zero;
      return;
    case Activation::HardSigmoidKeras2:
      da = ((c > zero) & (c < one)) ? broadcast(T(0.2)) : zero;
      return;
    case Activation::ReLU: da = c > zero ? one : zero; return;
    case Activation::ReLU6: da = ((c > zero) & (c < broadcast(T(6)))) ? one : zero; return;
    case Activation::ELU: da = c > zero ? one : c + T(1); return;
    case Activation::SELU:
      da = c > zero ? broadcast(T(detail::kSeluScale))
                    : c + T(detail::kSeluScale * detail::kSeluAlpha);
      return;
    case Activation::Softsign: {
      const Vec<T> t = one - (c < zero ? -c : c);
      da = t * t;
      return;
    }
    case Activation::Softplus: da = -expm1_act<T>(-c); return;  // sigmoid(z) = 1 - exp(-a)
    case Activation::SiLU: {
      const Vec<T> s = sigmoid<T>(c);
      a = c * s;
      da = s + a * (one - s);
      return;
    }
    case Activation::GELU: {
      const Vec<T> cdf = normal_cdf<T>(c);
      a = c * cdf;
      da = cdf + c * (exp_clamped<T>(T(-0.5) * c * c) * T(detail::kInvSqrt2Pi));
      return;
    }
    default: da = one; return;  // Linear
  }
}

// Activation functors of the fused loops. A cell step is a template on two of them:
//   apply(z)           the activation's value
//   keep(z, a)         what the training cache stores (a, or z when the derivative needs z)
//   value(c)           the value from the cached form
//   restore(c, a, da)  value and derivative from the cached form (V = T or Vec<T>)
// TanhAct / SigmoidAct are the default pair, compiled as the kernels always were; AnyAct
// switches at run time over every activation (one instantiation for all other pairs).
template <class T>
struct TanhAct {
  Vec<T> apply(Vec<T> z) const { return tanh_act<T>(z); }
  Vec<T> keep(Vec<T>, Vec<T> a) const { return a; }
  Vec<T> value(Vec<T> c) const { return c; }
  template <class V>
  void restore(V c, V& a, V& da) const { a = c; da = dtanh_from_out(c); }
};

template <class T>
struct SigmoidAct {
  Vec<T> apply(Vec<T> z) const { return sigmoid<T>(z); }
  Vec<T> keep(Vec<T>, Vec<T> a) const { return a; }
  Vec<T> value(Vec<T> c) const { return c; }
  template <class V>
  void restore(V c, V& a, V& da) const { a = c; da = dsigmoid_from_out(c); }
};

template <class T>
struct AnyAct {
  Activation kind;
  bool needs_input;
  explicit AnyAct(Activation k) : kind(k), needs_input(activation_needs_input(k)) {}
  Vec<T> apply(Vec<T> z) const { return activation_value<T>(kind, z); }
  Vec<T> keep(Vec<T> z, Vec<T> a) const { return needs_input ? z : a; }
  Vec<T> value(Vec<T> c) const { return needs_input ? activation_value<T>(kind, c) : c; }
  void restore(Vec<T> c, Vec<T>& a, Vec<T>& da) const { activation_restore<T>(kind, c, a, da); }
  void restore(T c, T& a, T& da) const {  // one element (GRU reset_before's scalar pass)
    Vec<T> va, vda;
    activation_restore<T>(kind, broadcast(c), va, vda);
    a = va[0];
    da = vda[0];
  }
};

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
