// A small vector type per ISA (GCC/Clang vector extensions): loop bodies are written once
// over Vec<T> and compiled for every instruction set; RNNKIT_VECTOR_BYTES sets the width.
// Also the aligned scratch buffer the kernels use instead of std::vector (see isa.hpp).
#pragma once
#include <cstddef>
#include <cstring>
#include <new>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "rnnkit/block_pool.hpp"
#include "rnnkit/dims.hpp"
#include "rnnkit/isa.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

template <class T>
struct VecOf {
  typedef T type __attribute__((vector_size(RNNKIT_VECTOR_BYTES)));
};
template <class T>
using Vec = typename VecOf<T>::type;

// Elements of T in one vector register.
template <class T>
constexpr index_t lanes() { return RNNKIT_VECTOR_BYTES / sizeof(T); }

template <class T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T>
inline void store(T* p, Vec<T> v) { std::memcpy(p, &v, sizeof(v)); }
template <class T>
inline Vec<T> broadcast(T x) { return Vec<T>{} + x; }

// All lanes = *p, as one load (x86: vbroadcastss/sd from memory). broadcast(*p) compiles to
// a scalar load plus a register shuffle, and the shuffle port is also an FMA port on AVX-512
// cores: in the micro-kernels that costs a third of the FMA throughput.
inline Vec<float> broadcast_load(const float* p) {
#if defined(__AVX512F__)
  return reinterpret_cast<Vec<float>>(_mm512_set1_ps(*p));
#elif defined(__AVX__)
  return reinterpret_cast<Vec<float>>(_mm256_broadcast_ss(p));
#else
  return broadcast(*p);
#endif
}
inline Vec<double> broadcast_load(const double* p) {
#if defined(__AVX512F__)
  return reinterpret_cast<Vec<double>>(_mm512_set1_pd(*p));
#elif defined(__AVX__)
  return reinterpret_cast<Vec<double>>(_mm256_broadcast_sd(p));
#else
  return broadcast(*p);
#endif
}

// Uninitialised, 64-byte aligned array owned by the kernel, from the block pool (no
// std::vector: its out-of-line members would be weak symbols shared between the ISA builds).
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(index_t n) { reset(n); }
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void reset(index_t n) {
    release();
    if (n > 0) p_ = static_cast<T*>(pool_acquire(static_cast<size_t>(n) * sizeof(T), &cap_));
  }
  T* get() const { return p_; }
  T& operator[](index_t i) const { return p_[i]; }

 private:
  void release() {
    if (p_) pool_release(p_, cap_);
    p_ = nullptr;
  }
  T* p_ = nullptr;
  size_t cap_ = 0;
};

template <class T>
inline void fill_n(T* dst, index_t n, T value) {
  for (index_t i = 0; i < n; ++i) dst[i] = value;
}
template <class T>
inline void copy_n(const T* src, index_t n, T* dst) {
  for (index_t i = 0; i < n; ++i) dst[i] = src[i];
}
inline index_t min_index(index_t a, index_t b) { return a < b ? a : b; }
inline index_t max_index(index_t a, index_t b) { return a > b ? a : b; }
inline index_t round_up(index_t n, index_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}
inline index_t div_up(index_t n, index_t d) { return (n + d - 1) / d; }

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
