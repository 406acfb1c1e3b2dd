// Building blocks of the fused per-step loops (internal header, compiled per ISA).
//
// Hidden units are processed in slices of W units (W = one vector, at least 4 lanes). A
// slice needs every gate of its units, so the recurrent weights are packed once per call as
// gate-interleaved slices:
//     forward panel  P[jb][k][g*W + w] = R[k, (g0+g)*H + jb*W + w]     (K = H rows)
// and the BPTT product dh_{t-1} = dG_t @ R^T uses the transposed panel
//     backward panel Q[kb][c][w]       = R[kb*W + w, c0 + c]            (K = C columns)
// One-gate forward panels and the transposed panel pack pairs of slices side by side
// (P[k][0:2W], Q[c][0:2W]) so every tile has at least two vectors of accumulators per row.
// All are consumed by tile_matmul(): out[rows][NT] = a[rows] @ panel (K x NT), with the
// accumulators of up to R rows x NT columns held in vector registers, walking K in pieces
// that stay in L1.
#pragma once
#include "rnnkit/dims.hpp"
#include "rnnkit/gemm.hpp"
#include "rnnkit/simd.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace detail {

// Hidden units per slice: one vector, at least 4 (generic fp64 has 2-lane vectors).
template <class T>
constexpr index_t slice_width() { return lanes<T>() >= 4 ? lanes<T>() : 4; }
template <class T>
inline index_t slice_count(index_t H) { return div_up(H, slice_width<T>()); }

// Vector registers the tile may fill with accumulators (x86-64: 16 regs AVX2/SSE, 32 AVX-512).
constexpr int kAccumulatorRegs = RNNKIT_VECTOR_BYTES == 64 ? 24 : 12;

// Slices in the group starting at slice s of a thread's range ending at `last`: pairs, and a
// single slice at an odd end. One rule for every paired panel, so packing and use agree.
inline index_t pair_group_size(index_t s, index_t last) { return s + 1 < last ? 2 : 1; }

// Where a tile reads its right operand: row k, gate g, lanes [0, W) of the slice start at
// base + k * ldk + g * gate_stride. Packed panels have ldk = G*W, gate_stride = W.
template <class T>
struct PanelView {
  const T* base;
  index_t ldk;
  index_t gate_stride;
};

// Forward panel for gates [g0, g0+G) of R (K rows, row stride ldr, H units). Packed once
// per call when the sequence is long enough to repay it; a single step (streaming inference)
// reads R in place instead when whole slices fit (H a multiple of W), so it costs no copy.
// A one-gate panel is walked in groups of two slices, as TransposedPanel is, so its tile
// keeps two vectors of accumulators per row.
template <class T>
struct GatePanel {
  index_t K = 0;  // rows of R: the contraction length
  int G = 0;      // gates in the panel
  const T* R;
  index_t ldr, H;
  int g0;
  bool packed;
  Buffer<T> data;

  index_t width() const { return G * slice_width<T>(); }  // NT of one slice
  // Slices in the group starting at slice jb of a thread range ending at `last`.
  index_t group_size(index_t jb, index_t last) const {
    return G == 1 ? pair_group_size(jb, last) : 1;
  }
  // The group of n slices starting at slice jb (n > 1 only for one-gate panels).
  PanelView<T> group(index_t jb, index_t n) const {
    constexpr index_t W = slice_width<T>();
    if (!packed) return {R + g0 * H + jb * W, ldr, G == 1 ? W : H};
    return {data.get() + jb * K * width(), n * width(), W};
  }

  GatePanel(const T* R_, index_t ldr_, index_t K_, index_t H_, int g0_, int G_, index_t steps)
      : K(K_), G(G_), R(R_), ldr(ldr_), H(H_), g0(g0_),
        packed(steps > 1 || H_ % slice_width<T>() != 0),
        data(packed ? slice_count<T>(H_) * K_ * width() : 0) {}

  // Packs the groups of slices [first, last) (each thread packs the slices it owns, into
  // its own cache): P[k][g*nW + i] = R[k, (g0+g)*H + jb*W + i], i < nW = n*W (n = 1 if G > 1).
  void pack(index_t first, index_t last) {
    if (!packed) return;
    constexpr index_t W = slice_width<T>();
    for (index_t jb = first; jb < last; jb += group_size(jb, last)) {
      const index_t nw = group_size(jb, last) * W, j0 = jb * W, w = min_index(nw, H - j0);
      for (index_t k = 0; k < K; ++k) {
        T* dst = data.get() + jb * K * width() + k * G * nw;
        for (int g = 0; g < G; ++g) {
          const T* src = R + k * ldr + (g0 + g) * H + j0;
          for (index_t i = 0; i < w; ++i) dst[g * nw + i] = src[i];
          for (index_t i = w; i < nw; ++i) dst[g * nw + i] = T(0);
        }
      }
    }
  }
};

// Packed transposed panel of R's columns [c0, c0+C) (R has H rows, stride ldr). A thread
// walks its slices [first, last) in groups of two (one at an odd end): a group's panel is
// (C, 2W) so the product keeps two vectors of accumulators per row (FMA-bound, not
// load-bound like a one-vector tile). Each output element is computed the same way in either
// group size, so results do not depend on how slices are split between threads.
template <class T>
struct TransposedPanel {
  index_t C = 0;  // contraction length (columns of R used)
  Buffer<T> data;

  // Slices in the group starting at slice kb of a thread range ending at `last`.
  static index_t group_size(index_t kb, index_t last) { return pair_group_size(kb, last); }
  const T* group(index_t kb) const { return data.get() + kb * C * slice_width<T>(); }

  TransposedPanel(index_t H, index_t C_) : C(C_), data(slice_count<T>(H) * C_ * slice_width<T>()) {}

  // Packs the groups of slices [first, last): Q[c][i] = R[kb*W + i, c0 + c], i < n*W.
  void pack(const T* R, index_t ldr, index_t H, index_t c0, index_t first, index_t last) {
    constexpr index_t W = slice_width<T>();
    for (index_t kb = first; kb < last; kb += group_size(kb, last)) {
      const index_t nw = group_size(kb, last) * W, k0 = kb * W, w = min_index(nw, H - k0);
      T* dst = data.get() + kb * C * W;
      for (index_t c = 0; c < C; ++c) {
        for (index_t i = 0; i < w; ++i) dst[c * nw + i] = R[(k0 + i) * ldr + c0 + c];
        for (index_t i = w; i < nw; ++i) dst[c * nw + i] = T(0);
      }
    }
  }
};

// R rows: out[r][0:NV*V] = sum_k a[r*lda + k] * panel row k (accumulators in registers).
// Vector v of panel row k is at p.base + k*p.ldk + (v / S)*p.gate_stride + (v % S)*V, with
// S vectors per slice.
template <class T, int NV, int R>
inline void tile_rows(T* __restrict out, index_t ldo, const T* __restrict a, index_t lda,
                      PanelView<T> p_view, index_t K, bool accumulate) {
  constexpr index_t V = lanes<T>();
  constexpr int S = static_cast<int>(slice_width<T>() / V);
  index_t offset[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) offset[v] = (v / S) * p_view.gate_stride + (v % S) * V;
  const T* __restrict panel = p_view.base;
  Vec<T> acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = accumulate ? load(out + r * ldo + v * V) : Vec<T>{};
  }
  for (index_t k = 0; k < K; ++k) {
    Vec<T> p[NV];
    const T* row = panel + k * p_view.ldk;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) p[v] = load(row + offset[v]);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const Vec<T> ar = broadcast_load(a + r * lda + k);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] += ar * p[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) store(out + r * ldo + v * V, acc[r][v]);
  }
}

// The remainder rows (rows < R) of a tile, one instantiation per count.
template <class T, int NV, int R>
inline void tile_remainder(index_t rows, T* out, index_t ldo, const T* a, index_t lda,
                           PanelView<T> panel, index_t K, bool accumulate) {
  if constexpr (R > 0) {
    if (rows == R) {
      tile_rows<T, NV, R>(out, ldo, a, lda, panel, K, accumulate);
    } else {
      tile_remainder<T, NV, R - 1>(rows, out, ldo, a, lda, panel, K, accumulate);
    }
  }
}

// Depth of one pass over the rows: a (KC x NT) piece of the panel stays in L1 while every row
// tile uses it, instead of the whole panel streaming from L2 once per row tile. Between
// passes the accumulators go through `out`; each element is still one FMA chain over k in
// order, so the result is the same bit for bit.
constexpr index_t kTileDepth = 128;

// out[r][0:NT] = a[r] @ panel for r < rows; NT = NV vectors; row strides ldo and lda.
template <class T, int NV>
inline void tile_matmul(T* out, index_t ldo, const T* a, index_t lda, index_t rows,
                        PanelView<T> panel, index_t K) {
  constexpr int R = kAccumulatorRegs / NV < 1 ? 1 : (kAccumulatorRegs / NV > 8 ? 8 : kAccumulatorRegs / NV);
  // One pass when a single row tile would stream the panel anyway.
  const index_t depth = rows <= R ? K : kTileDepth;
  for (index_t k0 = 0; k0 < K || k0 == 0; k0 += depth) {
    const index_t kc = min_index(depth, K - k0);
    const PanelView<T> piece{panel.base + k0 * panel.ldk, panel.ldk, panel.gate_stride};
    const bool accumulate = k0 > 0;
    index_t r = 0;
    for (; r + R <= rows; r += R) {
      tile_rows<T, NV, R>(out + r * ldo, ldo, a + r * lda + k0, lda, piece, kc, accumulate);
    }
    tile_remainder<T, NV, R - 1>(rows - r, out + r * ldo, ldo, a + r * lda + k0, lda, piece, kc,
                                 accumulate);
    if (K == 0) break;
  }
}

// The tile of a G-gate slice (G in 1..4 gates of slice_width units). G is a template
// argument, so a cell with more gates fails here at compile time (cell_list.hpp refuses
// them earlier, from cells.def) instead of running with a narrower tile.
template <class T, int G>
inline void gate_tile_matmul(T* out, index_t ldo, const T* a, index_t lda, index_t rows,
                             PanelView<T> panel, index_t K) {
  static_assert(G >= 1 && G <= 4, "the recurrent tiles hold 1 to 4 gates of a slice");
  constexpr int S = static_cast<int>(slice_width<T>() / lanes<T>());  // vectors per slice
  tile_matmul<T, G * S>(out, ldo, a, lda, rows, panel, K);
}

// out[r][0 : n*W] = a[r] @ group panel at slice kb (n = 1 or 2 slices, see TransposedPanel).
template <class T>
inline void transposed_tile_matmul(T* out, const T* a, index_t lda, index_t rows,
                                   const TransposedPanel<T>& q, index_t kb, index_t n) {
  constexpr int S = static_cast<int>(slice_width<T>() / lanes<T>());
  constexpr index_t W = slice_width<T>();
  if (n == 2) {
    tile_matmul<T, 2 * S>(out, 2 * W, a, lda, rows, PanelView<T>{q.group(kb), 2 * W, W}, q.C);
  } else {
    tile_matmul<T, S>(out, W, a, lda, rows, PanelView<T>{q.group(kb), W, W}, q.C);
  }
}

// Recurrence policies: how a cell's time loop gets the per-step recurrent contribution. A
// cell names its policy (`using Recurrence = ...`, sequence.hpp); the loops call only
//   pack(first, last)          once per thread, for its slices [first, last)
//   group_size(jb, last)       slices handled together from slice jb (1, or 2 for pairs)
//   product(...)               the contribution of one group of slices, every row
// so a cell whose recurrence is not a dense product (e.g. IndRNN's element-wise u * h_{t-1})
// supplies another policy with the same members and leaves the loops as they are.

// Forward: acc (B rows, stride ldacc = n*G*W) = left @ R for gates [g0, g0+G) of the panel,
// left = h_{t-1} (B, Hp) or a buffer the cell fills before the product (GRU reset_before's
// r * h_{t-1}). Row b, slice jb of the group, gate g at acc + b*ldacc + (jb - jg)*W + g*n*W.
//
// A single step (T = 1: streaming inference) reads R in place. Walking it slice by slice
// touches G lines of a new row of R per multiply-add row: 4 pages per k for an LSTM, which
// made a 1024-unit step latency-bound on TLB and cache misses (44 ms vs NumPy's 4 ms for the
// same GEMVs). Its h_{t-1} is h0, known before the loop, so single_step() computes the
// thread's whole share up front, sweeping R's rows in long contiguous runs, and product()
// hands out the result: the same FMA chains over k in order, so the same bits.
template <class T, int G_>
struct DenseRecurrence {
  static constexpr int kGates = G_;  // G: the gates of the cell's x_proj / recurrent (G, W)
  static_assert(kGates >= 1 && kGates <= 4, "the recurrent tiles hold 1 to 4 gates");
  GatePanel<T>* panel;
  const T* left = nullptr;  // null: h_{t-1}
  T* pre = nullptr;         // single step: (B, G, Hp) products, from single_step()
  index_t pre_hp = 0;

  explicit DenseRecurrence(GatePanel<T>& p, const T* left_operand = nullptr)
      : panel(&p), left(left_operand) {}

  void pack(index_t first, index_t last) { panel->pack(first, last); }
  index_t group_size(index_t jb, index_t last) const { return panel->group_size(jb, last); }

  // Whether single_step() applies: R read in place (one step) and h_{t-1} is the loop's
  // state (a cell-computed left operand such as GRU's r * h_{t-1} exists only in the step).
  bool can_precompute() const { return !panel->packed && left == nullptr; }
  // Before the team runs: product() reads the single step's values from `out` (B, G, Hp).
  void use_single_step(T* out, index_t Hp) {
    pre = out;
    pre_hp = Hp;
  }
  // Fills pre's slices [first, last) of rows [row0, row0 + rows) with h0 (rows, stride ldh)
  // @ R for every gate. Called by each thread for its share, before the step.
  void single_step(const T* h0, index_t ldh, index_t row0, index_t rows, index_t first,
                   index_t last) const {
    constexpr index_t W = slice_width<T>();
    const index_t Hp = pre_hp;
    T* out = pre;
    if (first >= last) return;
    const index_t j0 = first * W, cols = (last - first) * W;  // whole slices: H % W == 0
    for (int g = 0; g < kGates; ++g) {
      gemm_rows_in_place(rows, cols, panel->K, h0 + row0 * ldh, ldh,
                         panel->R + (panel->g0 + g) * panel->H + j0, panel->ldr,
                         out + (row0 * kGates + g) * Hp + j0, kGates * Hp);
    }
  }

  // Rows [row0, row0 + B) of the left operand (a thread's rows in a row-partitioned loop).
  void product(T* acc, index_t ldacc, const T* h_prev, index_t Hp, index_t row0, index_t B,
               index_t jg, index_t n) const {
    if (pre != nullptr) {  // single step: copy the thread's precomputed values
      constexpr index_t W = slice_width<T>();
      for (index_t b = 0; b < B; ++b) {
        for (index_t jb = jg; jb < jg + n; ++jb) {
          for (int g = 0; g < kGates; ++g) {
            copy_n(pre + ((row0 + b) * kGates + g) * pre_hp + jb * W, W,
                   acc + b * ldacc + (jb - jg) * W + g * n * W);
          }
        }
      }
      return;
    }
    const T* a = (left ? left : h_prev) + row0 * Hp;
    const PanelView<T> view = panel->group(jg, n);
    if constexpr (kGates == 1) {
      if (n == 2) {  // one-gate panel: two slices per tile
        constexpr int S = static_cast<int>(slice_width<T>() / lanes<T>());
        tile_matmul<T, 2 * S>(acc, ldacc, a, Hp, B, view, panel->K);
        return;
      }
    }
    gate_tile_matmul<T, kGates>(acc, ldacc, a, Hp, B, view, panel->K);
  }
};

// Backward: acc (B rows, stride n*W) = dGr_t @ R^T for the group of slices [kb, kb+n), over
// the columns [c0, c0+C) of R the panel holds (dGr_t row b at a + b*lda).
template <class T>
struct DenseBackRecurrence {
  TransposedPanel<T>* panel;
  const T* R;
  index_t ldr, H, c0;

  DenseBackRecurrence(TransposedPanel<T>& p, const T* R_, index_t ldr_, index_t H_, index_t c0_)
      : panel(&p), R(R_), ldr(ldr_), H(H_), c0(c0_) {}

  void pack(index_t first, index_t last) { panel->pack(R, ldr, H, c0, first, last); }
  static index_t group_size(index_t kb, index_t last) {
    return TransposedPanel<T>::group_size(kb, last);
  }
  void product(T* acc, const T* a, index_t lda, index_t B, index_t kb, index_t n) const {
    transposed_tile_matmul(acc, a, lda, B, *panel, kb, n);
  }
};

// Adds bias[0:n] to every row of M (rows x n, stride ld).
template <class T>
inline void add_row_bias(T* M, index_t rows, index_t n, index_t ld, const T* bias) {
  for (index_t r = 0; r < rows; ++r) {
    T* row = M + r * ld;
    for (index_t c = 0; c < n; ++c) row[c] += bias[c];
  }
}

}  // namespace detail
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
