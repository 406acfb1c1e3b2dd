// Sizes of the caller-provided workspace and of the training cache, per cell.
#include "rnnkit/cells.hpp"

namespace rnnkit {

index_t forward_workspace_size(Cell, const Dims& d, const SeqOptions&) {
  return d.rows() * d.GH();  // XP: the input projection of every step
}

index_t backward_workspace_size(Cell cell, const Dims& d, const SeqOptions& opt) {
  // dG; GRU reset_after keeps input-side and recurrent-side dG apart.
  const bool two_sided = cell == Cell::GRU && opt.reset_after;
  return (two_sided ? 2 : 1) * d.rows() * d.GH();
}

bool cache_has_aux(Cell cell) { return cell != Cell::SimpleRNN; }

bool cache_has_c_prev(Cell cell) { return cell == Cell::LSTM; }

}  // namespace rnnkit
