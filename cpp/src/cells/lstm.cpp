// LSTM forward and BPTT (Keras gate order [i | f | c | o]).
//   z = x_t K + h_{t-1} R + b;  i, f, o = rec(z_i, z_f, z_o);  g = act(z_c)
//   c_t = f c_{t-1} + i g;      h_t = o act(c_t)
// act = `activation` (tanh), rec = `recurrent_activation` (sigmoid). The default pair runs
// the step compiled for tanh/sigmoid; every other pair one runtime-switched step (AnyAct).
#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "any_activation.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

namespace {

using namespace detail;

// c = f c_prev + i g, h = o act(c); the cache keeps the four gates and act(c) (aux).
template <class T, class Act, class Rec>
struct LstmStep : ForwardCell {
  using Recurrence = DenseRecurrence<T, 4>;
  Act act;
  Rec rec;
  LstmStep(Act act_, Rec rec_) : act(act_), rec(rec_) {}

  void step(const StepIn<T>& in, const StepOut<T>& out) const {
    constexpr index_t W = slice_width<T>(), V = lanes<T>();
    const T* x = in.x_proj;
    const T* acc = in.recurrent;
    for (index_t k = 0; k < W; k += V) {
      const Vec<T> zi = load(x + k) + load(acc + k);
      const Vec<T> zf = load(x + W + k) + load(acc + W + k);
      const Vec<T> zg = load(x + 2 * W + k) + load(acc + 2 * W + k);
      const Vec<T> zo = load(x + 3 * W + k) + load(acc + 3 * W + k);
      const Vec<T> i = rec.apply(zi);
      const Vec<T> f = rec.apply(zf);
      const Vec<T> g = act.apply(zg);
      const Vec<T> o = rec.apply(zo);
      const Vec<T> c = f * load(in.c_prev + k) + i * g;
      const Vec<T> tc = act.apply(c);
      store(out.c_new + k, c);
      store(out.h_new + k, o * tc);
      store(out.gates + k, rec.keep(zi, i));
      store(out.gates + W + k, rec.keep(zf, f));
      store(out.gates + 2 * W + k, act.keep(zg, g));
      store(out.gates + 3 * W + k, rec.keep(zo, o));
      store(out.aux + k, act.keep(c, tc));
    }
  }
};

// dL/dc is the cell's own carried state: dc, (B, Hp) padded like the loop's dh.
template <class T, class Act, class Rec>
struct LstmBackStep : BackwardCell {
  static constexpr int kGates = 4;
  using Recurrence = DenseBackRecurrence<T>;
  Act act;
  Rec rec;
  T* dc;
  index_t Hp;
  LstmBackStep(Act act_, Rec rec_, T* dc_, index_t Hp_) : act(act_), rec(rec_), dc(dc_), Hp(Hp_) {}

  void step(const BackStepIn<T>& in, const BackStepOut<T>& out) const {
    constexpr index_t W = slice_width<T>(), V = lanes<T>();
    const T* gates = in.gates;
    T* dg = out.dgates;
    T* dc_row = dc + in.b * Hp + in.j0;
    for (index_t k = 0; k < W; k += V) {
      Vec<T> i, f, g, o, tck, di, df, dgg, dob, dtc;
      rec.restore(load(gates + k), i, di);
      rec.restore(load(gates + W + k), f, df);
      act.restore(load(gates + 2 * W + k), g, dgg);
      rec.restore(load(gates + 3 * W + k), o, dob);
      act.restore(load(in.aux + k), tck, dtc);  // aux: act(c_t) in the cache's form
      const Vec<T> dhk = load(in.dh + k);
      const Vec<T> dc_total = load(dc_row + k) + dhk * o * dtc;
      store(dg + k, dc_total * g * di);
      store(dg + W + k, dc_total * load(in.c_prev + k) * df);
      store(dg + 2 * W + k, dc_total * i * dgg);
      store(dg + 3 * W + k, dhk * tck * dob);
      store(dc_row + k, dc_total * f);
      store(out.dh_direct + k, Vec<T>{});  // dh_{t-1} comes only through the recurrent product
    }
  }
};

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
