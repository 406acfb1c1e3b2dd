// The cells' runtime-switched activation path (AnyAct, activations.hpp): every
// activation / recurrent_activation pair other than the default (tanh / sigmoid; SimpleRNN:
// tanh). The entry points in <cell>.cpp call these for non-default pairs. They are compiled
// in separate translation units (<cell>_any.cpp, which include <cell>.cpp with
// RNNKIT_ANY_ACTIVATION_TU defined) so that the default translation units instantiate
// nothing new: with the switch in the same unit GCC's unit-growth limits moved helpers of
// the default step out of line (measured: LSTM 50x1x64x64 forward 11% slower).
// Same signatures and conventions as the entry points in cells.hpp.
#pragma once
#include "rnnkit/cells.hpp"

namespace rnnkit {
namespace RNNKIT_ISA_NS {

template <class T>
void simple_rnn_forward_any(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                            const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void simple_rnn_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                             const SeqInputs<T>& in, const TrainCache<T>& cache,
                             const SeqUpstream<T>& up, T* work);
template <class T>
void lstm_forward_any(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                      const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void lstm_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                       const SeqInputs<T>& in, const TrainCache<T>& cache,
                       const SeqUpstream<T>& up, T* work);
template <class T>
void lstmp_forward_any(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                       const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void lstmp_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>& cache,
                        const SeqUpstream<T>& up, T* work);
template <class T>
void gru_forward_any(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                     const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void gru_backward_any(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                      const SeqInputs<T>& in, const TrainCache<T>& cache,
                      const SeqUpstream<T>& up, T* work);

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
