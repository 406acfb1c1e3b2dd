// LSTM forward and BPTT (Keras gate order [i | f | c | o]).
//   z = x_t K + h_{t-1} R + b;  i, f, o = sigmoid;  g = tanh(z_c)
//   c_t = f c_{t-1} + i g;      h_t = o tanh(c_t)
#include <vector>

#include "rnnkit/activations.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/gemm.hpp"
#include "sequence.hpp"

namespace rnnkit {

template <class T>
void lstm_forward(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  using namespace detail;
  constexpr index_t W = kSliceWidth;
  const index_t H = d.H, GH = d.GH();
  T* xp = work;  // (B*T, 4H)
  input_projection(xp, d, in.x, in.kernel, in.bias);
  const GatePanel<T> panel(in.recurrent_kernel, GH, H, H, 0, 4);
  copy_or_zero(h_last, in.h0, d.B * H);
  copy_or_zero(c_last, in.c0, d.B * H);

  auto cell = [&](index_t row, index_t, index_t j, const T* acc, T hp, T cp, T& hn, T& cn) {
    const T* xr = xp + row * GH;
    const T i = sigmoid(xr[j] + acc[0]);
    const T f = sigmoid(xr[H + j] + acc[W]);
    const T g = tanh_act(xr[2 * H + j] + acc[2 * W]);
    const T o = sigmoid(xr[3 * H + j] + acc[3 * W]);
    cn = f * cp + i * g;
    const T tc = tanh_act(cn);
    hn = o * tc;
    if (cache) {
      T* gr = cache->gates + row * GH;
      gr[j] = i;
      gr[H + j] = f;
      gr[2 * H + j] = g;
      gr[3 * H + j] = o;
      cache->h_prev[row * H + j] = hp;
      cache->c_prev[row * H + j] = cp;
      cache->aux[row * H + j] = tc;
    }
  };
  forward_loop(d, opt, in.mask, panel, y, h_last, c_last, cell);
}

template <class T>
void lstm_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                   const SeqInputs<T>& in, const TrainCache<T>& cache,
                   const SeqUpstream<T>& up, T* work) {
  using namespace detail;
  const index_t H = d.H, GH = d.GH();
  T* dG = work;  // (B*T, 4H) pre-activation gate gradients
  T* dh = grads.dh0;
  T* dc = grads.dc0;
  copy_or_zero(dh, up.dh_last, d.B * H);
  copy_or_zero(dc, up.dc_last, d.B * H);
  const TransposedPanel<T> rt(in.recurrent_kernel, GH, H, 0, GH);

  auto cell = [&](index_t row, index_t b, index_t j, T dh_total) -> T {
    const T* gr = cache.gates + row * GH;
    const T i = gr[j], f = gr[H + j], g = gr[2 * H + j], o = gr[3 * H + j];
    const T tc = cache.aux[row * H + j];
    const T cp = cache.c_prev[row * H + j];
    const T dc_total = dc[b * H + j] + dh_total * o * dtanh_from_out(tc);
    T* dgr = dG + row * GH;
    dgr[j] = dc_total * g * dsigmoid_from_out(i);
    dgr[H + j] = dc_total * cp * dsigmoid_from_out(f);
    dgr[2 * H + j] = dc_total * i * dtanh_from_out(g);
    dgr[3 * H + j] = dh_total * tc * dsigmoid_from_out(o);
    dc[b * H + j] = dc_total * f;
    return T(0);  // dh_{t-1} comes only through the recurrent product
  };
  auto zero_row = [&](index_t row) { std::fill(dG + row * GH, dG + (row + 1) * GH, T(0)); };
  backward_loop(d, opt, in.mask, rt, static_cast<const T*>(dG), GH, up.dy, dh, cell, zero_row);

  input_side_gradients(grads.dx, grads.dkernel, d, in.x, in.kernel, dG);
  gemm(Trans::Yes, Trans::No, H, GH, d.rows(), cache.h_prev, H, dG, GH, T(0),
       grads.drecurrent, GH);
  if (grads.dbias) column_sums(grads.dbias, dG, d.rows(), GH, GH);
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

}  // namespace rnnkit
