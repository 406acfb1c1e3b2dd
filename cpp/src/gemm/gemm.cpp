// Portable cache-blocked GEMM with packed panels (BLIS structure: NC/KC/MC loops around an
// MR x NR register tile). Written so -O3 vectorises the micro-kernel's NR-wide rows; the
// hand-tuned per-ISA micro-kernels replace micro_kernel() later.
#include "rnnkit/gemm.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace rnnkit {
namespace {

template <class T>
struct Blocking {
  static constexpr index_t MR = 6;                       // rows of the register tile
  static constexpr index_t NR = 64 / sizeof(T);          // 16 fp32 / 8 fp64: one cache line
  static constexpr index_t KC = 256;                     // depth of a packed panel (L1)
  static constexpr index_t MC = 72;                      // rows of packed A (L2), multiple of MR
  static constexpr index_t NC = 2048;                    // columns of packed B (L3), multiple of NR
};

inline index_t round_up(index_t n, index_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// Element (r, c) of op(M) where M is stored row-major with stride ld.
template <class T>
inline T op_at(const T* M, index_t ld, Trans t, index_t r, index_t c) {
  return t == Trans::No ? M[r * ld + c] : M[c * ld + r];
}

// Packs op(B)[k0:k0+kc, j0:j0+nc] into panels of NR columns: dst[p][k][NR], zero-padded.
template <class T>
void pack_b(T* dst, const T* B, index_t ldb, Trans tb, index_t k0, index_t kc, index_t j0,
            index_t nc) {
  constexpr index_t NR = Blocking<T>::NR;
  for (index_t jp = 0; jp < nc; jp += NR) {
    const index_t nr = std::min(NR, nc - jp);
    for (index_t k = 0; k < kc; ++k) {
      T* row = dst + k * NR;
      if (tb == Trans::No) {
        const T* src = B + (k0 + k) * ldb + j0 + jp;
        for (index_t j = 0; j < nr; ++j) row[j] = src[j];
      } else {
        for (index_t j = 0; j < nr; ++j) row[j] = B[(j0 + jp + j) * ldb + k0 + k];
      }
      for (index_t j = nr; j < NR; ++j) row[j] = T(0);
    }
    dst += kc * NR;
  }
}

// Packs op(A)[i0:i0+mc, k0:k0+kc] into panels of MR rows: dst[p][k][MR], zero-padded.
template <class T>
void pack_a(T* dst, const T* A, index_t lda, Trans ta, index_t i0, index_t mc, index_t k0,
            index_t kc) {
  constexpr index_t MR = Blocking<T>::MR;
  for (index_t ip = 0; ip < mc; ip += MR) {
    const index_t mr = std::min(MR, mc - ip);
    for (index_t k = 0; k < kc; ++k) {
      T* col = dst + k * MR;
      for (index_t i = 0; i < mr; ++i) col[i] = op_at(A, lda, ta, i0 + ip + i, k0 + k);
      for (index_t i = mr; i < MR; ++i) col[i] = T(0);
    }
    dst += kc * MR;
  }
}

// C[mr, nr] (+)= Ap[kc][MR] @ Bp[kc][NR]; accumulate selects C += (else C =).
template <class T>
void micro_kernel(index_t kc, const T* __restrict Ap, const T* __restrict Bp, T* C,
                  index_t ldc, index_t mr, index_t nr, bool accumulate) {
  constexpr index_t MR = Blocking<T>::MR;
  constexpr index_t NR = Blocking<T>::NR;
  alignas(64) T acc[MR][NR] = {};
  for (index_t k = 0; k < kc; ++k) {
    const T* a = Ap + k * MR;
    const T* b = Bp + k * NR;
#pragma GCC unroll 6
    for (index_t i = 0; i < MR; ++i) {
      const T ai = a[i];
#pragma GCC ivdep
      for (index_t j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
  }
  for (index_t i = 0; i < mr; ++i) {
    T* c = C + i * ldc;
    if (accumulate) {
      for (index_t j = 0; j < nr; ++j) c[j] += acc[i][j];
    } else {
      for (index_t j = 0; j < nr; ++j) c[j] = acc[i][j];
    }
  }
}

}  // namespace

template <class T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  using Bk = Blocking<T>;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (beta == T(0)) {
      for (index_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    }
    return;
  }
  // Packing buffers sized to this problem (uninitialised: pack_* writes every element read).
  const index_t kc_max = std::min(K, Bk::KC);
  const index_t nc_max = round_up(std::min(N, Bk::NC), Bk::NR);
  const index_t mc_max = round_up(std::min(M, Bk::MC), Bk::MR);
  std::unique_ptr<T[]> bpack(new T[static_cast<size_t>(kc_max * nc_max)]);
  std::unique_ptr<T[]> apack(new T[static_cast<size_t>(kc_max * mc_max)]);
  for (index_t j0 = 0; j0 < N; j0 += Bk::NC) {
    const index_t nc = std::min(Bk::NC, N - j0);
    for (index_t k0 = 0; k0 < K; k0 += Bk::KC) {
      const index_t kc = std::min(Bk::KC, K - k0);
      const bool accumulate = k0 > 0 || beta != T(0);
      pack_b(bpack.get(), B, ldb, tb, k0, kc, j0, nc);
      for (index_t i0 = 0; i0 < M; i0 += Bk::MC) {
        const index_t mc = std::min(Bk::MC, M - i0);
        pack_a(apack.get(), A, lda, ta, i0, mc, k0, kc);
        for (index_t jp = 0; jp < nc; jp += Bk::NR) {
          const T* bp = bpack.get() + (jp / Bk::NR) * kc * Bk::NR;
          for (index_t ip = 0; ip < mc; ip += Bk::MR) {
            const T* ap = apack.get() + (ip / Bk::MR) * kc * Bk::MR;
            micro_kernel(kc, ap, bp, C + (i0 + ip) * ldc + j0 + jp, ldc,
                         std::min(Bk::MR, mc - ip), std::min(Bk::NR, nc - jp), accumulate);
          }
        }
      }
    }
  }
}

template <class T>
void column_sums(T* out, const T* A, index_t rows, index_t cols, index_t lda) {
  constexpr index_t kLeafRows = 32;
  if (rows <= kLeafRows) {
    std::fill(out, out + cols, T(0));
    for (index_t r = 0; r < rows; ++r) {
      const T* row = A + r * lda;
      for (index_t c = 0; c < cols; ++c) out[c] += row[c];
    }
    return;
  }
  // Split at a multiple of the leaf size so the tree shape depends only on `rows`.
  const index_t half = ((rows / 2 + kLeafRows - 1) / kLeafRows) * kLeafRows;
  std::vector<T> upper(static_cast<size_t>(cols));
  column_sums(out, A, half, cols, lda);
  column_sums(upper.data(), A + half * lda, rows - half, cols, lda);
  for (index_t c = 0; c < cols; ++c) out[c] += upper[c];
}

template void gemm<float>(Trans, Trans, index_t, index_t, index_t, const float*, index_t,
                          const float*, index_t, float, float*, index_t);
template void gemm<double>(Trans, Trans, index_t, index_t, index_t, const double*, index_t,
                           const double*, index_t, double, double*, index_t);
template void column_sums<float>(float*, const float*, index_t, index_t, index_t);
template void column_sums<double>(double*, const double*, index_t, index_t, index_t);

}  // namespace rnnkit
