// Building blocks of the fused per-step loops shared by the three cells (internal header).
//
// Forward, per step and per block of BB batch rows, hidden units are processed in slices of
// W units. A slice needs every gate of its units, so the recurrent weights are packed once
// per call as gate-interleaved slices:
//     forward panel  P[jb][k][g*W + w] = R[k, (g0+g)*H + jb*W + w]     (K = H rows)
// and the BPTT matvec dh_{t-1} = dG_t @ R^T uses the transposed panel
//     backward panel Q[kb][c][w]       = R[kb*W + w, c0 + c]            (K = number of columns)
// Both are consumed by the same register-tile product tile_matmul(): out[BB][NT] = a @ panel.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "rnnkit/dims.hpp"

namespace rnnkit {
namespace detail {

constexpr index_t kSliceWidth = 8;  // W: hidden units per slice
constexpr index_t kBatchBlock = 4;  // BB: batch rows sharing each panel load

inline index_t slice_count(index_t H) { return (H + kSliceWidth - 1) / kSliceWidth; }

// Packed forward panel for gates [g0, g0+G) of R (H_in rows, row stride ldr, H units).
template <class T>
struct GatePanel {
  index_t K = 0;   // rows of R (the contraction length)
  int G = 0;       // gates in the panel
  std::vector<T> data;

  index_t width() const { return G * kSliceWidth; }  // NT of tile_matmul
  const T* slice(index_t jb) const { return data.data() + jb * K * width(); }

  GatePanel(const T* R, index_t ldr, index_t K_, index_t H, int g0, int G_) : K(K_), G(G_) {
    const index_t nb = slice_count(H);
    data.resize(static_cast<size_t>(nb * K * width()));
    // Walk R row by row (contiguous reads); each gate's row segment scatters into the slices.
    for (index_t k = 0; k < K; ++k) {
      for (int g = 0; g < G; ++g) {
        const T* src = R + k * ldr + (g0 + g) * H;
        for (index_t jb = 0; jb < nb; ++jb) {
          T* dst = data.data() + (jb * K + k) * width() + g * kSliceWidth;
          const index_t j0 = jb * kSliceWidth, w = std::min(kSliceWidth, H - j0);
          for (index_t i = 0; i < w; ++i) dst[i] = src[j0 + i];
          for (index_t i = w; i < kSliceWidth; ++i) dst[i] = T(0);
        }
      }
    }
  }
};

// Packed transposed panel of R's columns [c0, c0+C) (R has H rows, stride ldr).
template <class T>
struct TransposedPanel {
  index_t C = 0;  // contraction length (columns of R used)
  std::vector<T> data;

  const T* slice(index_t kb) const { return data.data() + kb * C * kSliceWidth; }

  TransposedPanel(const T* R, index_t ldr, index_t H, index_t c0, index_t C_) : C(C_) {
    const index_t nb = slice_count(H);
    data.resize(static_cast<size_t>(nb * C * kSliceWidth));
    // Q[kb][c][w] = R[kb*W + w, c0 + c]: read W rows of R side by side, write contiguously.
    for (index_t kb = 0; kb < nb; ++kb) {
      const index_t k0 = kb * kSliceWidth, w = std::min(kSliceWidth, H - k0);
      T* dst = data.data() + kb * C * kSliceWidth;
      for (index_t c = 0; c < C; ++c) {
        for (index_t i = 0; i < w; ++i) dst[c * kSliceWidth + i] = R[(k0 + i) * ldr + c0 + c];
        for (index_t i = w; i < kSliceWidth; ++i) dst[c * kSliceWidth + i] = T(0);
      }
    }
  }
};

// out[b][0:NT] = sum_k a[b*lda + k] * panel[k][0:NT] for b < nb (nb <= BB).
// Rows b >= nb of out are left untouched. NT is a compile-time width so the row updates
// vectorise and stay in registers where the ISA has enough of them.
template <class T, index_t NT>
inline void tile_matmul(T* __restrict out, const T* __restrict a, index_t lda, index_t nb,
                        const T* __restrict panel, index_t K) {
  alignas(64) T acc[kBatchBlock][NT] = {};
  if (nb == kBatchBlock) {
    for (index_t k = 0; k < K; ++k) {
      const T* p = panel + k * NT;
#pragma GCC unroll 4
      for (index_t b = 0; b < kBatchBlock; ++b) {
        const T ab = a[b * lda + k];
#pragma GCC ivdep
        for (index_t n = 0; n < NT; ++n) acc[b][n] += ab * p[n];
      }
    }
  } else {
    for (index_t k = 0; k < K; ++k) {
      const T* p = panel + k * NT;
      for (index_t b = 0; b < nb; ++b) {
        const T ab = a[b * lda + k];
#pragma GCC ivdep
        for (index_t n = 0; n < NT; ++n) acc[b][n] += ab * p[n];
      }
    }
  }
  for (index_t b = 0; b < nb; ++b) {
    for (index_t n = 0; n < NT; ++n) out[b * NT + n] = acc[b][n];
  }
}

// Runtime-G dispatch onto the compile-time widths used by the cells (G in 1..4).
template <class T>
inline void gate_tile_matmul(T* out, const T* a, index_t lda, index_t nb, const T* panel,
                             index_t K, int G) {
  constexpr index_t W = kSliceWidth;
  switch (G) {
    case 1: tile_matmul<T, W>(out, a, lda, nb, panel, K); break;
    case 2: tile_matmul<T, 2 * W>(out, a, lda, nb, panel, K); break;
    case 3: tile_matmul<T, 3 * W>(out, a, lda, nb, panel, K); break;
    default: tile_matmul<T, 4 * W>(out, a, lda, nb, panel, K); break;
  }
}

// Adds bias[0:n] to every row of M (rows x n, stride ld).
template <class T>
inline void add_row_bias(T* M, index_t rows, index_t n, index_t ld, const T* bias) {
  for (index_t r = 0; r < rows; ++r) {
    T* row = M + r * ld;
    for (index_t c = 0; c < n; ++c) row[c] += bias[c];
  }
}

}  // namespace detail
}  // namespace rnnkit
