// The time loops shared by the cells (internal header). A cell supplies only its
// element-wise math as a lambda; the loops own masking, go_backwards, the output-repeat
// rule, double-buffered states, the recurrent products and the BPTT bookkeeping.
//
// Keras mask rule (SPEC section 3): at a masked step every state is carried unchanged and
// y repeats the previous output (zeros until the row's first kept step). In BPTT the
// gradient of a repeated output is carried back (dy_carry) to the last kept step.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "recurrent_tile.hpp"
#include "rnnkit/dims.hpp"
#include "rnnkit/gemm.hpp"

namespace rnnkit {
namespace detail {

inline bool step_kept(const std::uint8_t* mask, index_t row) {
  return mask == nullptr || mask[row] != 0;
}

// dst[0:n] = src ? src : 0.
template <class T>
inline void copy_or_zero(T* dst, const T* src, index_t n) {
  if (src) {
    std::copy(src, src + n, dst);
  } else {
    std::fill(dst, dst + n, T(0));
  }
}

// Default block preparation: the recurrent product reads h_{t-1} rows directly.
struct ReadHiddenState {
  template <class T>
  std::pair<const T*, index_t> operator()(index_t b0, index_t, index_t, const T* h_cur,
                                          index_t H) const {
    return {h_cur + b0 * H, H};
  }
};

// Forward time loop. h_state (B, H) holds h0 on entry and h_last on exit; c_state likewise
// for LSTM (null otherwise). For every block of batch rows and every slice of W hidden units:
//     acc[bb][g*W + w] = a[bb] @ panel.slice(jb)         (a = h_{t-1} unless prepare says)
//     elementwise(row, b, j, acc_unit, h_prev, c_prev, h_new&, c_new&)
// where acc_unit[g*W] is gate g of unit j. `prepare(b0, nb, t, h_cur, H)` runs first for
// each block and returns the (pointer, row stride) of the product's left operand.
template <class T, class Elementwise, class Prepare = ReadHiddenState>
void forward_loop(const Dims& d, const SeqOptions& opt, const std::uint8_t* mask,
                  const GatePanel<T>& panel, T* y, T* h_state, T* c_state,
                  Elementwise&& elementwise, Prepare&& prepare = Prepare{}) {
  constexpr index_t W = kSliceWidth, BB = kBatchBlock;
  const index_t B = d.B, Tn = d.T, H = d.H, NT = panel.width();
  std::vector<T> h_next(static_cast<size_t>(B * H));
  std::vector<T> c_next(c_state ? static_cast<size_t>(B * H) : 0);
  std::vector<std::uint8_t> seen(static_cast<size_t>(B), 0);  // row had a kept step
  T* h_cur = h_state;
  T* h_nxt = h_next.data();
  T* c_cur = c_state;
  T* c_nxt = c_state ? c_next.data() : nullptr;
  alignas(64) T acc[BB * 4 * W];

  for (index_t s = 0; s < Tn; ++s) {
    const index_t t = input_time(d, opt, s);
    for (index_t b0 = 0; b0 < B; b0 += BB) {
      const index_t nb = std::min(BB, B - b0);
      const auto [a, lda] = prepare(b0, nb, t, static_cast<const T*>(h_cur), H);
      for (index_t jb = 0; jb < slice_count(H); ++jb) {
        const index_t j0 = jb * W, w = std::min(W, H - j0);
        gate_tile_matmul(acc, a, lda, nb, panel.slice(jb), panel.K, panel.G);
        for (index_t bb = 0; bb < nb; ++bb) {
          const index_t b = b0 + bb, row = b * Tn + t;
          const bool keep = step_kept(mask, row);
          const T* acc_row = acc + bb * NT;
          T* y_row = y + (b * Tn + s) * H;
          for (index_t jj = 0; jj < w; ++jj) {
            const index_t j = j0 + jj, bj = b * H + j;
            const T hp = h_cur[bj];
            const T cp = c_cur ? c_cur[bj] : T(0);
            T hn, cn = T(0);
            elementwise(row, b, j, acc_row + jj, hp, cp, hn, cn);
            h_nxt[bj] = keep ? hn : hp;
            if (c_cur) c_nxt[bj] = keep ? cn : cp;
            y_row[j] = keep ? hn : (seen[b] ? hp : T(0));
          }
        }
      }
      for (index_t bb = 0; bb < nb; ++bb) {
        const index_t b = b0 + bb;
        seen[b] = seen[b] | static_cast<std::uint8_t>(step_kept(mask, b * Tn + t));
      }
    }
    std::swap(h_cur, h_nxt);
    std::swap(c_cur, c_nxt);
  }
  // After an odd number of swaps the final states live in the scratch buffers.
  if (h_cur != h_state) std::copy(h_cur, h_cur + B * H, h_state);
  if (c_state && c_cur != c_state) std::copy(c_cur, c_cur + B * H, c_state);
}

// No extra work between the element-wise pass and the final recurrent product.
struct NoMidStep {
  void operator()(index_t, index_t, index_t, const std::uint8_t*) const {}
};

// Reverse (BPTT) time loop. dh (B, H) holds dh_last on entry and dh0 on exit.
// For each step and block of batch rows:
//   1. for kept rows, dh_total = dh + dy_carry + dy[b, s]; dh[b, j] = elementwise(row, b, j,
//      dh_total), which writes the row's dG entries and returns the direct (non-matmul) part
//      of dL/dh_{t-1}; masked rows get zero dG (zero_row(row)) and pass dh_total on unchanged.
//   2. mid(b0, nb, t, mask): optional extra pass (GRU reset_before).
//   3. dh[kept rows] += dgr_rows @ R^T, with dgr rows at dgr + row * ld and rt packing the
//      transposed columns it multiplies.
template <class T, class Elementwise, class ZeroRow, class Mid = NoMidStep>
void backward_loop(const Dims& d, const SeqOptions& opt, const std::uint8_t* mask,
                   const TransposedPanel<T>& rt, const T* dgr, index_t ld, const T* dy, T* dh,
                   Elementwise&& elementwise, ZeroRow&& zero_row, Mid&& mid = Mid{}) {
  constexpr index_t W = kSliceWidth, BB = kBatchBlock;
  const index_t B = d.B, Tn = d.T, H = d.H;
  std::vector<T> dy_carry(static_cast<size_t>(B * H), T(0));
  alignas(64) T acc[BB * W];

  for (index_t s = Tn - 1; s >= 0; --s) {
    const index_t t = input_time(d, opt, s);
    for (index_t b0 = 0; b0 < B; b0 += BB) {
      const index_t nb = std::min(BB, B - b0);
      for (index_t bb = 0; bb < nb; ++bb) {
        const index_t b = b0 + bb, row = b * Tn + t;
        const T* dy_row = dy ? dy + (b * Tn + s) * H : nullptr;
        T* carry = dy_carry.data() + b * H;
        T* dh_row = dh + b * H;
        if (step_kept(mask, row)) {
          for (index_t j = 0; j < H; ++j) {
            const T total = dh_row[j] + carry[j] + (dy_row ? dy_row[j] : T(0));
            dh_row[j] = elementwise(row, b, j, total);
            carry[j] = T(0);
          }
        } else {
          zero_row(row);
          if (dy_row) {
            for (index_t j = 0; j < H; ++j) carry[j] += dy_row[j];
          }
        }
      }
      mid(b0, nb, t, mask);
      const T* a = dgr + (b0 * Tn + t) * ld;
      for (index_t kb = 0; kb < slice_count(H); ++kb) {
        const index_t k0 = kb * W, w = std::min(W, H - k0);
        tile_matmul<T, W>(acc, a, Tn * ld, nb, rt.slice(kb), rt.C);
        for (index_t bb = 0; bb < nb; ++bb) {
          const index_t b = b0 + bb;
          if (!step_kept(mask, b * Tn + t)) continue;
          for (index_t kk = 0; kk < w; ++kk) dh[b * H + k0 + kk] += acc[bb * W + kk];
        }
      }
    }
  }
}

// The weight-gradient GEMMs every cell ends its backward with (K = B*T rows):
//   dkernel = x^T dG,  dx = dG kernel^T.
template <class T>
inline void input_side_gradients(T* dx, T* dkernel, const Dims& d, const T* x,
                                 const T* kernel, const T* dG) {
  const index_t rows = d.rows(), GH = d.GH();
  gemm(Trans::Yes, Trans::No, d.I, GH, rows, x, d.I, dG, GH, T(0), dkernel, GH);
  gemm(Trans::No, Trans::Yes, rows, d.I, GH, dG, GH, kernel, GH, T(0), dx, d.I);
}

// XP (B*T, G*H) = x @ kernel (+ bias row): the input projection of every step in one GEMM.
template <class T>
inline void input_projection(T* xp, const Dims& d, const T* x, const T* kernel,
                             const T* bias) {
  const index_t GH = d.GH();
  gemm(Trans::No, Trans::No, d.rows(), GH, d.I, x, d.I, kernel, GH, T(0), xp, GH);
  if (bias) add_row_bias(xp, d.rows(), GH, GH, bias);
}

}  // namespace detail
}  // namespace rnnkit
