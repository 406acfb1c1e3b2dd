// SimpleRNN forward and BPTT:  h_t = act(x_t K + b + h_{t-1} R),  act in {tanh, relu, linear}.
#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

template <class T>
void simple_rnn_forward(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
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
  const Activation act = opt.activation;
  auto cell = [act](index_t, index_t, index_t, const T* x, const T* acc, const T*, const T*,
                    T* hn, T*, T* gates, T*) {
    // One loop per activation so each vectorises without a per-element switch.
    for (index_t k = 0; k < W; k += V) {
      const Vec<T> z = load(x + k) + load(acc + k);
      Vec<T> h;
      switch (act) {
        case Activation::Tanh: h = tanh_act<T>(z); break;
        case Activation::ReLU: h = z < Vec<T>{} ? Vec<T>{} : z; break;  // NaN stays NaN
        default: h = z; break;
      }
      store(hn + k, h);
      store(gates + k, h);
    }
  };
  forward_loop(sp, false, pack, no_phase1, cell);
}

template <class T>
void simple_rnn_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                         const SeqInputs<T>& in, const TrainCache<T>& cache,
                         const SeqUpstream<T>& up, T* work) {
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
  const Activation act = opt.activation;
  // d act / d z through the output a = act(z); relu'(0) = 0, as TensorFlow.
  auto cell = [act](index_t, index_t, index_t, const T* dh, const T* a, const T*, const T*,
                    const T*, T* dg, T*, T* direct) {
    const Vec<T> one = broadcast(T(1));
    for (index_t k = 0; k < W; k += V) {
      const Vec<T> d = load(dh + k), ak = load(a + k);
      switch (act) {
        case Activation::Tanh: store(dg + k, d * dtanh_from_out(ak)); break;
        // d * 0 (not a select): inf/NaN upstream gives NaN, as d * (z > 0) in NumPy.
        case Activation::ReLU: store(dg + k, d * (ak > Vec<T>{} ? one : Vec<T>{})); break;
        default: store(dg + k, d); break;
      }
      store(direct + k, Vec<T>{});
    }
  };
  backward_loop(sp, 1, false, pack, no_mid, cell);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dG);
  gemm(Trans::Yes, Trans::No, H, H, d.rows(), cache.h_prev, H, dG, H, T(0),
       grads.drecurrent, H);
  if (grads.dbias) column_sums(grads.dbias, dG, d.rows(), H, H);
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

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
