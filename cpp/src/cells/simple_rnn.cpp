// SimpleRNN forward and BPTT:  h_t = act(x_t K + b + h_{t-1} R),  act in {tanh, relu, linear}.
#include <algorithm>

#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/gemm.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace {

template <class T>
inline T activate(Activation act, T z) {
  switch (act) {
    case Activation::Tanh: return tanh_act(z);
    case Activation::ReLU: return z > T(0) ? z : T(0);
    default: return z;
  }
}

// d act / d z expressed through the output a = act(z) (relu'(0) = 0, as TensorFlow).
template <class T>
inline T activation_slope(Activation act, T a) {
  switch (act) {
    case Activation::Tanh: return dtanh_from_out(a);
    case Activation::ReLU: return a > T(0) ? T(1) : T(0);
    default: return T(1);
  }
}

}  // namespace

template <class T>
void simple_rnn_forward(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  using namespace detail;
  const index_t H = d.H;
  T* xp = work;  // (B*T, H)
  input_projection(xp, d, in.x, in.kernel, in.bias);
  const GatePanel<T> panel(in.recurrent_kernel, H, H, H, 0, 1);
  copy_or_zero(h_last, in.h0, d.B * H);
  const Activation act = opt.activation;

  auto cell = [&](index_t row, index_t, index_t j, const T* acc, T hp, T, T& hn, T&) {
    hn = activate(act, xp[row * H + j] + acc[0]);
    if (cache) {
      cache->gates[row * H + j] = hn;
      cache->h_prev[row * H + j] = hp;
    }
  };
  forward_loop(d, opt, in.mask, panel, y, h_last, static_cast<T*>(nullptr), cell);
}

template <class T>
void simple_rnn_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                         const SeqInputs<T>& in, const TrainCache<T>& cache,
                         const SeqUpstream<T>& up, T* work) {
  using namespace detail;
  const index_t H = d.H;
  T* dG = work;  // (B*T, H) pre-activation gradients
  T* dh = grads.dh0;
  copy_or_zero(dh, up.dh_last, d.B * H);
  const TransposedPanel<T> rt(in.recurrent_kernel, H, H, 0, H);
  const Activation act = opt.activation;

  auto cell = [&](index_t row, index_t, index_t j, T dh_total) -> T {
    dG[row * H + j] = dh_total * activation_slope(act, cache.gates[row * H + j]);
    return T(0);
  };
  auto zero_row = [&](index_t row) { std::fill(dG + row * H, dG + (row + 1) * H, T(0)); };
  backward_loop(d, opt, in.mask, rt, static_cast<const T*>(dG), H, up.dy, dh, cell, zero_row);

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

}  // namespace rnnkit
