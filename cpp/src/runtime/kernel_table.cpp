// This ISA's entry in the dispatch table (compiled once per ISA, like the kernels): one
// forward and one backward entry per line of cells.def.
#include "rnnkit/dispatch.hpp"
#include "rnnkit/threadpool.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

namespace {

// A forward kernel takes the outputs its cell has: (y, h_last, ...) or (y, h_last, c_last,
// ...). The overload chosen must agree with the cell's `states` column.
template <int States, class T>
void call_forward(void (*fn)(T*, T*, const Dims&, const SeqOptions&, const SeqInputs<T>&,
                             const TrainCache<T>*, T*),
                  const SeqOutputs<T>& o, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  static_assert(States == 1, "cells.def: a cell with 2 states needs a forward kernel that "
                             "writes c_last (y, h_last, c_last, ...)");
  fn(o.y, o.h_last, d, opt, in, cache, work);
}
template <int States, class T>
void call_forward(void (*fn)(T*, T*, T*, const Dims&, const SeqOptions&, const SeqInputs<T>&,
                             const TrainCache<T>*, T*),
                  const SeqOutputs<T>& o, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  static_assert(States == 2, "cells.def: a cell with 1 state needs a forward kernel of "
                             "(y, h_last, ...)");
  fn(o.y, o.h_last, o.c_last, d, opt, in, cache, work);
}

// Every entry runs inside a KernelCall scope: one kernel call is the unit an interrupt
// cancels (its team runs and GEMMs after a cancelled time loop are skipped), whoever calls
// the table (the Python bindings, the C++ drivers).
template <class T, int States, auto Fn>
void forward_entry(const SeqOutputs<T>& o, const Dims& d, const SeqOptions& opt,
                   const SeqInputs<T>& in, const TrainCache<T>* cache, T* work) {
  KernelCall scope;
  call_forward<States, T>(Fn, o, d, opt, in, cache, work);
}

template <class T, auto Fn>
void backward_entry(const SeqGrads<T>& g, const Dims& d, const SeqOptions& opt,
                    const SeqInputs<T>& in, const TrainCache<T>& cache,
                    const SeqUpstream<T>& up, T* work) {
  KernelCall scope;
  Fn(g, d, opt, in, cache, up, work);
}

template <class T>
CellKernels<T> cell_kernels() {
  return CellKernels<T>{
      {
#define RNNKIT_CELL(Enum, name, gates, states, cache, options, proj) \
  &forward_entry<T, states, &name##_forward<T>>,
#include "rnnkit/cells.def"
#undef RNNKIT_CELL
      },
      {
#define RNNKIT_CELL(Enum, name, gates, states, cache, options, proj) &backward_entry<T, &name##_backward<T>>,
#include "rnnkit/cells.def"
#undef RNNKIT_CELL
      }};
}

}  // namespace

const KernelTable& kernel_table() {
  static const KernelTable table{RNNKIT_STRINGIFY(RNNKIT_ISA_NS), cell_kernels<float>(),
                                 cell_kernels<double>()};
  return table;
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
