// The LSTM step functors (internal header, compiled per ISA), shared by lstm.cpp and
// lstmp.cpp (the projected LSTM runs the same element-wise math: its loops hand the step
// dL/dm_t as dh and keep m_t = "h_new" for the projection phase, sequence.hpp kProjected).
// In an unnamed namespace: every translation unit keeps its own copy, so lstm.cpp compiles
// exactly as when they lived in it (any_activation.hpp: the default step stays alone).
#pragma once
#include "rnnkit/activations.hpp"
#include "sequence.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {
namespace {  // internal linkage, as when the functors lived in lstm.cpp

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

}  // namespace
}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
