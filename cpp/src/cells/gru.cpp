// GRU forward and BPTT (Keras gate order [z | r | h]), both Keras variants:
//   reset_after=True  (bias (2, 3H) = [b_in; b_rec]):
//       [xz xr xh] = x_t K + b_in,  [rz rr rh] = h_{t-1} R + b_rec
//       z = σ(xz + rz),  r = σ(xr + rr),  hh = tanh(xh + r * rh)
//   reset_after=False (bias (3H,)):
//       z = σ(xz + h R_z),  r = σ(xr + h R_r),  hh = tanh(xh + (r * h_{t-1}) R_h)
//   h_t = z h_{t-1} + (1 - z) hh
// reset_after=False needs r of every unit before the candidate's product, so its step runs
// in two phases (two barriers once the loop is threaded).
#include <algorithm>
#include <vector>

#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/gemm.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace {

using namespace detail;

template <class T>
void gru_forward_reset_after(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                             const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  constexpr index_t W = kSliceWidth;
  const index_t H = d.H, GH = d.GH();
  const T* b_rec = in.bias ? in.bias + GH : nullptr;
  T* xp = work;  // (B*T, 3H) = x K + b_in
  input_projection(xp, d, in.x, in.kernel, in.bias);
  const GatePanel<T> panel(in.recurrent_kernel, GH, H, H, 0, 3);

  auto cell = [&](index_t row, index_t, index_t j, const T* acc, T hp, T, T& hn, T&) {
    const T* xr = xp + row * GH;
    const T rz = acc[0] + (b_rec ? b_rec[j] : T(0));
    const T rr = acc[W] + (b_rec ? b_rec[H + j] : T(0));
    const T rh = acc[2 * W] + (b_rec ? b_rec[2 * H + j] : T(0));
    const T z = sigmoid(xr[j] + rz);
    const T r = sigmoid(xr[H + j] + rr);
    const T hh = tanh_act(xr[2 * H + j] + r * rh);
    hn = z * hp + (T(1) - z) * hh;
    if (cache) {
      T* gr = cache->gates + row * GH;
      gr[j] = z;
      gr[H + j] = r;
      gr[2 * H + j] = hh;
      cache->h_prev[row * H + j] = hp;
      cache->aux[row * H + j] = rh;
    }
  };
  forward_loop(d, opt, in.mask, panel, y, h_last, static_cast<T*>(nullptr), cell);
}

template <class T>
void gru_forward_reset_before(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                              const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  constexpr index_t W = kSliceWidth, BB = kBatchBlock;
  const index_t H = d.H, GH = d.GH(), Tn = d.T;
  T* xp = work;  // (B*T, 3H) = x K + b
  input_projection(xp, d, in.x, in.kernel, in.bias);
  const GatePanel<T> panel_zr(in.recurrent_kernel, GH, H, H, 0, 2);
  const GatePanel<T> panel_h(in.recurrent_kernel, GH, H, H, 2, 1);
  // Per batch block: z, r and r * h_{t-1} of every unit, (BB, H) each.
  std::vector<T> z_blk(static_cast<size_t>(BB * H)), r_blk(z_blk.size()), rh_blk(z_blk.size());
  alignas(64) T acc[BB * 2 * W];

  // Phase 1 of a block: update and reset gates, then the reset state r * h_{t-1}, which is
  // the left operand of the candidate's product (phase 2, run by forward_loop).
  auto phase1 = [&](index_t b0, index_t nb, index_t t, const T* h_cur,
                    index_t) -> std::pair<const T*, index_t> {
    for (index_t jb = 0; jb < slice_count(H); ++jb) {
      const index_t j0 = jb * W, w = std::min(W, H - j0);
      tile_matmul<T, 2 * W>(acc, h_cur + b0 * H, H, nb, panel_zr.slice(jb), H);
      for (index_t bb = 0; bb < nb; ++bb) {
        const T* xr = xp + ((b0 + bb) * Tn + t) * GH;
        for (index_t jj = 0; jj < w; ++jj) {
          const index_t j = j0 + jj;
          const T z = sigmoid(xr[j] + acc[bb * 2 * W + jj]);
          const T r = sigmoid(xr[H + j] + acc[bb * 2 * W + W + jj]);
          z_blk[bb * H + j] = z;
          r_blk[bb * H + j] = r;
          rh_blk[bb * H + j] = r * h_cur[(b0 + bb) * H + j];
        }
      }
    }
    return {rh_blk.data(), H};
  };
  auto cell = [&](index_t row, index_t b, index_t j, const T* acc, T hp, T, T& hn, T&) {
    const index_t bb = b % BB;  // blocks start at multiples of BB
    const T z = z_blk[bb * H + j];
    const T hh = tanh_act(xp[row * GH + 2 * H + j] + acc[0]);
    hn = z * hp + (T(1) - z) * hh;
    if (cache) {
      T* gr = cache->gates + row * GH;
      gr[j] = z;
      gr[H + j] = r_blk[bb * H + j];
      gr[2 * H + j] = hh;
      cache->h_prev[row * H + j] = hp;
      cache->aux[row * H + j] = rh_blk[bb * H + j];
    }
  };
  forward_loop(d, opt, in.mask, panel_h, y, h_last, static_cast<T*>(nullptr), cell, phase1);
}

template <class T>
void gru_backward_reset_after(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                              const SeqInputs<T>& in, const TrainCache<T>& cache,
                              const SeqUpstream<T>& up, T* work) {
  const index_t H = d.H, GH = d.GH(), rows = d.rows();
  // The candidate's gradient differs between the input side (d xh) and the recurrent side
  // (d rh = d xh * r), so the two sides keep separate dG matrices, (B*T, 3H) each.
  T* dGx = work;
  T* dGr = work + rows * GH;
  T* dh = grads.dh0;
  copy_or_zero(dh, up.dh_last, d.B * H);
  const TransposedPanel<T> rt(in.recurrent_kernel, GH, H, 0, GH);

  auto cell = [&](index_t row, index_t, index_t j, T dh_total) -> T {
    const T* gr = cache.gates + row * GH;
    const T z = gr[j], r = gr[H + j], hh = gr[2 * H + j];
    const T hp = cache.h_prev[row * H + j];
    const T rh = cache.aux[row * H + j];
    const T dz = dh_total * (hp - hh) * dsigmoid_from_out(z);
    const T dhh = dh_total * (T(1) - z) * dtanh_from_out(hh);
    const T dr = dhh * rh * dsigmoid_from_out(r);
    T* gx = dGx + row * GH;
    T* grr = dGr + row * GH;
    gx[j] = grr[j] = dz;
    gx[H + j] = grr[H + j] = dr;
    gx[2 * H + j] = dhh;
    grr[2 * H + j] = dhh * r;
    return dh_total * z;
  };
  auto zero_row = [&](index_t row) {
    std::fill(dGx + row * GH, dGx + (row + 1) * GH, T(0));
    std::fill(dGr + row * GH, dGr + (row + 1) * GH, T(0));
  };
  backward_loop(d, opt, in.mask, rt, static_cast<const T*>(dGr), GH, up.dy, dh, cell,
                zero_row);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dGx);
  gemm(Trans::Yes, Trans::No, H, GH, rows, cache.h_prev, H, dGr, GH, T(0), grads.drecurrent,
       GH);
  if (grads.dbias) {
    column_sums(grads.dbias, dGx, rows, GH, GH);
    column_sums(grads.dbias + GH, dGr, rows, GH, GH);
  }
}

template <class T>
void gru_backward_reset_before(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                               const SeqInputs<T>& in, const TrainCache<T>& cache,
                               const SeqUpstream<T>& up, T* work) {
  constexpr index_t W = kSliceWidth, BB = kBatchBlock;
  const index_t H = d.H, GH = d.GH(), rows = d.rows(), Tn = d.T;
  T* dG = work;  // (B*T, 3H)
  T* dh = grads.dh0;
  copy_or_zero(dh, up.dh_last, d.B * H);
  const TransposedPanel<T> rt_zr(in.recurrent_kernel, GH, H, 0, 2 * H);
  const TransposedPanel<T> rt_h(in.recurrent_kernel, GH, H, 2 * H, H);
  alignas(64) T acc[BB * W];

  auto cell = [&](index_t row, index_t, index_t j, T dh_total) -> T {
    const T* gr = cache.gates + row * GH;
    const T z = gr[j], hh = gr[2 * H + j];
    const T hp = cache.h_prev[row * H + j];
    T* g = dG + row * GH;
    g[j] = dh_total * (hp - hh) * dsigmoid_from_out(z);
    g[2 * H + j] = dh_total * (T(1) - z) * dtanh_from_out(hh);
    return dh_total * z;
  };
  auto zero_row = [&](index_t row) { std::fill(dG + row * GH, dG + (row + 1) * GH, T(0)); };
  // d(r * h_{t-1}) = d_candidate @ R_h^T, then the reset gate's gradient and the part of
  // dh_{t-1} that flows through r * h_{t-1}.
  auto mid = [&](index_t b0, index_t nb, index_t t, const std::uint8_t* mask) {
    for (index_t kb = 0; kb < slice_count(H); ++kb) {
      const index_t k0 = kb * W, w = std::min(W, H - k0);
      tile_matmul<T, W>(acc, dG + (b0 * Tn + t) * GH + 2 * H, Tn * GH, nb, rt_h.slice(kb), H);
      for (index_t bb = 0; bb < nb; ++bb) {
        const index_t b = b0 + bb, row = b * Tn + t;
        if (!step_kept(mask, row)) continue;
        for (index_t kk = 0; kk < w; ++kk) {
          const index_t k = k0 + kk;
          const T d_rh = acc[bb * W + kk];
          const T r = cache.gates[row * GH + H + k];
          dG[row * GH + H + k] = d_rh * cache.h_prev[row * H + k] * dsigmoid_from_out(r);
          dh[b * H + k] += d_rh * r;
        }
      }
    }
  };
  backward_loop(d, opt, in.mask, rt_zr, static_cast<const T*>(dG), GH, up.dy, dh, cell,
                zero_row, mid);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dG);
  gemm(Trans::Yes, Trans::No, H, 2 * H, rows, cache.h_prev, H, dG, GH, T(0), grads.drecurrent,
       GH);
  gemm(Trans::Yes, Trans::No, H, H, rows, cache.aux, H, dG + 2 * H, GH, T(0),
       grads.drecurrent + 2 * H, GH);
  if (grads.dbias) column_sums(grads.dbias, dG, rows, GH, GH);
}

}  // namespace

template <class T>
void gru_forward(T* y, T* h_last, const Dims& d, const SeqOptions& opt, const SeqInputs<T>& in,
                 const TrainCache<T>* cache, T* work) {
  detail::copy_or_zero(h_last, in.h0, d.B * d.H);
  if (opt.reset_after) {
    gru_forward_reset_after(y, h_last, d, opt, in, cache, work);
  } else {
    gru_forward_reset_before(y, h_last, d, opt, in, cache, work);
  }
}

template <class T>
void gru_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>& cache, const SeqUpstream<T>& up,
                  T* work) {
  if (opt.reset_after) {
    gru_backward_reset_after(grads, d, opt, in, cache, up, work);
  } else {
    gru_backward_reset_before(grads, d, opt, in, cache, up, work);
  }
}

template void gru_forward<float>(float*, float*, const Dims&, const SeqOptions&,
                                 const SeqInputs<float>&, const TrainCache<float>*, float*);
template void gru_forward<double>(double*, double*, const Dims&, const SeqOptions&,
                                  const SeqInputs<double>&, const TrainCache<double>*, double*);
template void gru_backward<float>(const SeqGrads<float>&, const Dims&, const SeqOptions&,
                                  const SeqInputs<float>&, const TrainCache<float>&,
                                  const SeqUpstream<float>&, float*);
template void gru_backward<double>(const SeqGrads<double>&, const Dims&, const SeqOptions&,
                                   const SeqInputs<double>&, const TrainCache<double>&,
                                   const SeqUpstream<double>&, double*);

}  // namespace rnnkit
