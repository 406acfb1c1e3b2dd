// GRU forward and BPTT (Keras gate order [z | r | h]), both Keras variants:
//   reset_after=True  (bias (2, 3H) = [b_in; b_rec]):
//       [xz xr xh] = x_t K + b_in,  [rz rr rh] = h_{t-1} R + b_rec
//       z = σ(xz + rz),  r = σ(xr + rr),  hh = tanh(xh + r * rh)
//   reset_after=False (bias (3H,)):
//       z = σ(xz + h R_z),  r = σ(xr + h R_r),  hh = tanh(xh + (r * h_{t-1}) R_h)
//   h_t = z h_{t-1} + (1 - z) hh
// σ = `recurrent_activation` (sigmoid), tanh = `activation` (tanh): the default pair runs the
// steps compiled for tanh/sigmoid; every other pair one runtime-switched step (AnyAct).
// reset_after=False needs r of every unit before the candidate's product, so its steps run
// in two phases with a barrier between them, forward and backward.
#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "any_activation.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace {

using namespace detail;

// reset_after: the recurrent bias b_rec ((3, Hp), zero-padded) joins the product inside the
// step, so r multiplies (h R_h + b_rec_h); the cache's aux keeps that product (rh).
template <class T, class Act, class Rec>
struct GruResetAfterStep : ForwardCell {
  using Recurrence = DenseRecurrence<T, 3>;
  Act act;
  Rec rec;
  const T* b_rec;  // (3, Hp)
  index_t Hp;
  GruResetAfterStep(Act act_, Rec rec_, const T* b_rec_, index_t Hp_)
      : act(act_), rec(rec_), b_rec(b_rec_), Hp(Hp_) {}

  void step(const StepIn<T>& in, const StepOut<T>& out) const {
    constexpr index_t W = slice_width<T>(), V = lanes<T>();
    const T* x = in.x_proj;
    const T* acc = in.recurrent;
    const T* bz = b_rec + in.j0;
    const T* brr = b_rec + Hp + in.j0;
    const T* bh = b_rec + 2 * Hp + in.j0;
    for (index_t k = 0; k < W; k += V) {
      const Vec<T> rh = load(acc + 2 * W + k) + load(bh + k);
      const Vec<T> zz = load(x + k) + load(acc + k) + load(bz + k);
      const Vec<T> zr = load(x + W + k) + load(acc + W + k) + load(brr + k);
      const Vec<T> z = rec.apply(zz);
      const Vec<T> r = rec.apply(zr);
      const Vec<T> zh = load(x + 2 * W + k) + r * rh;
      const Vec<T> hh = act.apply(zh);
      store(out.h_new + k, z * load(in.h_prev + k) + (T(1) - z) * hh);
      store(out.gates + k, rec.keep(zz, z));
      store(out.gates + W + k, rec.keep(zr, r));
      store(out.gates + 2 * W + k, act.keep(zh, hh));
      store(out.aux + k, rh);
    }
  }
};

// reset_before, two phases a step. phase1 (every unit of the thread's slices, before the
// barrier): z, r from their own product, and the reset state r * h_{t-1}, the left operand of
// the candidate's product (the Recurrence: one gate, xp gate 2). step: the candidate and h.
template <class T, class Act, class Rec>
struct GruResetBeforeStep : ForwardCell {
  static constexpr bool kTwoPhase = true;
  using Recurrence = DenseRecurrence<T, 1>;
  Act act;
  Rec rec;
  GatePanel<T>* panel_zr = nullptr;  // gates z, r of R (K = H)
  const T* xp = nullptr;             // (B*T, 3H)
  index_t B = 0, Tn = 0, H = 0, GH = 0, Hp = 0;
  // (B, Hp) each: z, r in the cache's form (rec.keep), and r * h_{t-1}. acc_zr: one (B, 2W)
  // region per slice.
  T *z_buf = nullptr, *r_buf = nullptr, *rh_buf = nullptr, *acc_zr = nullptr;
  GruResetBeforeStep(Act act_, Rec rec_) : act(act_), rec(rec_) {}

  void pack(index_t first, index_t last) { panel_zr->pack(first, last); }

  void phase1(index_t first, index_t last, index_t t, const T* h_cur) {
    constexpr index_t W = slice_width<T>(), V = lanes<T>();
    for (index_t jb = first; jb < last; ++jb) {
      const index_t j0 = jb * W, w = min_index(W, H - j0);
      T* acc = acc_zr + jb * B * 2 * W;
      gate_tile_matmul<T, 2>(acc, 2 * W, h_cur, Hp, B, panel_zr->group(jb, 1), H);
      for (index_t b = 0; b < B; ++b) {
        alignas(64) T xz[W], xr[W];
        const T* xrow = xp + (b * Tn + t) * GH;
        load_slice(xz, xrow + j0, w);
        load_slice(xr, xrow + H + j0, w);
        const T* a = acc + b * 2 * W;
        const T* hp = h_cur + b * Hp + j0;
        T* zs = z_buf + b * Hp + j0;
        T* rs = r_buf + b * Hp + j0;
        T* rhs = rh_buf + b * Hp + j0;
        for (index_t k = 0; k < W; k += V) {
          const Vec<T> zr = load(xr + k) + load(a + W + k);
          const Vec<T> zz = load(xz + k) + load(a + k);
          const Vec<T> r = rec.apply(zr);
          store(zs + k, rec.keep(zz, rec.apply(zz)));
          store(rs + k, rec.keep(zr, r));
          store(rhs + k, r * load(hp + k));
        }
      }
    }
  }

  void step(const StepIn<T>& in, const StepOut<T>& out) const {
    constexpr index_t W = slice_width<T>(), V = lanes<T>();
    const T* z = z_buf + in.b * Hp + in.j0;
    const T* r = r_buf + in.b * Hp + in.j0;
    const T* rh = rh_buf + in.b * Hp + in.j0;
    for (index_t k = 0; k < W; k += V) {
      const Vec<T> zh = load(in.x_proj + k) + load(in.recurrent + k);
      const Vec<T> hh = act.apply(zh);
      const Vec<T> zc = load(z + k);
      const Vec<T> zk = rec.value(zc);
      store(out.h_new + k, zk * load(in.h_prev + k) + (T(1) - zk) * hh);
      store(out.gates + k, zc);
      store(out.gates + W + k, load(r + k));
      store(out.gates + 2 * W + k, act.keep(zh, hh));
      store(out.aux + k, load(rh + k));
    }
  }
};

// reset_after: the candidate's gradient differs between the input side (d xh) and the
// recurrent side (d rh = d xh * r): dgates and dgates_rec.
template <class T, class Act, class Rec>
struct GruResetAfterBackStep : BackwardCell {
  static constexpr int kGates = 3;
  using Recurrence = DenseBackRecurrence<T>;
  Act act;
  Rec rec;
  GruResetAfterBackStep(Act act_, Rec rec_) : act(act_), rec(rec_) {}

  void step(const BackStepIn<T>& in, const BackStepOut<T>& out) const {
    constexpr index_t W = slice_width<T>(), V = lanes<T>();
    T* dg = out.dgates;
    T* dgr = out.dgates_rec;
    for (index_t k = 0; k < W; k += V) {
      Vec<T> z, r, hh, dzf, drf, dhf;
      rec.restore(load(in.gates + k), z, dzf);
      rec.restore(load(in.gates + W + k), r, drf);
      act.restore(load(in.gates + 2 * W + k), hh, dhf);
      const Vec<T> d = load(in.dh + k);
      const Vec<T> dz = d * (load(in.h_prev + k) - hh) * dzf;
      const Vec<T> dhh = d * (T(1) - z) * dhf;
      const Vec<T> dr = dhh * load(in.aux + k) * drf;  // aux: rh = h R_h + b_rec_h
      store(dg + k, dz);
      store(dgr + k, dz);
      store(dg + W + k, dr);
      store(dgr + W + k, dr);
      store(dg + 2 * W + k, dhh);
      store(dgr + 2 * W + k, dhh * r);
      store(out.dh_direct + k, d * z);
    }
  }
};

// reset_before: step fills d z and d candidate; mid (after the barrier) computes
// d(r * h_{t-1}) = d_candidate @ R_h^T, then the reset gate's gradient and the part of
// dh_{t-1} that flows through r * h_{t-1}. The Recurrence carries R_{z,r}^T.
template <class T, class Act, class Rec>
struct GruResetBeforeBackStep : BackwardCell {
  static constexpr bool kTwoPhase = true;
  static constexpr int kGates = 3;
  using Recurrence = DenseBackRecurrence<T>;
  Act act;
  Rec rec;
  DenseBackRecurrence<T> rec_h;  // R_h^T (columns 2H..3H of R)
  const TrainCache<T>* cache = nullptr;
  const std::uint8_t* mask = nullptr;
  T* dG = nullptr;       // (B*T, 3H)
  T* acc_mid = nullptr;  // one (B, W) region per slice (a group uses n of them)
  index_t B = 0, Tn = 0, H = 0, GH = 0, Hp = 0;
  GruResetBeforeBackStep(Act act_, Rec rec_, const DenseBackRecurrence<T>& rec_h_)
      : act(act_), rec(rec_), rec_h(rec_h_) {}

  void pack(index_t first, index_t last) { rec_h.pack(first, last); }

  void step(const BackStepIn<T>& in, const BackStepOut<T>& out) const {
    constexpr index_t W = slice_width<T>(), V = lanes<T>();
    T* dg = out.dgates;
    for (index_t k = 0; k < W; k += V) {
      Vec<T> z, hh, dzf, dhf;
      rec.restore(load(in.gates + k), z, dzf);
      act.restore(load(in.gates + 2 * W + k), hh, dhf);
      const Vec<T> d = load(in.dh + k);
      store(dg + k, d * (load(in.h_prev + k) - hh) * dzf);
      store(dg + W + k, Vec<T>{});  // the reset gate's gradient needs every unit: mid() sets it
      store(dg + 2 * W + k, d * (T(1) - z) * dhf);
      store(out.dh_direct + k, d * z);
    }
  }

  void mid(index_t first, index_t last, index_t t, T* dh) {
    constexpr index_t W = slice_width<T>();
    for (index_t kb = first; kb < last;) {
      const index_t n = rec_h.group_size(kb, last), nw = n * W;
      const index_t k0 = kb * W, w = min_index(nw, H - k0);
      T* acc = acc_mid + kb * B * W;
      rec_h.product(acc, dG + t * GH + 2 * H, Tn * GH, B, kb, n);
      kb += n;
      for (index_t b = 0; b < B; ++b) {
        const index_t row = b * Tn + t;
        if (!step_kept(mask, row)) continue;
        for (index_t kk = 0; kk < w; ++kk) {
          const index_t k = k0 + kk;
          const T d_rh = acc[b * nw + kk];
          T r, dr;
          rec.restore(cache->gates[row * GH + H + k], r, dr);
          dG[row * GH + H + k] = d_rh * cache->h_prev[row * H + k] * dr;
          dh[b * Hp + k] += d_rh * r;
        }
      }
    }
  }
};

template <class T, class Act, class Rec>
void gru_forward_reset_after(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                             const SeqInputs<T>& in, const TrainCache<T>* cache, T* work,
                             const Act act, const Rec rec) {
  constexpr index_t W = slice_width<T>();
  const index_t H = d.H, GH = d.GH(), Hp = slice_count<T>(H) * W;
  T* xp = work;  // (B*T, 3H) = x K + b_in
  input_projection(xp, d, in.x, in.kernel, in.bias);
  // Recurrent bias per gate, zero-padded to Hp units: (3, Hp).
  Buffer<T> b_rec(3 * Hp);
  for (int g = 0; g < 3; ++g) {
    for (index_t j = 0; j < Hp; ++j) {
      b_rec[g * Hp + j] = (in.bias && j < H) ? in.bias[GH + g * H + j] : T(0);
    }
  }
  GatePanel<T> panel(in.recurrent_kernel, GH, H, H, 0, 3, d.T);
  ForwardSpec<T> sp = call_forward_spec(d, opt, in, cache, y, h_last);
  sp.xp = xp;
  GruResetAfterStep<T, Act, Rec> cell(act, rec, b_rec.get(), Hp);
  DenseRecurrence<T, 3> recurrence(panel);
  forward_loop(sp, cell, recurrence);
}

template <class T, class Act, class Rec>
void gru_forward_reset_before(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                              const SeqInputs<T>& in, const TrainCache<T>* cache, T* work,
                              const Act act, const Rec rec) {
  constexpr index_t W = slice_width<T>();
  const index_t B = d.B, H = d.H, GH = d.GH();
  const index_t slices = slice_count<T>(H), Hp = slices * W;
  T* xp = work;  // (B*T, 3H) = x K + b
  input_projection(xp, d, in.x, in.kernel, in.bias);
  GatePanel<T> panel_zr(in.recurrent_kernel, GH, H, H, 0, 2, d.T);
  GatePanel<T> panel_h(in.recurrent_kernel, GH, H, H, 2, 1, d.T);
  Buffer<T> z_buf(B * Hp), r_buf(B * Hp), rh_buf(B * Hp), acc_zr(slices * B * 2 * W);
  fill_n(rh_buf.get(), B * Hp, T(0));
  ForwardSpec<T> sp = call_forward_spec(d, opt, in, cache, y, h_last);
  sp.xp = xp;
  sp.x_gate0 = 2;  // the candidate's gate
  GruResetBeforeStep<T, Act, Rec> cell(act, rec);
  cell.panel_zr = &panel_zr;
  cell.xp = xp;
  cell.B = B;
  cell.Tn = d.T;
  cell.H = H;
  cell.GH = GH;
  cell.Hp = Hp;
  cell.z_buf = z_buf.get();
  cell.r_buf = r_buf.get();
  cell.rh_buf = rh_buf.get();
  cell.acc_zr = acc_zr.get();
  DenseRecurrence<T, 1> recurrence(panel_h, rh_buf.get());  // (r * h_{t-1}) @ R_h
  forward_loop(sp, cell, recurrence);
}

template <class T, class Act, class Rec>
void gru_backward_reset_after(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                              const SeqInputs<T>& in, const TrainCache<T>& cache,
                              const SeqUpstream<T>& up, T* work, const Act act,
                              const Rec rec) {
  const index_t H = d.H, GH = d.GH(), rows = d.rows();
  // The candidate's gradient differs between the input side (d xh) and the recurrent side
  // (d rh = d xh * r), so the two sides keep separate dG matrices, (B*T, 3H) each.
  T* dGx = work;
  T* dGr = work + rows * GH;
  TransposedPanel<T> rt(H, GH);
  BackwardSpec<T> sp = call_backward_spec(d, opt, in, cache, up, grads);
  sp.dG = dGx;
  sp.dGr = dGr;
  GruResetAfterBackStep<T, Act, Rec> cell(act, rec);
  DenseBackRecurrence<T> recurrence(rt, in.recurrent_kernel, GH, H, 0);
  backward_loop(sp, cell, recurrence);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dGx);
  gemm(Trans::Yes, Trans::No, H, GH, rows, cache.h_prev, H, dGr, GH, T(0), grads.drecurrent,
       GH);
  if (grads.dbias) {
    column_sums(grads.dbias, dGx, rows, GH, GH);
    column_sums(grads.dbias + GH, dGr, rows, GH, GH);
  }
}

template <class T, class Act, class Rec>
void gru_backward_reset_before(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                               const SeqInputs<T>& in, const TrainCache<T>& cache,
                               const SeqUpstream<T>& up, T* work, const Act act,
                               const Rec rec) {
  constexpr index_t W = slice_width<T>();
  const index_t B = d.B, H = d.H, GH = d.GH(), rows = d.rows();
  const index_t slices = slice_count<T>(H), Hp = slices * W;
  T* dG = work;  // (B*T, 3H)
  TransposedPanel<T> rt_zr(H, 2 * H);
  TransposedPanel<T> rt_h(H, H);
  Buffer<T> acc_mid(slices * B * W);
  BackwardSpec<T> sp = call_backward_spec(d, opt, in, cache, up, grads);
  sp.dG = dG;
  GruResetBeforeBackStep<T, Act, Rec> cell(
      act, rec, DenseBackRecurrence<T>(rt_h, in.recurrent_kernel, GH, H, 2 * H));
  cell.cache = &cache;
  cell.mask = in.mask;
  cell.dG = dG;
  cell.acc_mid = acc_mid.get();
  cell.B = B;
  cell.Tn = d.T;
  cell.H = H;
  cell.GH = GH;
  cell.Hp = Hp;
  DenseBackRecurrence<T> recurrence(rt_zr, in.recurrent_kernel, GH, H, 0);  // R_{z,r}^T
  backward_loop(sp, cell, recurrence);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dG);
  gemm(Trans::Yes, Trans::No, H, 2 * H, rows, cache.h_prev, H, dG, GH, T(0), grads.drecurrent,
       GH);
  gemm(Trans::Yes, Trans::No, H, H, rows, cache.aux, H, dG + 2 * H, GH, T(0),
       grads.drecurrent + 2 * H, GH);
  if (grads.dbias) column_sums(grads.dbias, dG, rows, GH, GH);
}

template <class T, class Act, class Rec>
void gru_forward_with(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                      const SeqInputs<T>& in, const TrainCache<T>* cache, T* work,
                      const Act act, const Rec rec) {
  if (opt.reset_after) {
    gru_forward_reset_after(y, h_last, d, opt, in, cache, work, act, rec);
  } else {
    gru_forward_reset_before(y, h_last, d, opt, in, cache, work, act, rec);
  }
}

template <class T, class Act, class Rec>
void gru_backward_with(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                       const SeqInputs<T>& in, const TrainCache<T>& cache,
                       const SeqUpstream<T>& up, T* work, const Act act, const Rec rec) {
  if (opt.reset_after) {
    gru_backward_reset_after(grads, d, opt, in, cache, up, work, act, rec);
  } else {
    gru_backward_reset_before(grads, d, opt, in, cache, up, work, act, rec);
  }
}

}  // namespace

#ifdef RNNKIT_ANY_ACTIVATION_TU

template <class T>
void gru_forward_any(T* y, T* h_last, const Dims& d, const SeqOptions& opt, const SeqInputs<T>& in,
                     const TrainCache<T>* cache, T* work) {
  gru_forward_with(y, h_last, d, opt, in, cache, work,
                    AnyAct<T>(opt.activation), AnyAct<T>(opt.recurrent_activation));
}

template <class T>
void gru_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                      const SeqInputs<T>& in, const TrainCache<T>& cache, const SeqUpstream<T>& up,
                      T* work) {
  gru_backward_with(grads, d, opt, in, cache, up, work,
                    AnyAct<T>(opt.activation), AnyAct<T>(opt.recurrent_activation));
}

template void gru_forward_any<float>(float*, float*, const Dims&, const SeqOptions&,
                                     const SeqInputs<float>&, const TrainCache<float>*, float*);
template void gru_forward_any<double>(double*, double*, const Dims&, const SeqOptions&,
                                      const SeqInputs<double>&, const TrainCache<double>*, double*);
template void gru_backward_any<float>(const SeqGrads<float>&, const Dims&, const SeqOptions&,
                                      const SeqInputs<float>&, const TrainCache<float>&,
                                      const SeqUpstream<float>&, float*);
template void gru_backward_any<double>(const SeqGrads<double>&, const Dims&, const SeqOptions&,
                                       const SeqInputs<double>&, const TrainCache<double>&,
                                       const SeqUpstream<double>&, double*);

#else  // the default pair

template <class T>
void gru_forward(T* y, T* h_last, const Dims& d, const SeqOptions& opt, const SeqInputs<T>& in,
                 const TrainCache<T>* cache, T* work) {
  if (opt.activation == Activation::Tanh && opt.recurrent_activation == Activation::Sigmoid) {
    gru_forward_with(y, h_last, d, opt, in, cache, work, TanhAct<T>{}, SigmoidAct<T>{});
  } else {
    gru_forward_any(y, h_last, d, opt, in, cache, work);
  }
}

template <class T>
void gru_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>& cache, const SeqUpstream<T>& up,
                  T* work) {
  if (opt.activation == Activation::Tanh && opt.recurrent_activation == Activation::Sigmoid) {
    gru_backward_with(grads, d, opt, in, cache, up, work, TanhAct<T>{}, SigmoidAct<T>{});
  } else {
    gru_backward_any(grads, d, opt, in, cache, up, work);
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

#endif  // RNNKIT_ANY_ACTIVATION_TU

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
