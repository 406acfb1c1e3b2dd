// Scalar activations used inside the fused per-step loops. Kept in one place so a
// vectorised polynomial version can replace them without touching the cells.
#pragma once
#include <cmath>

namespace rnnkit {

// Logistic sigmoid, stable for large |x| (exp never overflows to inf/inf).
template <class T>
inline T sigmoid(T x) {
  if (x >= T(0)) {
    return T(1) / (T(1) + std::exp(-x));
  }
  const T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T>
inline T tanh_act(T x) { return std::tanh(x); }

// Derivatives expressed through the activation's output a.
template <class T>
inline T dsigmoid_from_out(T a) { return a * (T(1) - a); }
template <class T>
inline T dtanh_from_out(T a) { return T(1) - a * a; }

}  // namespace rnnkit
