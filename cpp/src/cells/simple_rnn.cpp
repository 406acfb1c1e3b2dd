// SimpleRNN forward and BPTT:  h_t = act(x_t K + b + h_{t-1} R), act any Activation: tanh
// (the default) compiled as its own step, every other one through the runtime switch AnyAct.
#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "any_activation.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

namespace {

template <class T, class Act>
void simple_rnn_forward_impl(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                             const SeqInputs<T>& in, const TrainCache<T>* cache, T* work,
                             const Act act) {
  using namespace detail;
  constexpr index_t W = slice_width<T>(), V = lanes<T>();
  const index_t H = d.H;
  T* xp = work;  // (B*T, H)
  input_projection(xp, d, in.x, in.kernel, in.bias);
  GatePanel<T> panel(in.recurrent_kernel, H, H, H, 0, 1, d.T);
  const ForwardSpec<T> sp{&d, &opt, in.mask, xp, cache, y, h_last, nullptr, in.h0, nullptr,
                          &panel, 0, nullptr};
  auto pack = [&](index_t first, index_t last) {
    panel.pack(first, last);
  };
  auto no_phase1 = [](index_t, index_t, index_t, index_t, const T*) {};
  auto cell = [act](index_t, index_t, index_t, const T* x, const T* acc, const T*, const T*,
                    T* hn, T*, T* gates, T*) {
    for (index_t k = 0; k < W; k += V) {
      const Vec<T> z = load(x + k) + load(acc + k);
      const Vec<T> h = act.apply(z);
      store(hn + k, h);
      store(gates + k, act.keep(z, h));
    }
  };
  forward_loop(sp, false, pack, no_phase1, cell);
}

template <class T, class Act>
void simple_rnn_backward_impl(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                              const SeqInputs<T>& in, const TrainCache<T>& cache,
                              const SeqUpstream<T>& up, T* work, const Act act) {
  using namespace detail;
  constexpr index_t W = slice_width<T>(), V = lanes<T>();
  const index_t H = d.H;
  T* dG = work;  // (B*T, H) pre-activation gradients
  TransposedPanel<T> rt(H, H);
  const BackwardSpec<T> sp{&d, &opt, in.mask, &cache, up.dy, up.dh_last, grads.dh0, dG,
                           nullptr, &rt};
  auto pack = [&](index_t first, index_t last) {
    rt.pack(in.recurrent_kernel, H, H, 0, first, last);
  };
  auto no_mid = [](index_t, index_t, index_t, T*) {};
  // d act / d z from the cached form (activations.hpp); relu'(0) = 0, as TensorFlow. Always
  // d * act' (not a select): inf/NaN upstream gives NaN, as d * (z > 0) in NumPy.
  auto cell = [act](index_t, index_t, index_t, const T* dh, const T* a, const T*, const T*,
                    const T*, T* dg, T*, T* direct) {
    for (index_t k = 0; k < W; k += V) {
      Vec<T> ak, dak;
      act.restore(load(a + k), ak, dak);
      store(dg + k, load(dh + k) * dak);
      store(direct + k, Vec<T>{});
    }
  };
  backward_loop(sp, 1, false, pack, no_mid, cell);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dG);
  gemm(Trans::Yes, Trans::No, H, H, d.rows(), cache.h_prev, H, dG, H, T(0),
       grads.drecurrent, H);
  if (grads.dbias) column_sums(grads.dbias, dG, d.rows(), H, H);
}

}  // namespace

#ifdef RNNKIT_ANY_ACTIVATION_TU

template <class T>
void simple_rnn_forward_any(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                            const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  simple_rnn_forward_impl(y, h_last, d, opt, in, cache, work, AnyAct<T>(opt.activation));
}

template <class T>
void simple_rnn_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                             const SeqInputs<T>& in, const TrainCache<T>& cache,
                             const SeqUpstream<T>& up, T* work) {
  simple_rnn_backward_impl(grads, d, opt, in, cache, up, work, AnyAct<T>(opt.activation));
}

template void simple_rnn_forward_any<float>(float*, float*, const Dims&, const SeqOptions&,
                                            const SeqInputs<float>&, const TrainCache<float>*,
                                            float*);
template void simple_rnn_forward_any<double>(double*, double*, const Dims&, const SeqOptions&,
                                             const SeqInputs<double>&, const TrainCache<double>*,
                                             double*);
template void simple_rnn_backward_any<float>(const SeqGrads<float>&, const Dims&,
                                             const SeqOptions&, const SeqInputs<float>&,
                                             const TrainCache<float>&, const SeqUpstream<float>&,
                                             float*);
template void simple_rnn_backward_any<double>(const SeqGrads<double>&, const Dims&,
                                              const SeqOptions&, const SeqInputs<double>&,
                                              const TrainCache<double>&,
                                              const SeqUpstream<double>&, double*);

#else  // the default pair

template <class T>
void simple_rnn_forward(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  if (opt.activation == Activation::Tanh) {
    simple_rnn_forward_impl(y, h_last, d, opt, in, cache, work, TanhAct<T>{});
  } else {
    simple_rnn_forward_any(y, h_last, d, opt, in, cache, work);
  }
}

template <class T>
void simple_rnn_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                         const SeqInputs<T>& in, const TrainCache<T>& cache,
                         const SeqUpstream<T>& up, T* work) {
  if (opt.activation == Activation::Tanh) {
    simple_rnn_backward_impl(grads, d, opt, in, cache, up, work, TanhAct<T>{});
  } else {
    simple_rnn_backward_any(grads, d, opt, in, cache, up, work);
  }
}

template void simple_rnn_forward<float>(float*, float*, const Dims&, const SeqOptions&,
                                        const SeqInputs<float>&, const TrainCache<float>*,
                                        float*);
template void simple_rnn_forward<double>(double*, double*, const Dims&, const SeqOptions&,
                                         const SeqInputs<double>&, const TrainCache<double>*,
                                         double*);
template void simple_rnn_backward<float>(const SeqGrads<float>&, const Dims&,
                                         const SeqOptions&, const SeqInputs<float>&,
                                         const TrainCache<float>&, const SeqUpstream<float>&,
                                         float*);
template void simple_rnn_backward<double>(const SeqGrads<double>&, const Dims&,
                                          const SeqOptions&, const SeqInputs<double>&,
                                          const TrainCache<double>&,
                                          const SeqUpstream<double>&, double*);

#endif  // RNNKIT_ANY_ACTIVATION_TU

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
