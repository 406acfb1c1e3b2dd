// LSTM forward and BPTT (Keras gate order [i | f | c | o]).
//   z = x_t K + h_{t-1} R + b;  i, f, o = rec(z_i, z_f, z_o);  g = act(z_c)
//   c_t = f c_{t-1} + i g;      h_t = o act(c_t)
// act = `activation` (tanh), rec = `recurrent_activation` (sigmoid). The default pair runs
// the step compiled for tanh/sigmoid; every other pair one runtime-switched step (AnyAct).
#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "any_activation.hpp"
#include "lstm_step.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

namespace {

using namespace detail;

template <class T, class Act, class Rec>
void lstm_forward_impl(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                       const SeqInputs<T>& in, const TrainCache<T>* cache, T* work,
                       const Act act, const Rec rec) {
  const index_t H = d.H, GH = d.GH();
  T* xp = work;  // (B*T, 4H)
  input_projection(xp, d, in.x, in.kernel, in.bias);
  GatePanel<T> panel(in.recurrent_kernel, GH, H, H, 0, 4, d.T);
  ForwardSpec<T> sp = call_forward_spec(d, opt, in, cache, y, h_last);
  sp.xp = xp;
  sp.c_last = c_last;
  sp.c0 = in.c0;
  LstmStep<T, Act, Rec> cell(act, rec);
  DenseRecurrence<T, 4> recurrence(panel);
  forward_loop(sp, cell, recurrence);
}

template <class T, class Act, class Rec>
void lstm_backward_impl(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>& cache,
                        const SeqUpstream<T>& up, T* work, const Act act, const Rec rec) {
  constexpr index_t W = slice_width<T>();
  const index_t H = d.H, GH = d.GH(), Hp = slice_count<T>(H) * W;
  T* dG = work;  // (B*T, 4H) pre-activation gate gradients
  TransposedPanel<T> rt(H, GH);
  Buffer<T> dc(d.B * Hp);  // dL/dc, padded like dh
  load_padded(dc.get(), up.dc_last, d.B, H, Hp);
  BackwardSpec<T> sp = call_backward_spec(d, opt, in, cache, up, grads);
  sp.dG = dG;
  LstmBackStep<T, Act, Rec> cell(act, rec, dc.get(), Hp);
  DenseBackRecurrence<T> recurrence(rt, in.recurrent_kernel, GH, H, 0);
  backward_loop(sp, cell, recurrence);
  store_unpadded(grads.dc0, dc.get(), d.B, H, Hp);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dG);
  gemm(Trans::Yes, Trans::No, H, GH, d.rows(), cache.h_prev, H, dG, GH, T(0),
       grads.drecurrent, GH);
  if (grads.dbias) column_sums(grads.dbias, dG, d.rows(), GH, GH);
}

}  // namespace

#ifdef RNNKIT_ANY_ACTIVATION_TU

template <class T>
void lstm_forward_any(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                      const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  lstm_forward_impl(y, h_last, c_last, d, opt, in, cache, work,
                    AnyAct<T>(opt.activation), AnyAct<T>(opt.recurrent_activation));
}

template <class T>
void lstm_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                       const SeqInputs<T>& in, const TrainCache<T>& cache,
                       const SeqUpstream<T>& up, T* work) {
  lstm_backward_impl(grads, d, opt, in, cache, up, work,
                    AnyAct<T>(opt.activation), AnyAct<T>(opt.recurrent_activation));
}

template void lstm_forward_any<float>(float*, float*, float*, const Dims&, const SeqOptions&,
                                      const SeqInputs<float>&, const TrainCache<float>*, float*);
template void lstm_forward_any<double>(double*, double*, double*, const Dims&, const SeqOptions&,
                                       const SeqInputs<double>&, const TrainCache<double>*,
                                       double*);
template void lstm_backward_any<float>(const SeqGrads<float>&, const Dims&, const SeqOptions&,
                                       const SeqInputs<float>&, const TrainCache<float>&,
                                       const SeqUpstream<float>&, float*);
template void lstm_backward_any<double>(const SeqGrads<double>&, const Dims&, const SeqOptions&,
                                        const SeqInputs<double>&, const TrainCache<double>&,
                                        const SeqUpstream<double>&, double*);

#else  // the default pair

template <class T>
void lstm_forward(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  if (opt.activation == Activation::Tanh && opt.recurrent_activation == Activation::Sigmoid) {
    lstm_forward_impl(y, h_last, c_last, d, opt, in, cache, work, TanhAct<T>{}, SigmoidAct<T>{});
  } else {
    lstm_forward_any(y, h_last, c_last, d, opt, in, cache, work);
  }
}

template <class T>
void lstm_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                   const SeqInputs<T>& in, const TrainCache<T>& cache,
                   const SeqUpstream<T>& up, T* work) {
  if (opt.activation == Activation::Tanh && opt.recurrent_activation == Activation::Sigmoid) {
    lstm_backward_impl(grads, d, opt, in, cache, up, work, TanhAct<T>{}, SigmoidAct<T>{});
  } else {
    lstm_backward_any(grads, d, opt, in, cache, up, work);
  }
}

template void lstm_forward<float>(float*, float*, float*, const Dims&, const SeqOptions&,
                                  const SeqInputs<float>&, const TrainCache<float>*, float*);
template void lstm_forward<double>(double*, double*, double*, const Dims&, const SeqOptions&,
                                   const SeqInputs<double>&, const TrainCache<double>*,
                                   double*);
template void lstm_backward<float>(const SeqGrads<float>&, const Dims&, const SeqOptions&,
                                   const SeqInputs<float>&, const TrainCache<float>&,
                                   const SeqUpstream<float>&, float*);
template void lstm_backward<double>(const SeqGrads<double>&, const Dims&, const SeqOptions&,
                                    const SeqInputs<double>&, const TrainCache<double>&,
                                    const SeqUpstream<double>&, double*);

#endif  // RNNKIT_ANY_ACTIVATION_TU

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
