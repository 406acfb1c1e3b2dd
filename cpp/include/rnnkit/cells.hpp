// Kernel entry points of the cells listed in cells.def: pure functions on raw pointers and
// Dims. Each cell `name` defines name_forward<T> and name_backward<T> (declared below, with
// the signatures the kernel table expects: runtime/kernel_table.cpp).
// Conventions (docs/design.md, habits 2 and 3):
//   * outputs first, then dims/options, then inputs, then the caller-provided workspace;
//   * every array is C-contiguous in the caller's dtype T (float or double) and element-
//     aligned (address a multiple of alignof(T)): the kernels read T* directly (packing
//     loops, scalar tails), so a misaligned pointer is undefined behaviour. The bindings
//     guarantee it (NumPy's ALIGNED flag is demanded, else the input is copied);
//   * x is (B, T, I); y is (B, T, H) in processing order; states are (B, H);
//   * every (B*T, ...) matrix (workspace, cache, dG) has row b*T + t with t the INPUT time
//     index, so x, dx and the cache share row numbering whatever go_backwards is.
#pragma once
#include <cstdint>

#include "rnnkit/dims.hpp"
#include "rnnkit/isa.hpp"

namespace rnnkit {

// Read-only arguments of a forward call (and, again, of its backward call).
template <class T>
struct SeqInputs {
  const T* x = nullptr;                 // (B, T, I)
  const T* kernel = nullptr;            // (I, G*H)
  const T* recurrent_kernel = nullptr;  // (H, G*H); projected cells: (P, G*H)
  const T* projection_kernel = nullptr; // projected cells: (H, P); else null
  const T* bias = nullptr;              // nullable; (G*H), GRU reset_after: (2, 3H)
  const T* h0 = nullptr;                // nullable (B, H) ((B, P) projected): zeros
  const T* c0 = nullptr;                // nullable (B, H), LSTM only
  const std::uint8_t* mask = nullptr;   // nullable (B, T), nonzero = keep the step
};

// What forward keeps for BPTT (training=True). Rows b*T + t (input time).
//   gates  (B*T, G*H)  gates in "cached form": SimpleRNN [h_new], LSTM [i f g o], GRU [z r hh]
//   h_prev (B*T, H)    state entering the step ((B*T, P) for projected cells: r_{t-1})
//   c_prev (B*T, H)    LSTM only: cell state entering the step
//   aux    (B*T, H)    LSTM: act(c_new) in cached form; GRU reset_after: h_prev R_h + b_rec_h;
//                      GRU reset_before: r * h_prev; SimpleRNN: unused
//   m      (B*T, H)    projected cells (LSTMP): m_t = o * act(c_t), the projection's input
// Cached form of a value a = f(z) (activations.hpp, keep/restore): the activated value a
// for every activation whose derivative is a function of its output (tanh, sigmoid, the
// hard sigmoids, relu, relu6, elu, selu, softsign, softplus, linear: backward takes f' from
// a), the pre-activation z for silu and gelu (backward recomputes a = f(z) and f'(z)). So
// the sizes never depend on the activation (workspace.cpp); LSTM's aux holds c_new itself
// when `activation` is silu/gelu.
template <class T>
struct TrainCache {
  T* gates = nullptr;
  T* h_prev = nullptr;
  T* c_prev = nullptr;
  T* aux = nullptr;
  T* m = nullptr;
};

// Upstream gradients, each nullable (= zeros): dy (B, T, H), dh_last and dc_last (B, H)
// (dy, dh_last P wide for projected cells).
template <class T>
struct SeqUpstream {
  const T* dy = nullptr;
  const T* dh_last = nullptr;
  const T* dc_last = nullptr;
};

// Gradients written by backward; dbias/dc0 may be null when not applicable.
template <class T>
struct SeqGrads {
  T* dx = nullptr;          // (B, T, I)
  T* dkernel = nullptr;     // (I, G*H)
  T* drecurrent = nullptr;  // (H, G*H); (P, G*H) projected
  T* dbias = nullptr;       // shape of bias
  T* dh0 = nullptr;         // (B, H); (B, P) projected
  T* dc0 = nullptr;         // (B, H), LSTM
  T* dprojection = nullptr; // (H, P), projected cells
};

// Outputs of a forward call: y (B, T, H), h_last (B, H); c_last (B, H) for cells with two
// states (cells.def), else null. The kernel table passes each kernel the ones it writes.
template <class T>
struct SeqOutputs {
  T* y = nullptr;
  T* h_last = nullptr;
  T* c_last = nullptr;
};

// Sizes, in elements of T, of everything a call allocates besides its inputs: the one place
// they are computed (cells/workspace.cpp). The Python bindings allocate, report nbytes and
// word their MemoryError messages from these.
//   forward_workspace_size   the caller-provided `work` of name_forward
//   backward_workspace_size  the caller-provided `work` of name_backward
//   bias_rows                1: bias is (G*H,); 2: (2, G*H) (kOptResetAfter cells, reset_after)
//   train_cache_columns      columns of TrainCache array `a` (CacheArray; rows are B*T), 0
//                            when the cell does not use it
//   train_cache_elements     all TrainCache arrays together
//   forward_call_elements    outputs + workspace (+ cache and the private copy of x, training)
//   backward_call_elements   gradients + workspace
index_t forward_workspace_size(Cell cell, const Dims& d, const SeqOptions& opt);
index_t backward_workspace_size(Cell cell, const Dims& d, const SeqOptions& opt);
int bias_rows(Cell cell, const SeqOptions& opt);
index_t train_cache_columns(Cell cell, int a, const Dims& d);
index_t train_cache_elements(Cell cell, const Dims& d);
index_t forward_call_elements(Cell cell, const Dims& d, const SeqOptions& opt, bool training);
index_t backward_call_elements(Cell cell, const Dims& d, const SeqOptions& opt, bool has_bias);

namespace RNNKIT_ISA_NS {

template <class T>
void simple_rnn_forward(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                        const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void simple_rnn_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                         const SeqInputs<T>& in, const TrainCache<T>& cache,
                         const SeqUpstream<T>& up, T* work);

template <class T>
void lstm_forward(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void lstm_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                   const SeqInputs<T>& in, const TrainCache<T>& cache,
                   const SeqUpstream<T>& up, T* work);

// LSTM with an output projection (PyTorch nn.LSTM(proj_size=P)): h is r_t = m_t @ W_hr.
template <class T>
void lstmp_forward(T* y, T* h_last, T* c_last, const Dims& d, const SeqOptions& opt,
                   const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void lstmp_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                    const SeqInputs<T>& in, const TrainCache<T>& cache,
                    const SeqUpstream<T>& up, T* work);

template <class T>
void gru_forward(T* y, T* h_last, const Dims& d, const SeqOptions& opt,
                 const SeqInputs<T>& in, const TrainCache<T>* cache, T* work);
template <class T>
void gru_backward(const SeqGrads<T>& grads, const Dims& d, const SeqOptions& opt,
                  const SeqInputs<T>& in, const TrainCache<T>& cache,
                  const SeqUpstream<T>& up, T* work);

}  // namespace RNNKIT_ISA_NS
}  // namespace rnnkit
