// LSTM with an output projection (PyTorch nn.LSTM(proj_size=P)), Keras gate order [i|f|c|o].
//   z = x_t K + r_{t-1} R + b;  i, f, o = rec(z_i, z_f, z_o);  g = act(z_c)
//   c_t = f c_{t-1} + i g;      m_t = o act(c_t)  (H wide);   r_t = m_t W_hr  (P wide)
// r is the recurrent state h and the output; R is (P, 4H), W_hr = projection_kernel (H, P).
// The element-wise step is LSTM's (lstm_step.hpp); the loops add the projection phase
// (sequence.hpp, kProjected). Backward: dr_t = dy_t + dG_{t+1} R^T -> dm_t = dr_t W_hr^T
// -> LSTM's element-wise backward with dh := dm_t; dW_hr = sum_t m_t^T dr_t (one GEMM).
#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "any_activation.hpp"
#include "lstm_step.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

namespace {

using namespace detail;

// LSTM's step; its h_new is m_t, projected by the loops through `proj`.
template <class T, class Act, class Rec>
struct LstmpStep : LstmStep<T, Act, Rec> {
  static constexpr bool kProjected = true;
  DenseRecurrence<T, 1> proj;  // r_t = m_t @ W_hr, P units
  LstmpStep(Act act_, Rec rec_, GatePanel<T>& whr) : LstmStep<T, Act, Rec>(act_, rec_), proj(whr) {}
};

// LSTM's backward step, handed dL/dm_t as dh; `proj` gives dm_t = dr_t @ W_hr^T.
template <class T, class Act, class Rec>
struct LstmpBackStep : LstmBackStep<T, Act, Rec> {
  static constexpr bool kProjected = true;
  DenseBackRecurrence<T> proj;
  LstmpBackStep(Act act_, Rec rec_, T* dc_, index_t Hp_, TransposedPanel<T>& whr_t,
                const T* whr, index_t H, index_t P)
      : LstmBackStep<T, Act, Rec>(act_, rec_, dc_, Hp_), proj(whr_t, whr, P, H, 0) {}
};

template <class T, class Act, class Rec>
void lstmp_forward_impl(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>* cache, T* work,
                        const Act act, const Rec rec) {
  const index_t H = d.H, P = d.P, GH = d.GH();
  T* xp = work;  // (B*T, 4H)
  input_projection(xp, d, in.x, in.kernel, in.bias);
  GatePanel<T> panel(in.recurrent_kernel, GH, P, H, 0, 4, d.T);   // R: P rows, 4 gates of H
  GatePanel<T> whr(in.projection_kernel, P, H, P, 0, 1, d.T);    // W_hr: H rows, P units
  ForwardSpec<T> sp = call_forward_spec(d, opt, in, cache, y, h_last);
  sp.xp = xp;
  sp.c_last = c_last;
  sp.c0 = in.c0;
  LstmpStep<T, Act, Rec> cell(act, rec, whr);
  DenseRecurrence<T, 4> recurrence(panel);
  forward_loop(sp, cell, recurrence);
}

template <class T, class Act, class Rec>
void lstmp_backward_impl(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                         const SeqInputs<T>& in, const TrainCache<T>& cache,
                         const SeqUpstream<T>& up, T* work, const Act act, const Rec rec) {
  constexpr index_t W = slice_width<T>();
  const index_t H = d.H, P = d.P, GH = d.GH(), Hp = slice_count<T>(H) * W;
  T* dG = work;                 // (B*T, 4H) pre-activation gate gradients
  T* dR = work + d.rows() * GH;  // (B*T, P) dL/dr_t
  TransposedPanel<T> rt(P, GH);  // dr_{t-1} += dG_t R^T, over slices of P
  TransposedPanel<T> wt(H, P);   // dm_t = dr_t W_hr^T, over slices of H
  Buffer<T> dc(d.B * Hp);        // dL/dc, padded like LSTM's
  load_padded(dc.get(), up.dc_last, d.B, H, Hp);
  BackwardSpec<T> sp = call_backward_spec(d, opt, in, cache, up, grads);
  sp.dG = dG;
  sp.dR = dR;
  LstmpBackStep<T, Act, Rec> cell(act, rec, dc.get(), Hp, wt, in.projection_kernel, H, P);
  DenseBackRecurrence<T> recurrence(rt, in.recurrent_kernel, GH, P, 0);
  backward_loop(sp, cell, recurrence);
  store_unpadded(grads.dc0, dc.get(), d.B, H, Hp);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dG);
  gemm(Trans::Yes, Trans::No, P, GH, d.rows(), cache.h_prev, P, dG, GH, T(0),
       grads.drecurrent, GH);
  if (grads.dbias) column_sums(grads.dbias, dG, d.rows(), GH, GH);
  gemm(Trans::Yes, Trans::No, H, P, d.rows(), cache.m, H, dR, P, T(0), grads.dprojection, P);
}

}  // namespace

#ifdef RNNKIT_ANY_ACTIVATION_TU

template <class T>
void lstmp_forward_any(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                       const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  lstmp_forward_impl(y, h_last, c_last, d, opt, in, cache, work,
                     AnyAct<T>(opt.activation), AnyAct<T>(opt.recurrent_activation));
}

template <class T>
void lstmp_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>& cache,
                        const SeqUpstream<T>& up, T* work) {
  lstmp_backward_impl(grads, d, opt, in, cache, up, work,
                      AnyAct<T>(opt.activation), AnyAct<T>(opt.recurrent_activation));
}

template void lstmp_forward_any<float>(float*, float*, float*, const Dims&, const SeqOptions&,
                                       const SeqInputs<float>&, const TrainCache<float>*, float*);
template void lstmp_forward_any<double>(double*, double*, double*, const Dims&,
                                        const SeqOptions&, const SeqInputs<double>&,
                                        const TrainCache<double>*, double*);
template void lstmp_backward_any<float>(const SeqGrads<float>&, const Dims&, const SeqOptions&,
                                        const SeqInputs<float>&, const TrainCache<float>&,
                                        const SeqUpstream<float>&, float*);
template void lstmp_backward_any<double>(const SeqGrads<double>&, const Dims&,
                                         const SeqOptions&, const SeqInputs<double>&,
                                         const TrainCache<double>&, const SeqUpstream<double>&,
                                         double*);

#else  // the default pair

template <class T>
void lstmp_forward(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                   const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  if (opt.activation == Activation::Tanh && opt.recurrent_activation == Activation::Sigmoid) {
    lstmp_forward_impl(y, h_last, c_last, d, opt, in, cache, work, TanhAct<T>{}, SigmoidAct<T>{});
  } else {
    lstmp_forward_any(y, h_last, c_last, d, opt, in, cache, work);
  }
}

template <class T>
void lstmp_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                    const SeqInputs<T>& in, const TrainCache<T>& cache,
                    const SeqUpstream<T>& up, T* work) {
  if (opt.activation == Activation::Tanh && opt.recurrent_activation == Activation::Sigmoid) {
    lstmp_backward_impl(grads, d, opt, in, cache, up, work, TanhAct<T>{}, SigmoidAct<T>{});
  } else {
    lstmp_backward_any(grads, d, opt, in, cache, up, work);
  }
}

template void lstmp_forward<float>(float*, float*, float*, const Dims&, const SeqOptions&,
                                   const SeqInputs<float>&, const TrainCache<float>*, float*);
template void lstmp_forward<double>(double*, double*, double*, const Dims&, const SeqOptions&,
                                    const SeqInputs<double>&, const TrainCache<double>*,
                                    double*);
template void lstmp_backward<float>(const SeqGrads<float>&, const Dims&, const SeqOptions&,
                                    const SeqInputs<float>&, const TrainCache<float>&,
                                    const SeqUpstream<float>&, float*);
template void lstmp_backward<double>(const SeqGrads<double>&, const Dims&, const SeqOptions&,
                                     const SeqInputs<double>&, const TrainCache<double>&,
                                     const SeqUpstream<double>&, double*);

#endif  // RNNKIT_ANY_ACTIVATION_TU

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
