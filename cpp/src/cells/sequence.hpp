// The time loops shared by the cells (internal header, compiled per ISA). A cell supplies
// only its element-wise math, on W-wide local arrays (so it vectorises), as a functor with a
// step(StepIn, StepOut) member (the interface is below), and names the policy that computes
// its recurrent contribution (recurrent_tile.hpp); the loops own masking, go_backwards, the
// output-repeat rule, states, the thread team and the BPTT bookkeeping.
//
// Threads (docs/design.md): thread p owns a range of hidden-unit slices and ALL gates of them for
// the whole sequence; it packs its slices of the recurrent weights itself (they stay in its
// cache) and writes only its own units of every state, so one barrier per step suffices
// (two for GRU reset_after=False, whose candidate needs r of every unit). Every element is
// computed by the same operations whatever the partition: results are bitwise identical for
// any thread count.
//
// Keras mask rule (docs/spec.md §3): at a masked step every state is carried unchanged and
// y repeats the previous output (zeros until the row's first kept step). In BPTT the
// gradient of a repeated output is carried back (dy_carry) to the last kept step.
//
// States inside the loops are (B, Hp) with Hp = slices * W, zero-padded, so a slice's
// element-wise code always reads and writes whole W-wide vectors.
#pragma once
#include <cstdint>

#include "recurrent_tile.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/dims.hpp"
#include "rnnkit/gemm.hpp"
#include "rnnkit/simd.hpp"
#include "rnnkit/threadpool.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace detail {

// Input time index consumed at processing step s.
inline index_t input_time(const Dims& d, const SeqOptions& o, index_t s) {
  return o.go_backwards ? d.T - 1 - s : s;
}

inline bool step_kept(const std::uint8_t* mask, index_t row) {
  return mask == nullptr || mask[row] != 0;
}

// Runs f(tid, nthreads) on the thread team (f may call team_barrier()). A cancelled kernel
// call (threadpool.hpp) leaves the time loops early; its outputs are then garbage and the
// caller discards them.
template <class F>
void run_team(int nthreads, F& f) {
  team_run(nthreads, [](void* ctx, int tid, int n) { (*static_cast<F*>(ctx))(tid, n); }, &f);
}

// Team size for a time loop. Each step every thread reads the whole h_{t-1}, half of it just
// written by other cores: a few microseconds of cache-line traffic a step, so a thread needs
// ~750 kFLOP of work per step to gain (measured: SimpleRNN B=16, H=128, 524 kFLOP a step,
// runs slower on two threads; LSTM at the same size, 2.1 MFLOP, 1.6x faster). It also needs
// a slice of units, and the call must repay waking the team: short calls stay on one thread.
// kProjected: a projected cell's step multiplies (B, P) by (P, G*H), then (B, H) by (H, P).
template <bool kProjected = false>
inline int loop_threads(const Dims& d, index_t slices) {
  const double step_flops =
      kProjected ? 2.0 * static_cast<double>(d.B) * d.P * (d.GH() + d.H)
                 : 2.0 * static_cast<double>(d.B) * d.H * d.GH();
  if (step_flops * d.T < 2e6) return 1;
  index_t n = get_num_threads();
  n = min_index(n, slices);
  n = min_index(n, max_index(1, static_cast<index_t>(step_flops / 750e3)));
  return static_cast<int>(n);
}

// Slices [first, last) owned by thread tid of n (also used for batch rows: RowRange).
struct SliceRange {
  index_t first, last;
  SliceRange(index_t slices, int tid, int n)
      : first(slices * tid / n), last(slices * (tid + 1) / n) {}
};
using RowRange = SliceRange;

// How a time loop splits its work over the team.
//   by units (default): thread p owns a range of hidden-unit slices of every batch row, keeps
//     its part of the recurrent weights in its own cache, and the team meets at a barrier
//     every step (each thread reads all of h_{t-1});
//   by rows: thread p owns batch rows [b0, b1) and every unit of them. Rows never read each
//     other, so the loop runs without a single barrier per step; every thread reads the whole
//     recurrent panel each step, so this pays only while the panel stays in a core's private
//     cache. A step of a small layer (B*H ~ 2048) is ~1 MFLOP: too little to repay a barrier
//     (a few microseconds of cache-line traffic) but plenty to split by rows.
// Either way every element is computed by the same operations: results are bitwise identical.
struct LoopPlan {
  int threads = 1;
  bool by_rows = false;
};

// Rows per thread below which a row tile (kAccumulatorRegs / gates rows) runs mostly empty.
constexpr index_t kMinRowsPerThread = 4;
// The recurrent panel (S x G*H values) a by-rows loop may stream from every core's private
// cache each step (L2 is 1-2 MiB on current x86 server cores, 256 KiB-1.25 MiB on clients).
constexpr double kRowPanelBytes = 512.0 * 1024;
// Below this many FLOPs a step, a barrier (a few microseconds) costs more than reading the
// whole panel instead of a share of it.
constexpr double kRowStepFlops = 3e6;

// Two-phase and projected cells keep the split by units: their second phase reads every
// unit of a row, which the by-units loops hand over at a barrier.
template <class Cell, class T>
LoopPlan loop_plan(const Dims& d, index_t slices) {
  constexpr bool kProj = Cell::kProjected;
  LoopPlan plan;
  plan.threads = loop_threads<kProj>(d, slices);
  if constexpr (Cell::kTwoPhase || kProj) return plan;  // their phases partition by units
  const double step_flops = 2.0 * static_cast<double>(d.B) * d.H * d.GH();
  if (step_flops * d.T < 2e6) return plan;
  const double panel_bytes = static_cast<double>(sizeof(T)) * d.H * d.GH();
  const index_t by_rows =
      min_index(static_cast<index_t>(get_num_threads()), d.B / kMinRowsPerThread);
  // At equal thread counts the split by units keeps half the panel per core and wins once a
  // step is large enough to hide its barrier (measured on 2 cores: LSTM B=32, H=128, 4.2
  // MFLOP a step, ran ~5% faster by units; B=16, H=128, 2.1 MFLOP, ~7% faster by rows).
  const bool rows_win =
      by_rows > plan.threads || (by_rows == plan.threads && step_flops < kRowStepFlops);
  if (panel_bytes <= kRowPanelBytes && by_rows > 1 && rows_win) {
    plan.threads = static_cast<int>(by_rows);
    plan.by_rows = true;
  }
  return plan;
}

// A thread's share of a time loop under `plan`: slices [units) of rows [rows) (by units:
// its slices of every row; by rows: every slice of its rows).
struct LoopShare {
  SliceRange units;
  RowRange rows;
  LoopShare(const LoopPlan& plan, index_t slices, index_t B, int tid, int n)
      : units(plan.by_rows ? SliceRange(slices, 0, 1) : SliceRange(slices, tid, n)),
        rows(plan.by_rows ? RowRange(B, tid, n) : RowRange(B, 0, 1)) {}
};

// Packs the cell's and the recurrence's panels before a loop: by units each thread packs its
// own ranges; by rows the panels are shared, so thread 0 packs them all (with the slice
// groups every thread then walks) and the others wait for it once. True: cancelled.
template <class Cell, class Rec>
bool pack_panels(const LoopPlan& plan, int tid, index_t slices, Cell& cell, Rec& rec,
                 SliceRange cell_slices, SliceRange rec_slices) {
  if (plan.by_rows) {
    if (tid == 0) {
      cell.pack(0, slices);
      rec.pack(0, slices);
    }
    return team_barrier();
  }
  cell.pack(cell_slices.first, cell_slices.last);
  rec.pack(rec_slices.first, rec_slices.last);
  return false;
}

// seen[b*T + s]: row b kept some step at or before processing step s (1) or not (0).
inline void seen_flags(std::uint8_t* seen, const Dims& d, const SeqOptions& opt,
                       const std::uint8_t* mask) {
  for (index_t b = 0; b < d.B; ++b) {
    std::uint8_t any = 0;
    for (index_t s = 0; s < d.T; ++s) {
      any = static_cast<std::uint8_t>(any | step_kept(mask, b * d.T + input_time(d, opt, s)));
      seen[b * d.T + s] = any;
    }
  }
}

// (B, H) -> zero-padded (B, Hp), or zeros when src is null.
template <class T>
inline void load_padded(T* dst, const T* src, index_t B, index_t H, index_t Hp) {
  for (index_t b = 0; b < B; ++b) {
    for (index_t j = 0; j < Hp; ++j) dst[b * Hp + j] = (src && j < H) ? src[b * H + j] : T(0);
  }
}

template <class T>
inline void store_unpadded(T* dst, const T* src, index_t B, index_t H, index_t Hp) {
  for (index_t b = 0; b < B; ++b) copy_n(src + b * Hp, H, dst + b * H);
}

// W-wide local copy of n <= W values, zero tail.
template <class T>
inline void load_slice(T* dst, const T* src, index_t n) {
  constexpr index_t W = slice_width<T>(), V = lanes<T>();
  if (n == W) {  // every slice but the last: whole vectors
    for (index_t i = 0; i < W; i += V) store(dst + i, load(src + i));
    return;
  }
  for (index_t i = 0; i < n; ++i) dst[i] = src[i];
  for (index_t i = n; i < W; ++i) dst[i] = T(0);
}

// The first n <= W values of a W-wide local slice to memory.
template <class T>
inline void store_slice(T* dst, const T* src, index_t n) {
  constexpr index_t W = slice_width<T>(), V = lanes<T>();
  if (n == W) {
    for (index_t i = 0; i < W; i += V) store(dst + i, load(src + i));
    return;
  }
  for (index_t i = 0; i < n; ++i) dst[i] = src[i];
}

// ---- The cell interface -------------------------------------------------------------------
// A cell is a small functor struct per direction. Forward:
//   struct MyStep : ForwardCell {
//     using Recurrence = DenseRecurrence<T, G>;   // recurrent_tile.hpp: the policy
//     void step(const StepIn<T>& in, const StepOut<T>& out) const;  // one slice, one row
//   };
// optionally with pack(first, last) (the thread packs its slices of the cell's own panels)
// and, with kTwoPhase, phase1(first, last, t, h_prev): a pass over the thread's slices before
// the product, followed by a barrier (GRU reset_before). Backward likewise (BackwardCell):
//   static constexpr int kGates; using Recurrence = DenseBackRecurrence<T>;
//   void step(const BackStepIn<T>& in, const BackStepOut<T>& out) const;
// with optional pack() and, with kTwoPhase, mid(first, last, t, dh) between the barrier after
// the element-wise pass and the recurrent product. A step reads only the fields it needs.
// Every array is W-wide per gate (W = slice_width<T>()), zero-padded past the last unit.
//
// Projected cells (cells.def `proj`, LSTMP): with kProjected = true, the state h the loops
// carry, output and feed to the recurrent product is r_t = m_t @ W_hr, P wide (Dims::P),
// where m_t (H wide) is what the step writes to out.h_new. The cell then has a member `proj`,
// a one-gate policy: forward DenseRecurrence<T, 1> over W_hr (H rows, P units), backward
// DenseBackRecurrence<T> over W_hr (dm_t = dr_t @ W_hr^T). Each step gets a second team-wide
// phase, partitioned over P slices (forward) or H slices (backward), behind its own barrier:
//   forward:  [element-wise, H slices: m_t, c_t] barrier [r_t = m_t W_hr, mask, y] barrier
//   backward: [dr_t = dy + dh + carry, P slices] barrier [dm_t = dr_t W_hr^T, element-wise
//             with dh := dm_t, H slices] barrier [dh += dG_t R^T, P slices]
// in.h_prev is null for them (h_{t-1} is not H wide); the cache keeps h_prev = r_{t-1} (P
// wide) and m_t; backward writes dr_t of every step to BackwardSpec::dR (zero when masked).
// Cells without it compile to the loops without these phases (if constexpr).

// What the forward loop hands a cell's step for one slice [j0, j0+W) of one row.
template <class T>
struct StepIn {
  index_t row = 0;               // b*T + t: the row of xp and of the training cache
  index_t b = 0;                 // batch row (row of the (B, Hp) states and cell buffers)
  index_t j0 = 0;                // first unit of the slice
  const T* x_proj = nullptr;     // (G, W) input projection (+ input bias), from gate x_gate0
  const T* recurrent = nullptr;  // (G, W) the Recurrence policy's product for the same gates
  const T* h_prev = nullptr;     // (W) h_{t-1}; null for projected cells
  const T* c_prev = nullptr;     // (W) c_{t-1}; zeros for cells without a cell state
};

// Where a forward step writes.
template <class T>
struct StepOut {
  T* h_new = nullptr;  // (W)
  T* c_new = nullptr;  // (W), ignored without a cell state
  T* gates = nullptr;  // (d.G, W) every gate, in the cache's form (activations.hpp keep())
  T* aux = nullptr;    // (W) the cell's extra cache array (kCacheAux), zeros if unused
};

// What the backward loop hands a cell's step for one kept slice of one row.
template <class T>
struct BackStepIn {
  index_t row = 0, b = 0, j0 = 0;  // as StepIn
  const T* dh = nullptr;           // (W) dL/dh_t: dh carried + dy (+ dy of repeated outputs)
  const T* gates = nullptr;        // (G, W) cached gates
  const T* h_prev = nullptr;       // (W) cached h_{t-1}
  const T* c_prev = nullptr;       // (W) cached c_{t-1} (h_prev's values without one)
  const T* aux = nullptr;          // (W) cached aux (h_prev's values without one)
};

// Where a backward step writes.
template <class T>
struct BackStepOut {
  T* dgates = nullptr;      // (G, W) pre-activation gradients, input side (dG)
  T* dgates_rec = nullptr;  // (G, W) recurrent side (dGr), when the spec has one; zeros
  T* dh_direct = nullptr;   // (W) the part of dL/dh_{t-1} that bypasses the product
};

// Defaults of the optional forward / backward hooks (a cell's own member hides them).
struct ForwardCell {
  static constexpr bool kTwoPhase = false;
  static constexpr bool kProjected = false;
  void pack(index_t, index_t) {}
};
struct BackwardCell {
  static constexpr bool kTwoPhase = false;
  static constexpr bool kProjected = false;
  void pack(index_t, index_t) {}
};

// Everything a forward loop needs besides the cell and its recurrence. Set by name:
//   ForwardSpec<T> sp; sp.dims = &d; sp.opt = &opt; sp.xp = xp; ...
template <class T>
struct ForwardSpec {
  const Dims* dims = nullptr;
  const SeqOptions* opt = nullptr;
  const std::uint8_t* mask = nullptr;
  const T* xp = nullptr;                  // (B*T, G*H) input projection (+ input bias)
  const TrainCache<T>* cache = nullptr;   // null: inference
  T* y = nullptr;                         // (B, T, S) (S = Dims::S(): H, or P projected)
  T* h_last = nullptr;                    // (B, S)
  T* c_last = nullptr;                    // (B, H) or null (no cell state)
  const T* h0 = nullptr;                  // nullable
  const T* c0 = nullptr;                  // nullable
  int x_gate0 = 0;                        // first gate of xp the recurrence's gates line up with
};

// A ForwardSpec with the fields every cell takes straight from its call: dims, options,
// mask, the training cache, the outputs y / h_last (/ c_last) and the initial states. The
// cell then sets what is its own: xp (its input projection), c_last/c0, x_gate0.
template <class T>
ForwardSpec<T> call_forward_spec(const Dims& d, const SeqOptions& opt, const SeqInputs<T>& in,
                                 const TrainCache<T>* cache, T* y, T* h_last) {
  ForwardSpec<T> sp;
  sp.dims = &d;
  sp.opt = &opt;
  sp.mask = in.mask;
  sp.cache = cache;
  sp.y = y;
  sp.h_last = h_last;
  sp.h0 = in.h0;
  return sp;
}

// Forward time loop: per step, rec.product() for each group of the thread's slices, then
// cell.step() for every slice and row of the group; the loop applies the mask, writes y, the
// states and the training cache.
template <class T, class Cell>
void forward_loop(const ForwardSpec<T>& sp, Cell& cell, typename Cell::Recurrence& rec) {
  constexpr index_t W = slice_width<T>();
  constexpr int G = Cell::Recurrence::kGates;
  constexpr bool kProj = Cell::kProjected;
  static_assert(G >= 1 && G <= 4, "x, acc and gates below hold at most 4 gates of a slice");
  const Dims& d = *sp.dims;
  const index_t B = d.B, Tn = d.T, H = d.H, GH = d.GH();
  const index_t slices = slice_count<T>(H), Hp = slices * W, NT = G * W;
  // h: S wide in Sp-padded rows (S = H, Sp = Hp unless projected).
  const index_t S = kProj ? d.S() : H, sslices = kProj ? slice_count<T>(S) : slices;
  const index_t Sp = kProj ? sslices * W : Hp;
  const bool has_c = sp.c_last != nullptr;

  // h (2 x B*Sp), c (2 x B*Hp), and m_t (B*Hp) when projected; as (has_c ? 4 : 2) * B*Hp
  // without a projection.
  Buffer<T> states(kProj ? 2 * B * Sp + static_cast<index_t>(has_c ? 3 : 1) * B * Hp
                         : static_cast<index_t>(has_c ? 4 : 2) * B * Hp);
  T* h_buf[2] = {states.get(), states.get() + B * Sp};
  T* c_buf[2] = {has_c ? states.get() + 2 * B * Sp : nullptr,
                 has_c ? states.get() + 2 * B * Sp + B * Hp : nullptr};
  T* m_buf = nullptr;  // m_t (projected)
  if constexpr (kProj) m_buf = states.get() + 2 * B * Sp + (has_c ? 2 : 0) * B * Hp;
  load_padded(h_buf[0], sp.h0, B, S, Sp);
  if (has_c) load_padded(c_buf[0], sp.c0, B, H, Hp);
  Buffer<std::uint8_t> seen(B * Tn);
  seen_flags(seen.get(), d, *sp.opt, sp.mask);
  const LoopPlan plan = loop_plan<Cell, T>(d, slices);
  // Every thread's products for one slice group, all rows. Allocated here: nothing may throw
  // inside the team (an exception on a worker would terminate the process).
  Buffer<T> acc_all(static_cast<index_t>(plan.threads) * B * 2 * NT);
  // A single step's whole recurrent product (B, G, Hp), computed up front (recurrent_tile.hpp).
  const bool precompute = Tn == 1 && rec.can_precompute();
  Buffer<T> single_step(precompute ? B * G * Hp : 0);
  if (precompute) rec.use_single_step(single_step.get(), Hp);

  auto body = [&](int tid, int n) {
    const LoopShare share(plan, slices, B, tid, n);
    const SliceRange mine = share.units;
    const RowRange rows = share.rows;
    const SliceRange mine_s = kProj ? SliceRange(sslices, tid, n) : mine;  // slices of r
    if (pack_panels(plan, tid, slices, cell, rec, mine, mine)) return;
    if constexpr (kProj) cell.proj.pack(mine_s.first, mine_s.last);
    if (precompute) {  // the thread's own rows and slices: read only by itself
      rec.single_step(h_buf[0], Sp, rows.first, rows.last - rows.first, mine.first, mine.last);
    }
    T* const acc_base = acc_all.get() + static_cast<index_t>(tid) * B * 2 * NT;
    for (index_t s = 0; s < Tn; ++s) {
      const index_t t = input_time(d, *sp.opt, s);
      const T* h_cur = h_buf[s & 1];
      T* h_nxt = h_buf[(s + 1) & 1];
      const T* c_cur = c_buf[s & 1];
      T* c_nxt = c_buf[(s + 1) & 1];
      // Every thread gets the same answer from team_barrier() (true: the call was
      // cancelled), so all of them leave the loop at the same barrier.
      if constexpr (Cell::kTwoPhase) {
        cell.phase1(mine.first, mine.last, t, h_cur);
        if (team_barrier()) break;
      }
      for (index_t jg = mine.first; jg < mine.last;) {
        const index_t n = rec.group_size(jg, mine.last), ldacc = n * NT;
        rec.product(acc_base, ldacc, h_cur, Sp, rows.first, rows.last - rows.first, jg, n);
        for (index_t jb = jg; jb < jg + n; ++jb) {
          const index_t j0 = jb * W, w = min_index(W, H - j0);
          for (index_t b = rows.first; b < rows.last; ++b) {
            const index_t row = b * Tn + t;
            alignas(64) T x[4 * W], hn[W], gates[4 * W];
            alignas(64) T aux[W] = {};  // not every cell fills it
            alignas(64) T cn[W] = {};  // stays zero for cells without a cell state
            const T* xr = sp.xp + row * GH;
            for (int g = 0; g < G; ++g) {
              load_slice(x + g * W, xr + (sp.x_gate0 + g) * H + j0, w);
            }
            const T* hp = kProj ? nullptr : h_cur + b * Hp + j0;
            const T* cp = has_c ? c_cur + b * Hp + j0 : cn;  // zeros without a cell state
            StepIn<T> in;
            in.row = row;
            in.b = b;
            in.j0 = j0;
            in.x_proj = x;
            in.recurrent = acc_base + (b - rows.first) * ldacc + (jb - jg) * W;
            in.h_prev = hp;
            in.c_prev = cp;
            StepOut<T> out;
            out.h_new = hn;
            out.c_new = cn;
            out.gates = gates;
            out.aux = aux;
            cell.step(in, out);
            const bool keep = step_kept(sp.mask, row);
            if constexpr (kProj) {  // m_t for the projection phase (masked rows: unused)
              T* ms = m_buf + b * Hp + j0;
              for (index_t i = 0; i < W; ++i) ms[i] = hn[i];
            } else {
              T* hs = h_nxt + b * Hp + j0;
              for (index_t i = 0; i < W; ++i) hs[i] = keep ? hn[i] : hp[i];
            }
            if (has_c) {
              T* cs = c_nxt + b * Hp + j0;
              for (index_t i = 0; i < W; ++i) cs[i] = keep ? cn[i] : cp[i];
            }
            if constexpr (!kProj) {
              T* yr = sp.y + (b * Tn + s) * H + j0;
              if (keep) {
                store_slice(yr, static_cast<const T*>(hn), w);
              } else if (seen[b * Tn + s]) {
                store_slice(yr, hp, w);
              } else {
                fill_n(yr, w, T(0));
              }
            }
            if (sp.cache) {
              T* gr = sp.cache->gates + row * GH + j0;
              for (int g = 0; g < d.G; ++g) {
                store_slice(gr + g * H, static_cast<const T*>(gates + g * W), w);
              }
              if constexpr (kProj) {
                store_slice(sp.cache->m + row * H + j0, static_cast<const T*>(hn), w);
              } else {
                store_slice(sp.cache->h_prev + row * H + j0, hp, w);
              }
              if (sp.cache->c_prev) store_slice(sp.cache->c_prev + row * H + j0, cp, w);
              if (sp.cache->aux) store_slice(sp.cache->aux + row * H + j0, static_cast<const T*>(aux), w);
            }
          }
        }
        jg += n;
      }
      if constexpr (kProj) {
        // m_t of every unit complete; r_t = m_t @ W_hr for the thread's slices of r.
        if (team_barrier()) break;
        for (index_t pg = mine_s.first; pg < mine_s.last;) {
          const index_t n = cell.proj.group_size(pg, mine_s.last), ldacc = n * W;
          cell.proj.product(acc_base, ldacc, m_buf, Hp, 0, B, pg, n);
          for (index_t pb = pg; pb < pg + n; ++pb) {
            const index_t p0 = pb * W, w = min_index(W, S - p0);
            for (index_t b = 0; b < B; ++b) {
              const index_t row = b * Tn + t;
              const bool keep = step_kept(sp.mask, row);
              const T* rn = acc_base + b * ldacc + (pb - pg) * W;
              const T* rp = h_cur + b * Sp + p0;
              T* rs = h_nxt + b * Sp + p0;
              for (index_t i = 0; i < W; ++i) rs[i] = keep ? rn[i] : rp[i];
              T* yr = sp.y + (b * Tn + s) * S + p0;
              if (keep) {
                store_slice(yr, rn, w);
              } else if (seen[b * Tn + s]) {
                store_slice(yr, rp, w);
              } else {
                fill_n(yr, w, T(0));
              }
              if (sp.cache) store_slice(sp.cache->h_prev + row * S + p0, rp, w);
            }
          }
          pg += n;
        }
      }
      // By rows no thread reads another's rows: only the cancel check, no barrier.
      if (plan.by_rows ? team_cancel_point() : team_barrier()) break;
    }
  };
  run_team(plan.threads, body);

  store_unpadded(sp.h_last, h_buf[Tn & 1], B, S, Sp);
  if (has_c) store_unpadded(sp.c_last, c_buf[Tn & 1], B, H, Hp);
}

// Everything a backward loop needs besides the cell and its recurrence; set by name.
template <class T>
struct BackwardSpec {
  const Dims* dims = nullptr;
  const SeqOptions* opt = nullptr;
  const std::uint8_t* mask = nullptr;
  const TrainCache<T>* cache = nullptr;
  const T* dy = nullptr;       // (B, T, S) or null (S = Dims::S(): H, or P projected)
  const T* dh_last = nullptr;  // (B, S) or null
  T* dh0 = nullptr;            // (B, S) out
  T* dG = nullptr;             // (B*T, G*H) out: input-side pre-activation gradients
  T* dGr = nullptr;            // (B*T, G*H) out: recurrent side, or null (= dG)
  T* dR = nullptr;             // projected cells: (B*T, P) out: dL/dr_t, zero when masked
};

// A BackwardSpec with the fields every cell takes straight from its call: dims, options,
// mask, the training cache, the upstream gradients and dh0. The cell then sets dG (and dGr).
template <class T>
BackwardSpec<T> call_backward_spec(const Dims& d, const SeqOptions& opt, const SeqInputs<T>& in,
                                   const TrainCache<T>& cache, const SeqUpstream<T>& up,
                                   const SeqGrads<T>& grads) {
  BackwardSpec<T> sp;
  sp.dims = &d;
  sp.opt = &opt;
  sp.mask = in.mask;
  sp.cache = &cache;
  sp.dy = up.dy;
  sp.dh_last = up.dh_last;
  sp.dh0 = grads.dh0;
  return sp;
}

// Reverse (BPTT) time loop. Per step, for the thread's slices and every row:
//   kept row:   dh_total = dh + dy_carry + dy[b, s]; cell.step() fills dG (and dGr) for the
//               slice and returns in dh_direct the part of dL/dh_{t-1} that bypasses the
//               recurrent product;
//   masked row: dG = 0, dh passes on unchanged, dy joins dy_carry.
// Then barrier, cell.mid(first, last, t, dh) (+ barrier) when Cell::kTwoPhase, and
//   dh[kept rows, slice] += rec.product(dGr rows of step t)   (dense: dGr @ R^T[:, slice]).
// dh is (B, Hp) padded, dh_last on entry and dh0 at the end; cell-specific states (LSTM
// dc) live in the cell's functor, in the same padded layout.
template <class T, class Cell>
void backward_loop(const BackwardSpec<T>& sp, Cell& cell, typename Cell::Recurrence& rec) {
  constexpr index_t W = slice_width<T>();
  constexpr int G = Cell::kGates;
  constexpr bool kProj = Cell::kProjected;
  static_assert(G >= 1 && G <= 4, "gates and dg below hold at most 4 gates of a slice");
  const Dims& d = *sp.dims;
  const index_t B = d.B, Tn = d.T, H = d.H, GH = d.GH();
  const index_t slices = slice_count<T>(H), Hp = slices * W;
  // dh (dL/dh, or dL/dr when projected): S wide in Sp-padded rows (S = H unless projected).
  const index_t S = kProj ? d.S() : H, sslices = kProj ? slice_count<T>(S) : slices;
  const index_t Sp = kProj ? sslices * W : Hp;
  const TrainCache<T>& cache = *sp.cache;
  T* dGr = sp.dGr ? sp.dGr : sp.dG;
  Buffer<T> dh_buf(B * Sp), carry(B * Sp);
  Buffer<T> dm_buf;  // dL/dm_t (projected)
  if constexpr (kProj) dm_buf.reset(B * Hp);
  T* dh = dh_buf.get();
  load_padded(dh, sp.dh_last, B, S, Sp);
  fill_n(carry.get(), B * Sp, T(0));
  const LoopPlan plan = loop_plan<Cell, T>(d, slices);
  Buffer<T> acc_all(static_cast<index_t>(plan.threads) * B * 2 * W);  // see forward_loop

  auto body = [&](int tid, int n) {
    const LoopShare share(plan, slices, B, tid, n);
    const SliceRange mine = share.units;
    const RowRange rows = share.rows;
    const SliceRange mine_s = kProj ? SliceRange(sslices, tid, n) : mine;  // slices of dh
    if (pack_panels(plan, tid, slices, cell, rec, mine, mine_s)) return;
    if constexpr (kProj) cell.proj.pack(mine.first, mine.last);
    T* const acc_base = acc_all.get() + static_cast<index_t>(tid) * B * 2 * W;
    for (index_t s = Tn - 1; s >= 0; --s) {
      const index_t t = input_time(d, *sp.opt, s);
      if constexpr (kProj) {
        // dr_t = dh + carry + dy on kept rows (dR row, dh restarts from 0); masked rows: dR
        // row 0, dh passes on, dy joins the carry. The thread's slices of r.
        for (index_t pb = mine_s.first; pb < mine_s.last; ++pb) {
          const index_t p0 = pb * W, w = min_index(W, S - p0);
          for (index_t b = 0; b < B; ++b) {
            const index_t row = b * Tn + t;
            T* dr_row = sp.dR + row * S + p0;
            T* dh_row = dh + b * Sp + p0;
            T* carry_row = carry.get() + b * Sp + p0;
            const T* dy_row = sp.dy ? sp.dy + (b * Tn + s) * S + p0 : nullptr;
            if (!step_kept(sp.mask, row)) {
              fill_n(dr_row, w, T(0));
              if (dy_row) {
                for (index_t i = 0; i < w; ++i) carry_row[i] += dy_row[i];
              }
              continue;
            }
            alignas(64) T total[W];
            load_slice(total, dy_row ? dy_row : carry_row, dy_row ? w : 0);
            for (index_t i = 0; i < W; ++i) total[i] += dh_row[i] + carry_row[i];
            store_slice(dr_row, static_cast<const T*>(total), w);
            for (index_t i = 0; i < W; ++i) {
              dh_row[i] = T(0);
              carry_row[i] = T(0);
            }
          }
        }
        // dr_t of every unit complete; dm_t = dr_t @ W_hr^T for the thread's slices of m.
        if (team_barrier()) break;
        const T* dr = sp.dR + t * S;  // row b at dr + b*T*S
        for (index_t kb = mine.first; kb < mine.last;) {
          const index_t n = cell.proj.group_size(kb, mine.last), nw = n * W;
          cell.proj.product(acc_base, dr, Tn * S, B, kb, n);
          for (index_t b = 0; b < B; ++b) copy_n(acc_base + b * nw, nw, dm_buf.get() + b * Hp + kb * W);
          kb += n;
        }
      }
      for (index_t jb = mine.first; jb < mine.last; ++jb) {
        const index_t j0 = jb * W, w = min_index(W, H - j0);
        for (index_t b = rows.first; b < rows.last; ++b) {
          const index_t row = b * Tn + t;
          T* dgx_row = sp.dG + row * GH + j0;
          T* dgr_row = sp.dGr ? sp.dGr + row * GH + j0 : nullptr;
          // Projected: dh (P wide) and carry were handled above; these stay unused.
          T* dh_row = kProj ? nullptr : dh + b * Hp + j0;
          T* carry_row = kProj ? nullptr : carry.get() + b * Hp + j0;
          const T* dy_row = !kProj && sp.dy ? sp.dy + (b * Tn + s) * H + j0 : nullptr;
          if (!step_kept(sp.mask, row)) {
            for (int g = 0; g < G; ++g) {
              fill_n(dgx_row + g * H, w, T(0));
              if (dgr_row) fill_n(dgr_row + g * H, w, T(0));
            }
            if constexpr (!kProj) {
              if (dy_row) {
                for (index_t i = 0; i < w; ++i) carry_row[i] += dy_row[i];
              }
            }
            continue;
          }
          alignas(64) T total[W], gates[4 * W], hp[W], cp[W], dg[4 * W], direct[W];
          alignas(64) T aux[W] = {}, dgr[4 * W] = {};  // not every cell fills these
          if constexpr (kProj) {
            load_slice(total, dm_buf.get() + b * Hp + j0, W);  // dL/dm_t
          } else {
            load_slice(total, dy_row ? dy_row : carry_row, dy_row ? w : 0);
            for (index_t i = 0; i < W; ++i) total[i] += dh_row[i] + carry_row[i];
          }
          const T* gr = cache.gates + row * GH + j0;
          for (int g = 0; g < G; ++g) load_slice(gates + g * W, gr + g * H, w);
          if constexpr (kProj) {  // h_prev is r_{t-1}, P wide: no H slice of it
            fill_n(hp, W, T(0));
          } else {
            load_slice(hp, cache.h_prev + row * H + j0, w);
          }
          load_slice(cp, cache.c_prev ? cache.c_prev + row * H + j0 : hp, cache.c_prev ? w : 0);
          load_slice(aux, cache.aux ? cache.aux + row * H + j0 : hp, cache.aux ? w : 0);
          BackStepIn<T> in;
          in.row = row;
          in.b = b;
          in.j0 = j0;
          in.dh = total;
          in.gates = gates;
          in.h_prev = hp;
          in.c_prev = cp;
          in.aux = aux;
          BackStepOut<T> out;
          out.dgates = dg;
          out.dgates_rec = dgr;
          out.dh_direct = direct;
          cell.step(in, out);
          for (int g = 0; g < G; ++g) {
            store_slice(dgx_row + g * H, static_cast<const T*>(dg + g * W), w);
            if (dgr_row) store_slice(dgr_row + g * H, static_cast<const T*>(dgr + g * W), w);
          }
          if constexpr (!kProj) {
            for (index_t i = 0; i < W; ++i) {
              dh_row[i] = direct[i];
              carry_row[i] = T(0);
            }
          }
        }
      }
      // dG rows of step t complete (by rows: the thread's own, no barrier needed). A true
      // answer (cancelled) is the same on every thread.
      if (!plan.by_rows && team_barrier()) break;
      if constexpr (Cell::kTwoPhase) {
        cell.mid(mine.first, mine.last, t, dh);
        if (team_barrier()) break;
      }
      const T* a = dGr + t * GH;  // row b at a + b*T*GH
      for (index_t kb = mine_s.first; kb < mine_s.last;) {
        const index_t n = rec.group_size(kb, mine_s.last), nw = n * W;
        rec.product(acc_base, a + rows.first * Tn * GH, Tn * GH, rows.last - rows.first, kb, n);
        for (index_t b = rows.first; b < rows.last; ++b) {
          if (!step_kept(sp.mask, b * Tn + t)) continue;
          T* dh_row = dh + b * Sp + kb * W;
          const T* ar = acc_base + (b - rows.first) * nw;
          for (index_t i = 0; i < nw; ++i) dh_row[i] += ar[i];
        }
        kb += n;
      }
      // No barrier here: the next step writes other dG rows and reads only its own units.
      if (plan.by_rows && team_cancel_point()) break;
    }
  };
  run_team(plan.threads, body);
  store_unpadded(sp.dh0, dh, B, S, Sp);
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
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
