// Problem dimensions and gate layout shared by every cell kernel.
#pragma once
#include <cstdint>

#include "rnnkit/cell_list.hpp"

namespace rnnkit {

using index_t = std::int64_t;

// The cells (Cell, gate_count, cell_info): generated from rnnkit/cells.def.

// Element-wise activations (Keras names), for `activation` (SimpleRNN, LSTM, GRU) and
// `recurrent_activation` (LSTM, GRU). Values are stable (the first three predate the rest).
//   Tanh "tanh", Sigmoid "sigmoid", HardSigmoid "hard_sigmoid" (Keras 3: relu6(x+3)/6),
//   HardSigmoidKeras2 "hard_sigmoid_keras2" (clip(0.2x+0.5, 0, 1)), ReLU "relu",
//   ReLU6 "relu6", ELU "elu" (alpha 1), SELU "selu", Softsign "softsign",
//   Softplus "softplus", Linear "linear" (also None), SiLU "silu", GELU "gelu" (exact, erf).
enum class Activation : int {
  Tanh = 0, ReLU = 1, Linear = 2, Sigmoid = 3, HardSigmoid = 4, HardSigmoidKeras2 = 5,
  ReLU6 = 6, ELU = 7, SELU = 8, Softsign = 9, Softplus = 10, SiLU = 11, GELU = 12
};

// Batch-major sizes: x is (B, T, I), states are (B, H) (h: (B, P) for projected cells).
struct Dims {
  index_t B = 0;  // batch
  index_t T = 0;  // time steps
  index_t I = 0;  // input features
  index_t H = 0;  // hidden units
  int G = 1;      // gates
  index_t P = 0;  // projected cells (cells.def `proj`): projection width; 0 otherwise

  index_t GH() const { return static_cast<index_t>(G) * H; }
  // Width of h: of y, h0, h_last and the rows of recurrent_kernel (P when projected, else H).
  index_t S() const { return P > 0 ? P : H; }
  index_t rows() const { return B * T; }  // rows of every (B*T, ...) workspace matrix
};

// Sequence options every cell shares (Keras semantics, docs/spec.md §3).
struct SeqOptions {
  bool go_backwards = false;               // process t = T-1 ... 0; y is in processing order
  Activation activation = Activation::Tanh;              // every cell; LSTM: also on c
  Activation recurrent_activation = Activation::Sigmoid;  // LSTM i, f, o; GRU z, r
  bool reset_after = true;                 // GRU only
};

}  // namespace rnnkit
