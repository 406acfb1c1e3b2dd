// Run-time choice of the instruction set: every ISA build of the kernels fills one
// KernelTable; the bindings call through the table chosen once at import.
#pragma once
#include <string>
#include <vector>

#include "rnnkit/cells.hpp"

namespace rnnkit {

template <class T>
struct CellKernels {
  void (*simple_rnn_forward)(T*, T*, const Dims&, const SeqOptions&, const SeqInputs<T>&,
                             const TrainCache<T>*, T*);
  void (*simple_rnn_backward)(const SeqGrads<T>&, const Dims&, const SeqOptions&,
                              const SeqInputs<T>&, const TrainCache<T>&, const SeqUpstream<T>&,
                              T*);
  void (*lstm_forward)(T*, T*, T*, const Dims&, const SeqOptions&, const SeqInputs<T>&,
                       const TrainCache<T>*, T*);
  void (*lstm_backward)(const SeqGrads<T>&, const Dims&, const SeqOptions&,
                        const SeqInputs<T>&, const TrainCache<T>&, const SeqUpstream<T>&, T*);
  void (*gru_forward)(T*, T*, const Dims&, const SeqOptions&, const SeqInputs<T>&,
                      const TrainCache<T>*, T*);
  void (*gru_backward)(const SeqGrads<T>&, const Dims&, const SeqOptions&, const SeqInputs<T>&,
                       const TrainCache<T>&, const SeqUpstream<T>&, T*);
};

struct KernelTable {
  const char* isa;
  CellKernels<float> f32;
  CellKernels<double> f64;
};

// ISAs compiled into this build, best last (e.g. generic, avx2, avx512).
std::vector<std::string> compiled_isas();
// Compiled ISAs this CPU can run.
std::vector<std::string> supported_isas();
// The table in use: RNNKIT_ISA if set (must be supported), else the best supported one.
// Throws std::invalid_argument for an unknown or unsupported RNNKIT_ISA.
const KernelTable& active_kernels();
// Switches the table in use (tests exercise every path this way). Throws
// std::invalid_argument for an unknown or unsupported name.
void select_isa(const std::string& name);

template <class T>
const CellKernels<T>& kernels_for(const KernelTable& t);
template <>
inline const CellKernels<float>& kernels_for<float>(const KernelTable& t) { return t.f32; }
template <>
inline const CellKernels<double>& kernels_for<double>(const KernelTable& t) { return t.f64; }

}  // namespace rnnkit
