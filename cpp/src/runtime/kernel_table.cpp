// This ISA's entry in the dispatch table (compiled once per ISA, like the kernels).
#include "rnnkit/dispatch.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

template <class T>
CellKernels<T> cell_kernels() {
  return CellKernels<T>{&simple_rnn_forward<T>, &simple_rnn_backward<T>, &lstm_forward<T>,
                        &lstm_backward<T>,      &gru_forward<T>,         &gru_backward<T>};
}

const KernelTable& kernel_table() {
  static const KernelTable table{RNNKIT_STRINGIFY(RNNKIT_ISA_NS), cell_kernels<float>(),
                                 cell_kernels<double>()};
  return table;
}

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
