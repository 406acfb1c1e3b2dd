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

template <class T, class Act, class Rec>
void lstm_forward_impl(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                       const SeqInputs<T>& in, const TrainCache<T>* cache, T* work,
                       const Act act, const Rec rec) {
  using namespace detail;
  constexpr index_t W = slice_width<T>(), V = lanes<T>();
  const index_t H = d.H, GH = d.GH();
  T* xp = work;  // (B*T, 4H)
  input_projection(xp, d, in.x, in.kernel, in.bias);
  GatePanel<T> panel(in.recurrent_kernel, GH, H, H, 0, 4, d.T);
  const ForwardSpec<T> sp{&d, &opt, in.mask, xp, cache, y, h_last, c_last, in.h0, in.c0,
                          &panel, 0, nullptr};
  auto pack = [&](index_t first, index_t last) {
    panel.pack(first, last);
  };
  auto no_phase1 = [](index_t, index_t, index_t, index_t, const T*) {};
  auto cell = [act, rec](index_t, index_t, index_t, const T* x, const T* acc, const T* hp,
                          const T* cp, T* hn, T* cn, T* gates, T* aux) {
    (void)hp;
    for (index_t k = 0; k < W; k += V) {
      const Vec<T> zi = load(x + k) + load(acc + k);
      const Vec<T> zf = load(x + W + k) + load(acc + W + k);
      const Vec<T> zg = load(x + 2 * W + k) + load(acc + 2 * W + k);
      const Vec<T> zo = load(x + 3 * W + k) + load(acc + 3 * W + k);
      const Vec<T> i = rec.apply(zi);
      const Vec<T> f = rec.apply(zf);
      const Vec<T> g = act.apply(zg);
      const Vec<T> o = rec.apply(zo);
      const Vec<T> c = f * load(cp + k) + i * g;
      const Vec<T> tc = act.apply(c);
      store(cn + k, c);
      store(hn + k, o * tc);
      store(gates + k, rec.keep(zi, i));
      store(gates + W + k, rec.keep(zf, f));
      store(gates + 2 * W + k, act.keep(zg, g));
      store(gates + 3 * W + k, rec.keep(zo, o));
      store(aux + k, act.keep(c, tc));
    }
  };
  forward_loop(sp, false, pack, no_phase1, cell);
}

template <class T, class Act, class Rec>
void lstm_backward_impl(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>& cache,
                        const SeqUpstream<T>& up, T* work, const Act act, const Rec rec) {
  using namespace detail;
  constexpr index_t W = slice_width<T>(), V = lanes<T>();
  const index_t H = d.H, GH = d.GH(), Hp = slice_count<T>(H) * W;
  T* dG = work;  // (B*T, 4H) pre-activation gate gradients
  TransposedPanel<T> rt(H, GH);
  Buffer<T> dc(d.B * Hp);  // dL/dc, padded like dh
  load_padded(dc.get(), up.dc_last, d.B, H, Hp);
  const BackwardSpec<T> sp{&d, &opt, in.mask, &cache, up.dy, up.dh_last, grads.dh0, dG,
                           nullptr, &rt};
  auto pack = [&](index_t first, index_t last) {
    rt.pack(in.recurrent_kernel, GH, H, 0, first, last);
  };
  auto no_mid = [](index_t, index_t, index_t, T*) {};
  auto cell = [&, act, rec](index_t, index_t b, index_t j0, const T* dh, const T* gates, const T*,
                  const T* cp, const T* tc, T* dg, T*, T* direct) {
    T* dc_row = dc.get() + b * Hp + j0;
    for (index_t k = 0; k < W; k += V) {
      Vec<T> i, f, g, o, tck, di, df, dgg, dob, dtc;
      rec.restore(load(gates + k), i, di);
      rec.restore(load(gates + W + k), f, df);
      act.restore(load(gates + 2 * W + k), g, dgg);
      rec.restore(load(gates + 3 * W + k), o, dob);
      act.restore(load(tc + k), tck, dtc);
      const Vec<T> dhk = load(dh + k);
      const Vec<T> dc_total = load(dc_row + k) + dhk * o * dtc;
      store(dg + k, dc_total * g * di);
      store(dg + W + k, dc_total * load(cp + k) * df);
      store(dg + 2 * W + k, dc_total * i * dgg);
      store(dg + 3 * W + k, dhk * tck * dob);
      store(dc_row + k, dc_total * f);
      store(direct + k, Vec<T>{});  // dh_{t-1} comes only through the recurrent product
    }
  };
  backward_loop(sp, 4, false, pack, no_mid, cell);
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
