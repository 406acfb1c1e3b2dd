// This ISA's entry in the dispatch table (compiled once per ISA, like the kernels).
#include "rnnkit/dispatch.hpp"
#include "rnnkit/threadpool.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

// Every entry runs inside a KernelCall scope: one kernel call is the unit an interrupt
// cancels (its team runs and GEMMs after a cancelled time loop are skipped), whoever calls
// the table (the Python bindings, the C++ drivers).
template <auto Fn>
struct InCallScope;
template <class... A, void (*Fn)(A...)>
struct InCallScope<Fn> {
  static void call(A... a) {
    KernelCall scope;
    Fn(a...);
  }
};

template <class T>
CellKernels<T> cell_kernels() {
  return CellKernels<T>{&InCallScope<&simple_rnn_forward<T>>::call,
                        &InCallScope<&simple_rnn_backward<T>>::call,
                        &InCallScope<&lstm_forward<T>>::call,
                        &InCallScope<&lstm_backward<T>>::call,
                        &InCallScope<&gru_forward<T>>::call,
                        &InCallScope<&gru_backward<T>>::call};
}

const KernelTable& kernel_table() {
  static const KernelTable table{RNNKIT_STRINGIFY(RNNKIT_ISA_NS), cell_kernels<float>(),
                                 cell_kernels<double>()};
  return table;
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
