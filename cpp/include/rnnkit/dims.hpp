// Problem dimensions and gate layout shared by every cell kernel.
#pragma once
#include <cstdint>

#include "rnnkit/cell_list.hpp"

namespace rnnkit {

using index_t = std::int64_t;

// The cells (Cell, gate_count, cell_info): generated from rnnkit/cells.def.

// SimpleRNN activations (Keras names): tanh (default), relu, linear.
enum class Activation : int { Tanh = 0, ReLU = 1, Linear = 2 };

// Batch-major sizes: x is (B, T, I), states are (B, H).
struct Dims {
  index_t B = 0;  // batch
  index_t T = 0;  // time steps
  index_t I = 0;  // input features
  index_t H = 0;  // hidden units
  int G = 1;      // gates

  index_t GH() const { return static_cast<index_t>(G) * H; }
  index_t rows() const { return B * T; }  // rows of every (B*T, ...) workspace matrix
};

// Sequence options every cell shares (Keras semantics, SPEC section 3).
struct SeqOptions {
  bool go_backwards = false;               // process t = T-1 ... 0; y is in processing order
  Activation activation = Activation::Tanh;  // SimpleRNN only
  bool reset_after = true;                 // GRU only
};

}  // namespace rnnkit
