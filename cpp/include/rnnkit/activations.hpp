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

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace detail {

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
};

// exp(r) for |r| <= ln2/2: Taylor series to r^7 (float, error < 4e-9) or r^12 (double,
// error < 2e-16), Horner form.
inline float exp_reduced(float r) {
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}

inline double exp_reduced(double r) {
  double p = 1.0 / 479001600;  // 1/12!
  p = p * r + 1.0 / 39916800;
  p = p * r + 1.0 / 3628800;
  p = p * r + 1.0 / 362880;
  p = p * r + 1.0 / 40320;
  p = p * r + 1.0 / 5040;
  p = p * r + 1.0 / 720;
  p = p * r + 1.0 / 120;
  p = p * r + 1.0 / 24;
  p = p * r + 1.0 / 6;
  p = p * r + 0.5;
  p = p * r + 1.0;
  return p * r + 1.0;
}

}  // namespace detail

// exp(x) with x clamped to the range where 2^round(x/ln2) is a normal number: exp(x) for
// x <= lo is ~1e-38 (float) instead of a denormal or 0, and for x >= hi ~2e38 instead of inf.
// Both are harmless where it is used (1/(1+e) and 2/(e+1) saturate the same way).
template <class T>
inline T exp_clamped(T x) {
  using C = detail::ExpConstants<T>;
  using Bits = typename C::Bits;
  x = x < C::lo ? C::lo : x;
  x = x > C::hi ? C::hi : x;
  const T shifted = x * C::log2e + C::round_magic;  // low mantissa bits hold round(x/ln2)
  const T n = shifted - C::round_magic;
  const T r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  // 2^n built in the exponent field. Unsigned arithmetic: wraps instead of overflowing when
  // x is NaN (the polynomial then carries the NaN into the result).
  Bits shifted_bits, magic_bits;
  const T magic = C::round_magic;
  std::memcpy(&shifted_bits, &shifted, sizeof(T));
  std::memcpy(&magic_bits, &magic, sizeof(T));
  const Bits scale_bits = (shifted_bits - magic_bits + Bits(C::exponent_bias)) << C::mantissa_bits;
  T scale;
  std::memcpy(&scale, &scale_bits, sizeof(T));
  return detail::exp_reduced(r) * scale;
}

template <class T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_clamped(-x));
}

template <class T>
inline T tanh_act(T x) {
  const T ax = x < T(0) ? -x : x;
  // Small |x|: odd Taylor series (terms to x^9 suffice for float, to x^15 for double).
  const T x2 = x * x;
  T p;
  if (sizeof(T) == 8) {
    p = T(-929569.0 / 638512875);
    p = p * x2 + T(21844.0 / 6081075);
    p = p * x2 + T(-1382.0 / 155925);
  } else {
    p = T(-1382.0 / 155925);
  }
  p = p * x2 + T(62.0 / 2835);
  p = p * x2 + T(-17.0 / 315);
  p = p * x2 + T(2.0 / 15);
  p = p * x2 + T(-1.0 / 3);
  const T small = x + x * x2 * p;
  // Large |x|: 1 - 2/(exp(2|x|)+1) with the sign of x.
  const T mag = T(1) - T(2) / (exp_clamped(T(2) * ax) + T(1));
  const T large = x < T(0) ? -mag : mag;
  return ax < T(0.125) ? small : large;
}

// Derivatives expressed through the activation's output a.
template <class T>
inline T dsigmoid_from_out(T a) { return a * (T(1) - a); }
template <class T>
inline T dtanh_from_out(T a) { return T(1) - a * a; }

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
