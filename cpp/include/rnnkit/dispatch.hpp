// Run-time choice of the instruction set: every ISA build of the kernels fills one
// KernelTable; the bindings call through the table chosen once at import.
#pragma once
#include <string>
#include <vector>

#include "rnnkit/cells.hpp"

namespace rnnkit {

// One forward and one backward entry per cell, indexed by Cell (entries generated from
// cells.def in runtime/kernel_table.cpp). Every entry has the same signature whatever the
// cell: a forward writes the SeqOutputs its cell has (c_last only with two states).
template <class T>
using ForwardKernel = void (*)(const SeqOutputs<T>&, const Dims&, const SeqOptions&,
                               const SeqInputs<T>&, const TrainCache<T>*, T* work);
template <class T>
using BackwardKernel = void (*)(const SeqGrads<T>&, const Dims&, const SeqOptions&,
                                const SeqInputs<T>&, const TrainCache<T>&,
                                const SeqUpstream<T>&, T* work);

template <class T>
struct CellKernels {
  ForwardKernel<T> forward[kCellCount];
  BackwardKernel<T> backward[kCellCount];

  ForwardKernel<T> forward_of(Cell cell) const { return forward[static_cast<int>(cell)]; }
  BackwardKernel<T> backward_of(Cell cell) const { return backward[static_cast<int>(cell)]; }
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
