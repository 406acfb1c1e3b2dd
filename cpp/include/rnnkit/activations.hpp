// Activations used inside the fused per-step loops: branch-free polynomial exp, sigmoid and
// tanh that the compiler vectorises (libm's expf/tanhf are scalar calls costing ~15 ns each,
// which dominated small problems). Accuracy: exp within ~2 ulp of exact in the clamped range;
// tanh never computed as 2*sigmoid(2x)-1 near 0 (DESIGN.md): a Taylor polynomial below
// |x| = 1/8, 1 - 2/(exp(2|x|)+1) above, both within a few ulp of exact.
// NaN propagates through every function (comparisons with NaN are false, so clamps keep it).
#pragma once
#include <cstdint>
#include <cstring>

#include "rnnkit/isa.hpp"
#include "rnnkit/simd.hpp"

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
inline V exp_reduced(V r) {
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
inline V tanh_small_poly(V x2) {
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

}  // namespace detail

// exp(x) with x clamped to the range where 2^round(x/ln2) is a normal number: exp(x) for
// x <= lo is ~1e-38 (float) instead of a denormal or 0, and for x >= hi ~2e38 instead of inf.
// Both are harmless where it is used (1/(1+e) and 2/(e+1) saturate the same way).
// Written once over whole vectors (Vec<T>): the branch-free selects and the exponent-field
// arithmetic are lane-wise, so nothing depends on the compiler's auto-vectoriser.
template <class T>
inline Vec<T> exp_clamped(Vec<T> x) {
  using C = detail::ExpConstants<T>;
  using Bits = typename C::Bits;
  using UVec = typename VecOf<Bits>::type;
  const Vec<T> lo = broadcast(static_cast<T>(C::lo)), hi = broadcast(static_cast<T>(C::hi));
  x = x < lo ? lo : x;  // NaN compares false and stays NaN
  x = x > hi ? hi : x;
  const Vec<T> shifted = x * C::log2e + C::round_magic;  // low mantissa bits: round(x/ln2)
  const Vec<T> n = shifted - C::round_magic;
  const Vec<T> r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  // 2^n built in the exponent field (unsigned: wraps instead of overflowing for NaN, whose
  // polynomial then carries the NaN into the result).
  const T magic = C::round_magic;
  Bits magic_bits;
  std::memcpy(&magic_bits, &magic, sizeof(T));
  UVec bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  bits = (bits - magic_bits + static_cast<Bits>(C::exponent_bias)) << C::mantissa_bits;
  Vec<T> scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return detail::exp_reduced<T>(r) * scale;
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
inline Vec<T> sigmoid(Vec<T> x) {
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
inline Vec<T> tanh_act(Vec<T> x) {
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
inline V dsigmoid_from_out(V a) { return a * (1 - a); }
template <class V>
inline V dtanh_from_out(V a) { return 1 - a * a; }

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
